/**
 * Slots as two image files under one directory, and `current`, a symlink naming the active
 * one:
 *
 *     <dir>/a.img  <dir>/b.img  <dir>/current -> a.img
 *
 * The pointer moves by creating a new symlink beside it and renaming it over `current`, then
 * fsyncing the directory, so after a power cut it names either the old or the new slot.
 */
import {
  type FileHandle,
  mkdir,
  open,
  readlink,
  rename,
  rm,
  stat,
  symlink,
} from 'node:fs/promises';
import { join } from 'node:path';

import { fbError } from '@fetchback/shared';

import { syncDirectory } from './atomic-file.js';
import type { SlotId, SlotStorage } from './slot-storage.js';

/** Most writes joined into one `pwritev(2)` (below the usual IOV_MAX of 1024). */
const MAX_RUN_WRITES = 64;

export class DirSlots implements SlotStorage {
  readonly dir: string;
  private readonly handles = new Map<SlotId, Promise<FileHandle>>();
  /** Writes waiting for the running one, per slot; present while a write runs. */
  private readonly writeQueues = new Map<SlotId, PendingWrite[]>();

  constructor(dir: string) {
    this.dir = dir;
  }

  async active(): Promise<SlotId> {
    try {
      const target = await readlink(join(this.dir, 'current'));
      return target === 'b.img' ? 'b' : 'a';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'a';
      throw storageError('read current', err);
    }
  }

  async setActive(slot: SlotId): Promise<void> {
    const temp = join(this.dir, 'current.tmp');
    try {
      await mkdir(this.dir, { recursive: true });
      await rm(temp, { force: true });
      await symlink(`${slot}.img`, temp);
      await rename(temp, join(this.dir, 'current'));
      await syncDirectory(this.dir);
    } catch (err) {
      throw storageError('switch current', err);
    }
  }

  async create(slot: SlotId, sizeBytes: number): Promise<void> {
    await this.closeHandle(slot);
    try {
      await mkdir(this.dir, { recursive: true });
      const handle = await open(this.pathOf(slot), 'w+', 0o644);
      await handle.truncate(sizeBytes);
      await handle.sync();
      this.handles.set(slot, Promise.resolve(handle));
      await syncDirectory(this.dir);
    } catch (err) {
      throw storageError(`create slot ${slot}`, err);
    }
  }

  async size(slot: SlotId): Promise<number | undefined> {
    try {
      return (await stat(this.pathOf(slot))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw storageError(`stat slot ${slot}`, err);
    }
  }

  /**
   * Writes `data` at `offsetBytes`. While a write to the slot runs, later ones queue and then
   * go out together, contiguous runs as one `pwritev(2)`: each write handed to libuv's thread
   * pool cost the agent's main thread a wake-up of a worker, which on a two-core device was a
   * sixth of its time at full chunk rate. Chunks never overlap; overlapping writes queued
   * together would land in offset order, not in the order they were made.
   */
  write(slot: SlotId, offsetBytes: number, data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      let queue = this.writeQueues.get(slot);
      const running = queue !== undefined;
      if (!queue) {
        queue = [];
        this.writeQueues.set(slot, queue);
      }
      queue.push({ offsetBytes, data, resolve, reject });
      if (!running) void this.drainWrites(slot);
    });
  }

  private async drainWrites(slot: SlotId): Promise<void> {
    const queue = this.writeQueues.get(slot) as PendingWrite[];
    while (queue.length > 0) {
      const batch = queue.splice(0, queue.length).sort((a, b) => a.offsetBytes - b.offsetBytes);
      for (const run of contiguousRuns(batch)) {
        try {
          await this.writeRun(slot, run);
          run.forEach((w) => w.resolve());
        } catch (err) {
          const failure = storageError(`write slot ${slot}`, err);
          run.forEach((w) => w.reject(failure));
        }
      }
    }
    this.writeQueues.delete(slot);
  }

  private async writeRun(slot: SlotId, run: PendingWrite[]): Promise<void> {
    const handle = await this.handle(slot);
    const first = run[0] as PendingWrite;
    let buffers = run.map((w) => w.data);
    let position = first.offsetBytes;
    while (buffers.length > 0) {
      const { bytesWritten } = await handle.writev(buffers, position);
      position += bytesWritten;
      buffers = skipBytes(buffers, bytesWritten);
    }
  }

  async read(
    slot: SlotId,
    offsetBytes: number,
    length: number,
    into?: Uint8Array,
  ): Promise<Uint8Array> {
    try {
      const handle = await this.handle(slot);
      const buffer = into ? into.subarray(0, length) : new Uint8Array(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offsetBytes);
      return buffer.subarray(0, bytesRead);
    } catch (err) {
      throw storageError(`read slot ${slot}`, err);
    }
  }

  async sync(slot: SlotId): Promise<void> {
    try {
      await (await this.handle(slot)).sync();
    } catch (err) {
      throw storageError(`sync slot ${slot}`, err);
    }
  }

  pathOf(slot: SlotId): string {
    return join(this.dir, `${slot}.img`);
  }

  async close(): Promise<void> {
    await Promise.all([...this.handles.keys()].map((slot) => this.closeHandle(slot)));
  }

  private handle(slot: SlotId): Promise<FileHandle> {
    let handle = this.handles.get(slot);
    if (!handle) {
      handle = open(this.pathOf(slot), 'r+');
      handle.catch(() => this.handles.delete(slot));
      this.handles.set(slot, handle);
    }
    return handle;
  }

  private async closeHandle(slot: SlotId): Promise<void> {
    const handle = this.handles.get(slot);
    this.handles.delete(slot);
    if (handle) await (await handle.catch(() => undefined))?.close();
  }
}

interface PendingWrite {
  readonly offsetBytes: number;
  readonly data: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** Splits writes sorted by offset into runs that each cover one contiguous range. */
function contiguousRuns(sorted: PendingWrite[]): PendingWrite[][] {
  const runs: PendingWrite[][] = [];
  let end = -1;
  for (const w of sorted) {
    const last = runs[runs.length - 1];
    if (last && w.offsetBytes === end && last.length < MAX_RUN_WRITES) last.push(w);
    else runs.push([w]);
    end = w.offsetBytes + w.data.length;
  }
  return runs;
}

/** The buffers left after the first `bytes` of them were written (a short write). */
function skipBytes(buffers: Uint8Array[], bytes: number): Uint8Array[] {
  const rest = [...buffers];
  let skip = bytes;
  while (rest.length > 0 && skip >= (rest[0] as Uint8Array).length) {
    skip -= (rest.shift() as Uint8Array).length;
  }
  if (rest.length > 0 && skip > 0) rest[0] = (rest[0] as Uint8Array).subarray(skip);
  return rest;
}

function storageError(what: string, err: unknown) {
  return fbError('FB_ERR_STORAGE', `${what}: ${(err as Error).message}`);
}
