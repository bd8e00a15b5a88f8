/**
 * The device key: made once, kept across starts, printed for provisioning by
 * `fetchback-agent --device-key` (the real CLI process).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

import { publicKeyOf, toHex } from '@fetchback/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { FileStateStore, MemoryStateStore, loadOrCreateDeviceKey } from '../src/index.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const run = promisify(execFile);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fb-device-key-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the device key', () => {
  it('is made once and loaded again on every later start', async () => {
    const store = new FileStateStore(join(dir, 'state'));
    const first = await loadOrCreateDeviceKey(store);
    const again = await loadOrCreateDeviceKey(new FileStateStore(join(dir, 'state')));
    expect(again.secretKey).toEqual(first.secretKey);
    expect(again.publicKey).toEqual(publicKeyOf(first.secretKey));
    expect((await stat(join(dir, 'state', 'device-key.bin'))).mode & 0o777).toBe(0o600);
  });

  it('replaces an entry that is not a 32-byte seed', async () => {
    const store = new MemoryStateStore();
    await store.writeBytes('device-key', Uint8Array.of(1, 2, 3));
    const key = await loadOrCreateDeviceKey(store);
    expect(key.secretKey).toHaveLength(32);
    expect(await store.readBytes('device-key')).toEqual(key.secretKey);
  });

  it('is printed by fetchback-agent --device-key, the same on every call', async () => {
    const args = [CLI, '--device-key', '--data-dir', dir];
    const first = (await run(process.execPath, args)).stdout.trim();
    const second = (await run(process.execPath, args)).stdout.trim();
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(second).toBe(first);
    const stored = await loadOrCreateDeviceKey(new FileStateStore(join(dir, 'state')));
    expect(toHex(stored.publicKey)).toBe(first);
  });
});
