/**
 * The durable outbox: every ACK_REQ and STATUS is written to disk before it is sent, and sent
 * again with backoff (full jitter, capped) until an ACK_RESP with its request id arrives. The
 * same `rid` goes out on every retry, so the server records it once (`docs/protocol.md` §8).
 *
 * The outbox is bounded: past `maxEntries`, the oldest STATUS reports are dropped first. ACKs
 * are never dropped (there are at most six per assignment).
 */
import { type AckResponse, backoffDelayMs } from '@fetchback/shared';

import type { Clock, Random, TimerHandle } from '../clock.js';
import { CoalescingWriter } from '../storage/coalescing-writer.js';
import type { StateStore } from '../storage/state-store.js';

export type OutboxKind = 'ack' | 'status';

export interface OutboxEntry {
  readonly kind: OutboxKind;
  readonly rid: string;
  /** The encoded ACK_REQ or STATUS. */
  readonly payload: Uint8Array;
}

interface StoredEntry {
  readonly kind: OutboxKind;
  readonly rid: string;
  readonly payload: string;
}

export interface OutboxOptions {
  readonly store: StateStore;
  readonly clock: Clock;
  readonly random: Random;
  /** Sends one entry (QoS 1, not awaited). */
  readonly send: (entry: OutboxEntry) => void;
  readonly maxEntries: number;
  /** Wait before the first retry, in milliseconds; the jittered backoff is added to it. */
  readonly retryAfterMs: number;
  readonly backoffBaseMs: number;
  readonly backoffCapMs: number;
}

interface Pending {
  readonly entry: OutboxEntry;
  attempts: number;
  timer: TimerHandle | undefined;
}

const DOCUMENT = 'outbox';

export class Outbox {
  private readonly options: OutboxOptions;
  private readonly pending = new Map<string, Pending>();
  private readonly writer: CoalescingWriter;
  private online = false;
  private stopped = false;
  private drainWaiters: Array<() => void> = [];

  constructor(options: OutboxOptions) {
    this.options = options;
    this.writer = new CoalescingWriter(() => this.persist());
  }

  /** Entries waiting for their ACK_RESP, oldest first. */
  get entries(): OutboxEntry[] {
    return [...this.pending.values()].map((p) => p.entry);
  }

  /** Loads what a previous run left unanswered. */
  async load(): Promise<void> {
    const stored = (await this.options.store.readJson<StoredEntry[]>(DOCUMENT)) ?? [];
    for (const s of stored) {
      const entry = { kind: s.kind, rid: s.rid, payload: Buffer.from(s.payload, 'base64') };
      this.pending.set(s.rid, { entry, attempts: 0, timer: undefined });
    }
  }

  /**
   * Writes the entry to disk, then sends it. An entry whose rid is already waiting is not added
   * twice (a step repeated after a crash produces the same ACK rid).
   */
  async add(entry: OutboxEntry): Promise<void> {
    if (this.pending.has(entry.rid)) return;
    this.pending.set(entry.rid, { entry, attempts: 0, timer: undefined });
    this.enforceBound();
    await this.writer.flush();
    const pending = this.pending.get(entry.rid);
    if (pending && this.online && !this.stopped) this.transmit(pending);
  }

  /** Settles the entry an ACK_RESP answers; returns false for an unknown rid. */
  async answer(response: AckResponse): Promise<boolean> {
    const pending = this.pending.get(response.rid);
    if (!pending) return false;
    this.options.clock.clearTimeout(pending.timer);
    this.pending.delete(response.rid);
    await this.writer.flush();
    if (this.pending.size === 0) this.drainWaiters.splice(0).forEach((w) => w());
    return true;
  }

  /** The link is up: send everything now, in order. */
  connected(): void {
    this.online = true;
    for (const p of this.pending.values()) {
      this.options.clock.clearTimeout(p.timer);
      this.transmit(p);
    }
  }

  /** The link is down: stop retrying until it comes back. */
  disconnected(): void {
    this.online = false;
    for (const p of this.pending.values()) this.options.clock.clearTimeout(p.timer);
  }

  /** Resolves when nothing is waiting, or after `timeoutMs`. */
  drained(timeoutMs: number): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.options.clock.setTimeout(resolve, timeoutMs);
      this.drainWaiters.push(() => {
        this.options.clock.clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Stops every timer; the entries stay on disk for the next run. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.disconnected();
    await this.writer.flush();
  }

  private transmit(pending: Pending): void {
    this.options.send(pending.entry);
    const { retryAfterMs, backoffBaseMs, backoffCapMs } = this.options;
    const delayMs =
      retryAfterMs +
      backoffDelayMs(pending.attempts++, {
        baseMs: backoffBaseMs,
        capMs: backoffCapMs,
        random: this.options.random,
      });
    pending.timer = this.options.clock.setTimeout(() => {
      if (this.online && !this.stopped && this.pending.get(pending.entry.rid) === pending) {
        this.transmit(pending);
      }
    }, delayMs);
  }

  private enforceBound(): void {
    for (const [rid, p] of this.pending) {
      if (this.pending.size <= this.options.maxEntries) return;
      if (p.entry.kind !== 'status') continue;
      this.options.clock.clearTimeout(p.timer);
      this.pending.delete(rid);
    }
  }

  private persist(): Promise<void> {
    const stored: StoredEntry[] = [...this.pending.values()].map(({ entry }) => ({
      kind: entry.kind,
      rid: entry.rid,
      payload: Buffer.from(entry.payload).toString('base64'),
    }));
    return this.options.store.writeJson(DOCUMENT, stored);
  }
}
