/**
 * The rollout routes as the end-to-end tests call them: plain HTTP through the server's own
 * client, typed with the fields the tests read (`docs/api.md`, "Rollouts").
 */
import type { FetchbackClient } from '@fetchback/update-server';

export type Counts = Record<string, number>;

export interface RolloutBody {
  id: string;
  state: 'draft' | 'scheduled' | 'running' | 'paused' | 'completed' | 'aborted';
  reason: string | null;
  currentWave: number;
  totalDevices: number;
  counts: Counts;
  rollback: Counts;
  waves: { wave: number; size: number; state: string; counts: Counts }[];
}

export interface RolloutDeviceBody {
  deviceId: string;
  wave: number;
  state: string;
  attempts: number;
  seq: number | null;
  lastCode: string | null;
  previousReleaseId: string | null;
  rollbackState: string | null;
  rollbackSeq: number | null;
}

/** Device states in a rollout that hold an assignment not yet finished. */
export const IN_FLIGHT = ['assigned', 'downloaded', 'installed'] as const;

export class RolloutApi {
  constructor(private readonly api: FetchbackClient) {}

  create(body: Record<string, unknown>): Promise<RolloutBody> {
    return this.api.request('POST', '/api/v1/rollouts', { json: body });
  }

  act(id: string, action: 'start' | 'pause' | 'resume' | 'abort'): Promise<RolloutBody> {
    return this.api.request('POST', `/api/v1/rollouts/${id}/${action}`);
  }

  get(id: string): Promise<RolloutBody> {
    return this.api.request('GET', `/api/v1/rollouts/${id}`);
  }

  /** Every device of the rollout, by device id. */
  async devices(id: string): Promise<Map<string, RolloutDeviceBody>> {
    const page = await this.api.request<{ items: RolloutDeviceBody[]; total: number }>(
      'GET',
      `/api/v1/rollouts/${id}/devices`,
      { query: { limit: 1000 } },
    );
    if (page.items.length !== page.total) throw new Error('rollout has over 1000 devices');
    return new Map(page.items.map((d) => [d.deviceId, d]));
  }

  /** Polls the rollout until `done` holds; fails with the last state seen after `timeoutMs`. */
  async waitFor(
    id: string,
    done: (rollout: RolloutBody) => boolean,
    what: string,
    timeoutMs = 30_000,
  ): Promise<RolloutBody> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rollout = await this.get(id);
      if (done(rollout)) return rollout;
      if (Date.now() > deadline) {
        const seen = JSON.stringify({ state: rollout.state, counts: rollout.counts });
        throw new Error(`rollout ${id}: no ${what} within ${timeoutMs} ms; last seen ${seen}`);
      }
      await sleep(200);
    }
  }
}

/** Waits until `done()` is true, checking every 100 ms; fails after `timeoutMs`. */
export async function until(done: () => boolean, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Counts of `states` per state name. */
export function tally(states: Iterable<string>): Counts {
  const counts: Counts = {};
  for (const s of states) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
}

/** The non-zero entries of `counts`. */
export function nonZero(counts: Counts): Counts {
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
