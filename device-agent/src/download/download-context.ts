/**
 * What the download and verify steps need from the agent, and the names of their blobs.
 * Blobs carry the assignment's sequence number so that a resumed job never reads another's.
 */
import type { FetchRequest } from '@fetchback/shared';
import type { Logger } from 'pino';

import type { Clock, Random } from '../clock.js';
import type { Job } from '../lifecycle/agent-state.js';
import type { SlotStorage } from '../storage/slot-storage.js';
import type { StateStore } from '../storage/state-store.js';
import type { ObjectFetcher } from './object-fetcher.js';
import type { ReadBack } from './read-back.js';

export interface DownloadLimits {
  /** Fetch requests in flight, in chunks; 0 picks `ceil(windowBytes / chunk size)`. */
  readonly window: number;
  /** Bytes in flight when `window` is 0. */
  readonly windowBytes: number;
  readonly chunkStallMs: number;
  readonly maxStallRetries: number;
  readonly maxCorruptPerChunk: number;
  readonly busyBackoffBaseMs: number;
  readonly busyBackoffCapMs: number;
  /** Persist the held-chunk bitmap after this many new chunks … */
  readonly heldFlushChunks: number;
  /** … or this long after the first unflushed one, in milliseconds. */
  readonly heldFlushMs: number;
  /** Times verification may send the download back for chunks found bad on disk. */
  readonly maxRepairs: number;
}

export interface DownloadContext {
  readonly job: Job;
  readonly store: StateStore;
  readonly slots: SlotStorage;
  readonly clock: Clock;
  readonly random: Random;
  readonly limits: DownloadLimits;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly send: (request: FetchRequest) => void;
  readonly nextRid: () => number;
  readonly online: () => boolean;
  /** The fetcher FETCH_RESP messages go to now (undefined: none). */
  readonly attach: (fetcher: ObjectFetcher | undefined) => void;
  readonly onProgress: (held: number, total: number) => void;
  readonly onCorrupt: (index: number) => void;
  /**
   * The read-back of this job's target slot: the download feeds it what is written, the
   * verifying step finishes it. Absent when there is none for this job (after a restart).
   */
  readonly readBack?: ReadBack;
}

export const chunkTableBlob = (seq: number): string => `ctab-${seq}`;
export const heldBlob = (seq: number): string => `held-${seq}`;

/** The window in chunks for a release's chunk size (`docs/device.md`, "The fetch window"). */
export function windowFor(limits: DownloadLimits, chunkBytes: number): number {
  if (limits.window > 0) return limits.window;
  return Math.min(256, Math.max(1, Math.ceil(limits.windowBytes / chunkBytes)));
}
