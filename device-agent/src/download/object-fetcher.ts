/**
 * Fetches the chunks of one object (an image or its chunk table) with a window of requests in
 * flight (`docs/protocol.md` §7, `docs/device.md` "The fetch window").
 *
 * - A chunk counts against the window from its request until its write completes, so a slow
 *   flash throttles the fetch and memory stays at about `window` chunks.
 * - No chunk for `chunkStallMs` (while connected): the chunks in flight are requested again and
 *   the next stall wait grows with jittered backoff; after `maxStallRetries` stalls in a row
 *   the fetch fails with `FB_ERR_STALLED`.
 * - A chunk that does not verify is requested again and counted; after `maxCorruptPerChunk`
 *   bad copies of one chunk the fetch fails with `FB_ERR_CHUNK_DIGEST`.
 * - `FB_ERR_BUSY` defers the refused chunks with backoff; any other refusal ends the fetch
 *   with its code.
 */
import {
  type FetchRequest,
  type FetchResponse,
  backoffDelayMs,
  bytesEqual,
  fbError,
  isErrorCode,
} from '@fetchback/shared';

import type { Clock, Random, TimerHandle } from '../clock.js';

export interface FetchTarget {
  readonly obj: Uint8Array;
  /** Chunk indices to fetch, in the order wanted. */
  readonly missing: readonly number[];
  /** Byte length chunk `index` must have. */
  expectedBytes(index: number): number;
  /** Verifies and stores a chunk; false when it does not verify (nothing is stored then). */
  accept(index: number, data: Uint8Array): Promise<boolean>;
}

export interface FetcherOptions {
  readonly window: number;
  readonly chunkStallMs: number;
  readonly maxStallRetries: number;
  readonly maxCorruptPerChunk: number;
  readonly busyBackoffBaseMs: number;
  readonly busyBackoffCapMs: number;
  readonly clock: Clock;
  readonly random: Random;
  readonly send: (request: FetchRequest) => void;
  readonly nextRid: () => number;
  readonly online: () => boolean;
  readonly signal: AbortSignal;
  /** Called for every chunk dropped as corrupt. */
  readonly onCorrupt?: (index: number) => void;
}

const MAX_INDICES_PER_REQUEST = 256;
const MAX_TRACKED_RIDS = 1024;

export class ObjectFetcher {
  private readonly target: FetchTarget;
  private readonly options: FetcherOptions;
  private readonly queue: number[];
  private readonly inFlight = new Set<number>();
  private readonly deferred = new Set<number>();
  private writing = 0;
  private readonly ridIndices = new Map<number, readonly number[]>();
  private readonly corrupt = new Map<number, number>();
  private stalls = 0;
  private busyAttempts = 0;
  private stallTimer: TimerHandle | undefined;
  private readonly busyTimers = new Set<TimerHandle>();
  private settle: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private finished = false;

  constructor(target: FetchTarget, options: FetcherOptions) {
    this.target = target;
    this.options = options;
    this.queue = [...target.missing];
  }

