/**
 * Power-safe file replacement: write a temporary file, fsync it, rename it over the target,
 * fsync the directory. After a power cut the target holds either the old or the new content,
 * never a mix, and a completed write survives (rename is atomic on POSIX file systems; the
 * directory fsync makes the rename itself durable).
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

import { fbError } from '@fetchback/shared';

/** Replaces `path` with `data` atomically and durably. */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(dir, { recursive: true });
    await writeAndSync(temp, data);
    await rename(temp, path);
    await syncDirectory(dir);
  } catch (err) {
    await rm(temp, { force: true });
    throw fbError('FB_ERR_STORAGE', `write ${path}: ${(err as Error).message}`);
  }
}

async function writeAndSync(path: string, data: Uint8Array): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsyncs a directory so that a rename or create in it survives a power cut. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Some file systems refuse fsync on a directory (EINVAL, EISDIR); the rename is then as
    // durable as that file system makes it, and there is nothing more we can do.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    await handle?.close();
  }
}
