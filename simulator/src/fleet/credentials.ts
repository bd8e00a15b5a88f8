/**
 * Device registration through the API, with the credentials kept in the state directory so
 * that the next run reuses the same devices (a device secret is shown only once, at
 * registration). The file is per server URL and readable by its owner only. Before reuse the
 * server is asked which of the run's stored devices it still has as active, and the others are
 * registered again; a registration that hands out another root key or broker URL than the ones
 * stored means a new server at the same URL (its data directory removed), and the stored
 * record is replaced. Stored secrets of such a server would only be refused.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { writeFileAtomic } from '@fetchback/device-agent';
import { fbError, fromHex, isFetchbackError } from '@fetchback/shared';
import type { FetchbackClient } from '@fetchback/update-server';

import type { DeviceIdentity } from '../device/virtual-device.js';

export interface FleetCredentials {
  readonly brokerUrl: string;
  readonly rootPublicKey: Uint8Array;
  readonly topicPrefix: string;
  readonly identities: DeviceIdentity[];
}

interface StoredServer {
  brokerUrl: string;
  rootPublicKey: string;
  topicPrefix: string;
  devices: Record<string, { password: string; hardwareClass: string }>;
}

interface StoredFile {
  format: 1;
  servers: Record<string, StoredServer>;
}

const FILE = 'credentials.json';
/** Devices asked for per page when checking the stored ones (the API's largest page). */
const LIST_PAGE = 1000;

export interface RegisterOptions {
  readonly client: FetchbackClient;
  readonly stateDir: string;
  readonly count: number;
  readonly prefix: string;
  readonly hardwareClass: string;
  readonly tags: Record<string, string>;
  /** Registrations in flight at once. */
  readonly concurrency?: number;
  readonly onRegistered?: (done: number, total: number) => void;
}

/** `<prefix>-00001` …: zero-padded so that ids sort in order. */
export function deviceIds(prefix: string, count: number): string[] {
  const width = Math.max(5, String(count).length);
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i + 1).padStart(width, '0')}`);
}

/**
 * Registers the devices this state directory does not know yet and returns all `count`.
 *
 * @throws FetchbackError from the API; `FB_ERR_ARGUMENT` when a device exists on the server
 *   but its secret is not in the state directory (use another `--prefix` or state directory).
 */
export async function registerFleet(options: RegisterOptions): Promise<FleetCredentials> {
  const file = await readStored(options.stateDir);
  const key = options.client.baseUrl;
  const ids = deviceIds(options.prefix, options.count);
  let server = await stillKnown(options, file.servers[key], ids);
  let done = ids.filter((id) => server?.devices[id]).length;
  options.onRegistered?.(done, ids.length);

  const missing = ids.filter((id) => !server?.devices[id]);
  let next = 0;
  const worker = async () => {
    while (next < missing.length) {
      const id = missing[next++] as string;
      const { agentConfig } = await register(options, id);
      if (
        server?.rootPublicKey !== agentConfig.rootPublicKey ||
        server.brokerUrl !== agentConfig.brokerUrl
      ) {
        server = {
          brokerUrl: agentConfig.brokerUrl,
          rootPublicKey: agentConfig.rootPublicKey,
          topicPrefix: agentConfig.topicPrefix,
          devices: {},
        };
      }
      server.devices[id] = {
        password: agentConfig.password,
        hardwareClass: agentConfig.hardwareClass,
      };
      options.onRegistered?.(++done, ids.length);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
  } finally {
    if (server) {
      file.servers[key] = server;
      await writeFileAtomic(
        join(options.stateDir, FILE),
        Buffer.from(JSON.stringify(file, null, 1)),
      );
    }
  }
  if (!server) throw fbError('FB_ERR_ARGUMENT', '"--devices" expected at least 1, got 0');
  const known = server;
  return {
    brokerUrl: known.brokerUrl,
    rootPublicKey: fromHex(known.rootPublicKey),
    topicPrefix: known.topicPrefix,
    identities: ids.map((id) => ({
      id,
      ...(known.devices[id] as StoredServer['devices'][string]),
    })),
  };
}

/** The stored record without those of `ids` that the server no longer has as active. */
async function stillKnown(
  options: RegisterOptions,
  stored: StoredServer | undefined,
  ids: readonly string[],
): Promise<StoredServer | undefined> {
  if (!stored || !ids.some((id) => stored.devices[id])) return stored;
  const active = new Set<string>();
  for (let offset = 0; ;) {
    const page = await options.client.listDevices({
      tags: { fleet: options.prefix },
      status: 'active',
      limit: LIST_PAGE,
      offset,
    });
    page.items.forEach((device) => active.add(device.id));
    offset += page.items.length;
    if (page.items.length === 0 || offset >= page.total) break;
  }
  const gone = new Set(ids.filter((id) => !active.has(id)));
  const devices = Object.fromEntries(
    Object.entries(stored.devices).filter(([id]) => !gone.has(id)),
  );
  return { ...stored, devices };
}

async function register(options: RegisterOptions, id: string) {
  try {
    return await options.client.registerDevice({
      id,
      hardwareClass: options.hardwareClass,
      tags: options.tags,
    });
  } catch (err) {
    if (isFetchbackError(err, 'FB_ERR_DEVICE_EXISTS')) {
      throw fbError(
        'FB_ERR_ARGUMENT',
        `device ${id} exists on the server but its secret is not in ${options.stateDir}; ` +
          'use another --prefix or the state directory of the run that registered it',
      );
    }
    throw err;
  }
}

async function readStored(stateDir: string): Promise<StoredFile> {
  try {
    const text = await readFile(join(stateDir, FILE), 'utf8');
    const parsed = JSON.parse(text) as StoredFile;
    if (parsed.format === 1 && typeof parsed.servers === 'object') return parsed;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw fbError('FB_ERR_STORAGE', `${join(stateDir, FILE)}: ${(err as Error).message}`);
    }
  }
  return { format: 1, servers: {} };
}
