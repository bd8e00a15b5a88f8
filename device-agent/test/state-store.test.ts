/**
 * Power-loss safety of the state store: a document is replaced atomically (temporary file,
 * fsync, rename, fsync of the directory), so a process killed at any instant of a write leaves
 * the old or the new document, never a torn one.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { isFetchbackError } from '@fetchback/shared';

import { FileStateStore, MemoryStateStore } from '../src/index.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fb-state-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('FileStateStore', () => {
  it('reads back what it wrote, and nothing for a name never written', async () => {
    const store = new FileStateStore(dir);
    await store.writeJson('state', { a: 1 });
    await store.writeBytes('held-1', Uint8Array.of(1, 2, 3));
    expect(await store.readJson('state')).toEqual({ a: 1 });
    expect(await store.readBytes('held-1')).toEqual(Uint8Array.of(1, 2, 3));
    expect(await store.readJson('missing')).toBeUndefined();
  });

  it('leaves no temporary file behind after a write', async () => {
    const store = new FileStateStore(dir);
    await store.writeJson('state', { a: 1 });
    expect(await readdir(dir)).toEqual(['state.json']);
  });

  it('ignores a temporary file left by a write that was cut short', async () => {
    const store = new FileStateStore(dir);
    await store.writeJson('state', { version: 1 });
    await writeFile(join(dir, 'state.json.deadbeef.tmp'), '{"version": 2, "tru');
    expect(await store.readJson('state')).toEqual({ version: 1 });
  });

  it('removes blobs by prefix', async () => {
    const store = new FileStateStore(dir);
    await store.writeBytes('held-1', Uint8Array.of(1));
    await store.writeBytes('ctab-1', Uint8Array.of(1));
    await store.removePrefix('held-');
    expect(await readdir(dir)).toEqual(['ctab-1.bin']);
  });

  it('refuses names that could escape its directory', async () => {
    const store = new FileStateStore(dir);
    await expect(store.writeJson('../x', {})).rejects.toSatisfy((e) =>
      isFetchbackError(e, 'FB_ERR_ARGUMENT'),
    );
  });

  it('holds the old or the new document when the writer is SIGKILLed mid-write', async () => {
    // A child rewrites one document as fast as it can; we kill it at random instants.
    const moduleUrl = new URL('../dist/storage/state-store.js', import.meta.url).href;
    const script = `
      const { FileStateStore } = await import(${JSON.stringify(moduleUrl)});
      const store = new FileStateStore(process.argv[1]);
      const padding = 'x'.repeat(64 * 1024);
      for (let n = 1; ; n++) await store.writeJson('state', { n, padding, check: n * 7 });
    `;
    for (let round = 0; round < 8; round++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir]);
      await new Promise((r) => setTimeout(r, 250 + Math.random() * 250));
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
      const doc = await new FileStateStore(dir).readJson<{ n: number; check: number }>('state');
      if (doc === undefined) continue;
      expect(doc.check).toBe(doc.n * 7);
    }
    const doc = await new FileStateStore(dir).readJson<{ n: number }>('state');
    expect(doc?.n).toBeGreaterThan(0);
  });
});

describe('MemoryStateStore', () => {
  it('copies values in and out so callers cannot alias stored state', async () => {
    const store = new MemoryStateStore();
    const bytes = Uint8Array.of(1, 2);
    await store.writeBytes('b', bytes);
    bytes[0] = 9;
    expect(await store.readBytes('b')).toEqual(Uint8Array.of(1, 2));
  });
});