  /** Resolves when every chunk is stored; rejects with a coded error. */
  run(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      const { signal } = this.options;
      if (signal.aborted) return this.fail(abortReason(signal));
      signal.addEventListener('abort', () => this.fail(abortReason(signal)), { once: true });
      this.topUp(true);
      this.checkDone();
    });
  }

  /** Routes a FETCH_RESP for any object; ignores the ones not for this fetch. */
  onResponse(response: FetchResponse): void {
    if (this.finished || !bytesEqual(response.obj, this.target.obj)) return;
    if (response.err !== undefined) return this.onRefusal(response, response.err);
    const index = response.idx;
    if (index === undefined || response.data === undefined || !this.inFlight.has(index)) return;
    this.inFlight.delete(index);
    this.stalls = 0;
    this.busyAttempts = 0;
    this.armStallTimer();
    void this.store(index, response.data);
  }

  /** The link came back: ask again for what was in flight when it went. */
  connected(): void {
    if (this.finished) return;
    this.request([...this.inFlight]);
    this.armStallTimer();
    this.topUp(true);
  }

  /** The link went down: a stall now says nothing about the server. */
  disconnected(): void {
    this.options.clock.clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }

  private async store(index: number, data: Uint8Array): Promise<void> {
    this.writing++;
    let good: boolean;
    try {
      good =
        data.length === this.target.expectedBytes(index) && (await this.target.accept(index, data));
    } catch (err) {
      return this.fail(err as Error);
    } finally {
      this.writing--;
    }
    if (!good) this.onCorruptChunk(index);
    this.topUp(false);
    this.checkDone();
  }

  private onCorruptChunk(index: number): void {
    const count = (this.corrupt.get(index) ?? 0) + 1;
    this.corrupt.set(index, count);
    this.options.onCorrupt?.(index);
    if (count > this.options.maxCorruptPerChunk) {
      return this.fail(fbError('FB_ERR_CHUNK_DIGEST', `chunk ${index} bad ${count} times`));
    }
    this.queue.unshift(index);
  }

  private onRefusal(response: FetchResponse, code: string): void {
    const indices = response.idx !== undefined ? [response.idx] : this.ridIndices.get(response.rid);
    const mine = (indices ?? []).filter((i) => this.inFlight.has(i));
    if (mine.length === 0) return;
    if (code !== 'FB_ERR_BUSY') {
      const known = isErrorCode(code) ? code : 'FB_ERR_INTERNAL';
      return this.fail(fbError(known, `fetch refused: ${code} ${response.msg ?? ''}`.trim()));
    }
    mine.forEach((i) => {
      this.inFlight.delete(i);
      this.deferred.add(i);
    });
    const delayMs = backoffDelayMs(this.busyAttempts++, {
      baseMs: this.options.busyBackoffBaseMs,
      capMs: this.options.busyBackoffCapMs,
      random: this.options.random,
    });
    const timer = this.options.clock.setTimeout(() => {
      this.busyTimers.delete(timer);
      if (this.finished) return;
      mine.forEach((i) => this.deferred.delete(i));
      this.queue.unshift(...mine);
      this.topUp(true);
    }, delayMs);
    this.busyTimers.add(timer);
  }

  /** Fills the window. Unless `force`, waits until a quarter of it is free to batch requests. */
  private topUp(force: boolean): void {
    if (this.finished || !this.options.online()) return;
    const { window } = this.options;
    const free = window - (this.inFlight.size + this.deferred.size + this.writing);
    const batch = Math.max(1, Math.floor(window / 4));
    if (free <= 0 || this.queue.length === 0 || (!force && free < batch)) return;
    const next = this.queue.splice(0, free);
    next.forEach((i) => this.inFlight.add(i));
    this.request(next);
    if (this.stallTimer === undefined) this.armStallTimer();
  }

  private request(indices: number[]): void {
    for (let i = 0; i < indices.length; i += MAX_INDICES_PER_REQUEST) {
      const idx = indices.slice(i, i + MAX_INDICES_PER_REQUEST);
      const rid = this.options.nextRid();
      this.ridIndices.set(rid, idx);
      if (this.ridIndices.size > MAX_TRACKED_RIDS) {
        this.ridIndices.delete(this.ridIndices.keys().next().value as number);
      }
      this.options.send({ rid, obj: this.target.obj, idx });
    }
  }

  private armStallTimer(): void {
    this.options.clock.clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    if (this.finished || this.inFlight.size === 0 || !this.options.online()) return;
    const { chunkStallMs, random } = this.options;
    const waitMs =
      chunkStallMs +
      (this.stalls === 0
        ? 0
        : backoffDelayMs(this.stalls, { baseMs: chunkStallMs, capMs: 8 * chunkStallMs, random }));
    this.stallTimer = this.options.clock.setTimeout(() => this.onStall(), waitMs);
  }

  private onStall(): void {
    this.stallTimer = undefined;
    if (this.finished) return;
    this.stalls++;
    if (this.stalls > this.options.maxStallRetries) {
      return this.fail(
        fbError('FB_ERR_STALLED', `no chunk after ${this.options.maxStallRetries} re-requests`),
      );
    }
    this.request([...this.inFlight]);
    this.armStallTimer();
  }

  private checkDone(): void {
    const idle = this.inFlight.size + this.deferred.size + this.writing === 0;
    if (!this.finished && idle && this.queue.length === 0) {
      this.finish();
      this.settle?.resolve();
    }
  }

  private fail(err: Error): void {
    if (this.finished) return;
    this.finish();
    this.settle?.reject(err);
  }

  private finish(): void {
    this.finished = true;
    this.options.clock.clearTimeout(this.stallTimer);
    this.busyTimers.forEach((t) => this.options.clock.clearTimeout(t));
    this.busyTimers.clear();
  }
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : fbError('FB_ERR_STATE', 'aborted');
}
