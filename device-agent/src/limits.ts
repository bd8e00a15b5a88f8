/**
 * The agent's bounds and timings, with their defaults. `docs/device.md` ("Configuration")
 * documents each; `config.ts` validates the ones a config file sets.
 */
import type { DownloadLimits } from './download/download-context.js';
import type { InstallLimits } from './lifecycle/install-steps.js';

export interface OutboxLimits {
  /** Most entries kept; past it the oldest STATUS reports are dropped (never ACKs). */
  readonly maxEntries: number;
  /** Wait for an ACK_RESP before the first retry, in milliseconds. */
  readonly retryAfterMs: number;
  /** Full-jitter backoff added to `retryAfterMs`: base and cap, in milliseconds. */
  readonly backoffBaseMs: number;
  readonly backoffCapMs: number;
}

export interface AgentLimits extends DownloadLimits, InstallLimits {
  /** Largest image accepted, in bytes (checked by the manifest verifier, before download). */
  readonly maxImageBytes: number;
  /** Least time between two progress STATUS reports while downloading; 0 for none. */
  readonly progressIntervalMs: number;
  /** How long the agent waits for its outbox to drain before the reboot hook, in ms. */
  readonly rebootFlushMs: number;
  readonly outbox: OutboxLimits;
}

export const DEFAULT_LIMITS: AgentLimits = Object.freeze({
  maxImageBytes: 4 * 1024 ** 3,
  // 0: derive the window from `windowBytes` and the release's chunk size; 1 MiB in flight is
  // 4 chunks of 256 KiB, the server's default chunk size (docs/device.md, "The fetch window").
  window: 0,
  windowBytes: 1024 * 1024,
  chunkStallMs: 10_000,
  maxStallRetries: 6,
  maxCorruptPerChunk: 3,
  busyBackoffBaseMs: 1_000,
  busyBackoffCapMs: 60_000,
  heldFlushChunks: 64,
  heldFlushMs: 2_000,
  maxRepairs: 2,
  healthCheckTimeoutMs: 60_000,
  maxBootAttempts: 3,
  progressIntervalMs: 10_000,
  rebootFlushMs: 3_000,
  outbox: Object.freeze({
    maxEntries: 200,
    retryAfterMs: 5_000,
    backoffBaseMs: 2_000,
    backoffCapMs: 300_000,
  }),
});

/** Default limits with some replaced; `outbox` merges field by field. */
export function withLimits(
  overrides: Partial<Omit<AgentLimits, 'outbox'>> & { outbox?: Partial<OutboxLimits> } = {},
): AgentLimits {
  return Object.freeze({
    ...DEFAULT_LIMITS,
    ...overrides,
    outbox: Object.freeze({ ...DEFAULT_LIMITS.outbox, ...overrides.outbox }),
  });
}
