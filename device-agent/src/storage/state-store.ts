/**
 * Durable agent state: small JSON documents and binary blobs, each replaced atomically. The
 * file store writes through `writeFileAtomic`; the memory store serves tests and the simulator
 * (whose "crash" keeps the store and drops the agent).
 */
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { fbError } from '@fetchback/shared';

import { writeFileAtomic } from './atomic-file.js';

export interface StateStore {
  /** The JSON document `name`, or `undefined` when none was written. */
  readJson<T>(name: string): Promise<T | undefined>;
  /** Replaces document `name` atomically; durable when the promise resolves. */
  writeJson(name: string, value: unknown): Promise<void>;
  readBytes(name: string): Promise<Uint8Array | undefined>;
  writeBytes(name: string, data: Uint8Array): Promise<void>;
  /** Removes every entry whose name starts with `prefix` (a missing one is not an error). */
  removePrefix(prefix: string): Promise<void>;
}

const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,100}$/;

function checkName(name: string): string {
  if (!NAME_PATTERN.test(name)) throw fbError('FB_ERR_ARGUMENT', `state name ${name}`);
  return name;
}

/** State under a directory: `<dir>/<name>.json` and `<dir>/<name>.bin`. */
export class FileStateStore implements StateStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async readJson<T>(name: string): Promise<T | undefined> {
    const bytes = await this.read(`${checkName(name)}.json`);
    if (!bytes) return undefined;
    try {
      return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
    } catch (err) {
      // Atomic replacement means a torn document cannot happen; this is outside interference.
      throw fbError('FB_ERR_STORAGE', `${name}.json is not JSON: ${(err as Error).message}`);
    }
  }

  async writeJson(name: string, value: unknown): Promise<void> {
    const data = Buffer.from(JSON.stringify(value), 'utf8');
    return writeFileAtomic(join(this.dir, `${checkName(name)}.json`), data);
  }

  async readBytes(name: string): Promise<Uint8Array | undefined> {
    return this.read(`${checkName(name)}.bin`);
  }

  async writeBytes(name: string, data: Uint8Array): Promise<void> {
    return writeFileAtomic(join(this.dir, `${checkName(name)}.bin`), data);
  }

  async removePrefix(prefix: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    const doomed = names.filter((n) => n.startsWith(prefix));
    await Promise.all(doomed.map((n) => rm(join(this.dir, n), { force: true })));
  }

  private async read(file: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(join(this.dir, file)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fbError('FB_ERR_STORAGE', `read ${file}: ${(err as Error).message}`);
    }
  }
}

/** State in memory; values are copied in and out so callers cannot alias them. */
export class MemoryStateStore implements StateStore {
  private readonly json = new Map<string, string>();
  private readonly bytes = new Map<string, Uint8Array>();

  async readJson<T>(name: string): Promise<T | undefined> {
    const text = this.json.get(checkName(name));
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  async writeJson(name: string, value: unknown): Promise<void> {
    this.json.set(checkName(name), JSON.stringify(value));
  }

  async readBytes(name: string): Promise<Uint8Array | undefined> {
    const data = this.bytes.get(checkName(name));
    return data && new Uint8Array(data);
  }

  async writeBytes(name: string, data: Uint8Array): Promise<void> {
    this.bytes.set(checkName(name), new Uint8Array(data));
  }

  async removePrefix(prefix: string): Promise<void> {
    for (const key of [...this.json.keys()]) if (key.startsWith(prefix)) this.json.delete(key);
    for (const key of [...this.bytes.keys()]) if (key.startsWith(prefix)) this.bytes.delete(key);
  }
}
