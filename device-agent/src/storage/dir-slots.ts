/**
 * Slots as two image files under one directory, and `current`, a symlink naming the active
 * one:
 *
 *     <dir>/a.img  <dir>/b.img  <dir>/current -> a.img
 *
 * The pointer moves by creating a new symlink beside it and renaming it over `current`, then
 * fsyncing the directory, so after a power cut it names either the old or the new slot.
 */
import { writeSync } from 'node:fs';
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

export class DirSlots implements SlotStorage {
  readonly dir: string;
  private readonly handles = new Map<SlotId, Promise<FileHandle>>();

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
   * Writes `data` at `offsetBytes` with `pwrite(2)` on the agent's own thread. A write handed
   * to libuv's thread pool finished in well under a millisecond, but its completion waited
   * behind the socket reads of the next chunks in the same event loop: measured 1 to 14 ms per
   * 256 KiB chunk at full rate, and the fetch window stays full until a chunk is written. A
   * write into the page cache costs 0.07 to 0.1 ms here (docs/performance.md). On flash that
   * throttles writeback the call blocks; that is the throttling the window is meant to apply.
   */
  async write(slot: SlotId, offsetBytes: number, data: Uint8Array): Promise<void> {
    try {
      const { fd } = await this.handle(slot);
      for (let done = 0; done < data.length;) {
        done += writeSync(fd, data, done, data.length - done, offsetBytes + done);
      }
    } catch (err) {
      throw storageError(`write slot ${slot}`, err);
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

function storageError(what: string, err: unknown) {
  return fbError('FB_ERR_STORAGE', `${what}: ${(err as Error).message}`);
}
