/**
 * A typed client of the HTTP API over `fetch()`, used by every CLI command and by the
 * simulator. Error replies (problem+json) become `FetchbackError`s with the server's code; a
 * server that cannot be reached becomes `FB_ERR_SERVER_UNREACHABLE`.
 */
import { createReadStream, statSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';

import { type FetchbackError, fbError, isErrorCode } from '@fetchback/shared';

import type {
  AgentConfig,
  AssignmentView,
  Device,
  DeviceDetail,
  Page,
  Release,
  Role,
  Token,
} from './api-types.js';

export type * from './api-types.js';

export interface ClientOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:8080`. */
  url: string;
  token?: string;
}

type Query = Record<string, string | number | boolean | string[] | undefined>;

export interface RequestOptions {
  query?: Query;
  /** JSON body. */
  json?: unknown;
  /** Raw body, sent as application/octet-stream. */
  raw?: { stream: Readable; length?: number };
}

export interface DeviceListFilter {
  class?: string;
  tags?: Record<string, string>;
  state?: string;
  status?: 'active' | 'decommissioned';
  limit?: number;
  offset?: number;
}

export interface ReleaseInput {
  version: string;
  hardwareClass: string;
  name?: string;
  securityVersion?: number;
}

function queryString(query: Query | undefined): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** The coded error of a problem+json reply (or a generic one when the body is not one). */
async function errorOf(response: Response): Promise<FetchbackError> {
  const text = await response.text();
  let body: { code?: unknown; detail?: unknown } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // Not JSON (a proxy's HTML page, for instance): fall through to a status-based error.
  }
  const code = isErrorCode(body.code) ? body.code : 'FB_ERR_INTERNAL';
  const err = fbError(code, undefined, { status: response.status });
  err.message = typeof body.detail === 'string' ? body.detail : `HTTP ${response.status}`;
  return err;
}

/**
 * `fetch`, sent a second time when the first attempt found its kept-alive connection closed by
 * the server (`UND_ERR_SOCKET`) and the body can be sent again. The server closes a connection
 * idle for its keep-alive timeout (72 s); a client whose event loop is busy (a simulator running
 * 10,000 devices) can miss its own, shorter timer and write into the closed socket. A server
 * that closed the connection while it was idle read nothing from it, so the second attempt, on
 * a new connection, does not repeat a change. A streamed upload cannot be sent again and fails.
 */
async function fetchOnce(url: string, init: RequestInit, replayable: boolean): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code;
    if (!replayable || code !== 'UND_ERR_SOCKET') throw err;
    return fetch(url, init);
  }
}

export class FetchbackClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;

  constructor(options: ClientOptions) {
    this.baseUrl = options.url.replace(/\/+$/, '');
    this.token = options.token;
  }

  /** One API call; returns the parsed JSON reply (text for non-JSON replies). */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const init: RequestInit & { duplex?: 'half' } = { method, headers };
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(opts.json);
    } else if (opts.raw) {
      headers['content-type'] = 'application/octet-stream';
      if (opts.raw.length !== undefined) headers['content-length'] = String(opts.raw.length);
      init.body = Readable.toWeb(opts.raw.stream) as ReadableStream<Uint8Array>;
      init.duplex = 'half';
    }
    const url = `${this.baseUrl}${path}${queryString(opts.query)}`;
    let response: Response;
    try {
      response = await fetchOnce(url, init, opts.raw === undefined);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw fbError(
        'FB_ERR_SERVER_UNREACHABLE',
        `${this.baseUrl}: ${cause?.code ?? cause?.message ?? err}`,
      );
    }
    if (!response.ok) throw await errorOf(response);
    const type = response.headers.get('content-type') ?? '';
    return (type.includes('json') ? await response.json() : await response.text()) as T;
  }

  health(): Promise<{ status: string }> {
    return this.request('GET', '/healthz');
  }

  registerDevice(input: {
    id: string;
    hardwareClass: string;
    tags?: Record<string, string>;
    /** The device's public key, hex, to pin at registration. */
    deviceKey?: string;
  }): Promise<{ device: Device; agentConfig: AgentConfig }> {
    return this.request('POST', '/api/v1/devices', { json: input });
  }

  listDevices(filter: DeviceListFilter = {}): Promise<Page<Device>> {
    const { tags, ...rest } = filter;
    const tag = Object.entries(tags ?? {}).map(([k, v]) => `${k}=${v}`);
    return this.request('GET', '/api/v1/devices', { query: { ...rest, tag } });
  }

  getDevice(id: string): Promise<DeviceDetail> {
    return this.request('GET', `/api/v1/devices/${encodeURIComponent(id)}`);
  }

  decommissionDevice(id: string): Promise<{ device: Device }> {
    return this.request('DELETE', `/api/v1/devices/${encodeURIComponent(id)}`);
  }

  /** Forgets the device's pinned key; its next signed ACK pins a new one. */
  resetDeviceKey(id: string): Promise<{ device: Device; forgotten: boolean }> {
    return this.request('POST', `/api/v1/devices/${encodeURIComponent(id)}/reset-key`);
  }

  /** Uploads an image from a stream (never buffered); `length` lets the server refuse early. */
  createRelease(input: ReleaseInput, stream: Readable, length?: number): Promise<Release> {
    const query = {
      name: input.name,
      version: input.version,
      class: input.hardwareClass,
      securityVersion: input.securityVersion,
    };
    return this.request('POST', '/api/v1/releases', { query, raw: { stream, length } });
  }

  /** Uploads an image file, reporting bytes sent. */
  createReleaseFromFile(
    input: ReleaseInput,
    file: string,
    onProgress?: (sentBytes: number, totalBytes: number) => void,
  ): Promise<Release> {
    const totalBytes = statSync(file).size;
    let sentBytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sentBytes += chunk.length;
        onProgress?.(sentBytes, totalBytes);
        done(null, chunk);
      },
    });
    const stream = createReadStream(file)
      .on('error', (err) => counter.destroy(err))
      .pipe(counter);
    return this.createRelease(input, stream, totalBytes);
  }

  listReleases(filter: { name?: string; class?: string; limit?: number; offset?: number } = {}) {
    return this.request<Page<Release>>('GET', '/api/v1/releases', { query: filter });
  }

  getRelease(id: string): Promise<Release> {
    return this.request('GET', `/api/v1/releases/${encodeURIComponent(id)}`);
  }

  assign(
    releaseId: string,
    deviceIds: string[],
    opts: { ttlS?: number; ackDeadlineS?: number } = {},
  ): Promise<{ releaseId: string; assignments: { deviceId: string; seq: number }[] }> {
    return this.request('POST', '/api/v1/assignments', { json: { releaseId, deviceIds, ...opts } });
  }

  listAssignments(deviceId: string): Promise<{ items: AssignmentView[] }> {
    return this.request('GET', `/api/v1/devices/${encodeURIComponent(deviceId)}/assignments`);
  }

  createToken(name: string, role: Role): Promise<Token & { token: string }> {
    return this.request('POST', '/api/v1/tokens', { json: { name, role } });
  }

  listTokens(): Promise<{ items: Token[] }> {
    return this.request('GET', '/api/v1/tokens');
  }

  revokeToken(idOrName: string): Promise<Token> {
    return this.request('DELETE', `/api/v1/tokens/${encodeURIComponent(idOrName)}`);
  }
}
