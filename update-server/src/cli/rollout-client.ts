/**
 * The rollout part of the API client: the rollout routes and the server-sent event stream.
 * Kept beside `FetchbackClient` (whose JSON calls it reuses) rather than inside it.
 */
import { fbError, isErrorCode } from '@fetchback/shared';

import type { FetchbackClient, Page } from './client.js';
import { SseParser } from './sse.js';
import type { SseEvent } from './sse.js';

export type WaveSpec = { count: number } | { percent: number };

export interface RolloutCreateInput {
  releaseId: string;
  name?: string;
  target?: {
    deviceIds?: string[];
    hwClass?: string;
    tags?: Record<string, string>;
    currentVersion?: string;
  };
  strategy?: {
    waves?: WaveSpec[];
    soakMs?: number;
    successThresholdPercent?: number;
    failureThreshold?: { percent?: number; minCount?: number; action?: 'pause' | 'abort' };
    maxConcurrent?: number;
    deviceTimeoutMs?: number;
    maxRetries?: number;
    retryBackoffMs?: number;
    maintenanceWindow?: { start: string; end: string } | null;
    rollbackOnAbort?: boolean;
  };
  /** ISO 8601. */
  startAt?: string;
}

export type Counts = Record<string, number>;

export interface RolloutWave {
  wave: number;
  size: number;
  state: 'pending' | 'running' | 'soaking' | 'succeeded';
  startedAt: string | null;
  soakStartedAt: string | null;
  finishedAt: string | null;
  counts: Counts;
}

export interface Rollout {
  id: string;
  name: string;
  releaseId: string;
  state: 'draft' | 'scheduled' | 'running' | 'paused' | 'completed' | 'aborted';
  reason: string | null;
  currentWave: number;
  createdBy: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  totalDevices: number;
  counts: Counts;
  rollback: Counts;
  waves: RolloutWave[];
  strategy: Required<RolloutCreateInput>['strategy'];
  target: Required<RolloutCreateInput>['target'];
}

export interface RolloutDevice {
  deviceId: string;
  wave: number;
  state: string;
  attempts: number;
  seq: number | null;
  lastCode: string | null;
  lastStatus: string | null;
  rollbackState: string | null;
  updatedAt: string;
}

export type RolloutAction = 'start' | 'pause' | 'resume' | 'abort';

export interface RolloutListFilter {
  state?: string;
  releaseId?: string;
  limit?: number;
  offset?: number;
  cursor?: string;
}

const path = (id: string, tail = ''): string => `/api/v1/rollouts/${encodeURIComponent(id)}${tail}`;

export class RolloutClient {
  constructor(
    private readonly client: FetchbackClient,
    private readonly token: string | undefined,
  ) {}

  create(input: RolloutCreateInput): Promise<Rollout> {
    return this.client.request('POST', '/api/v1/rollouts', { json: input });
  }

  act(id: string, action: RolloutAction): Promise<Rollout> {
    return this.client.request('POST', path(id, `/${action}`));
  }

  get(id: string): Promise<Rollout> {
    return this.client.request('GET', path(id));
  }

  list(filter: RolloutListFilter = {}): Promise<Page<Rollout> & { nextCursor: string | null }> {
    return this.client.request('GET', '/api/v1/rollouts', { query: { ...filter } });
  }

  devices(
    id: string,
    filter: { state?: string; wave?: number; limit?: number; offset?: number } = {},
  ): Promise<Page<RolloutDevice>> {
    return this.client.request('GET', path(id, '/devices'), { query: { ...filter } });
  }

  /**
   * Follows `GET /api/v1/events` (optionally one rollout's) until `signal` aborts.
   *
   * @throws FetchbackError with the server's code when the stream is refused.
   */
  async *events(opts: { rolloutId?: string; signal?: AbortSignal } = {}): AsyncGenerator<SseEvent> {
    const query = opts.rolloutId ? `?rollout=${encodeURIComponent(opts.rolloutId)}` : '';
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let response: Response;
    try {
      response = await fetch(`${this.client.baseUrl}/api/v1/events${query}`, {
        headers,
        signal: opts.signal,
      });
    } catch (err) {
      if (opts.signal?.aborted) return;
      throw fbError('FB_ERR_SERVER_UNREACHABLE', `${this.client.baseUrl}: ${String(err)}`);
    }
    if (!response.ok || response.body === null) {
      const body = (await response.json().catch(() => ({}))) as { code?: string; detail?: string };
      const code = isErrorCode(body.code) ? body.code : 'FB_ERR_INTERNAL';
      throw fbError(code, body.detail ?? `HTTP ${response.status}`, {
        status: response.status,
      });
    }
    yield* this.read(response.body, opts.signal);
  }

  private async *read(
    body: ReadableStream<Uint8Array>,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<SseEvent> {
    const parser = new SseParser();
    const decoder = new TextDecoder();
    const reader = body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        yield* parser.push(decoder.decode(value, { stream: true }));
      }
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    } finally {
      reader.releaseLock();
    }
  }
}
