/**
 * `fetchback rollout status --watch`: one progress bar per wave, fed by the server-sent event
 * stream (each event triggers a throttled re-read of the rollout). When the output is not a TTY
 * it prints the summary line again whenever it changes (state, wave or counts), so a log shows
 * the waves advance. Ends when the rollout completes or is aborted.
 */
import { MultiBar, Presets } from 'cli-progress';
import type { SingleBar } from 'cli-progress';

import type { Rollout, RolloutClient } from './rollout-client.js';

/** Least time between two re-reads of the rollout, in milliseconds. */
const REFRESH_MS = 250;
/** Re-read this often even without events (a reconnecting proxy may drop some). */
const FALLBACK_REFRESH_MS = 5_000;

const FAILED = ['rolled_back', 'rejected', 'failed', 'timed_out'];
const UPDATING = ['assigned', 'downloaded', 'installed', 'retry_wait'];

const sum = (counts: Record<string, number>, states: string[]): number =>
  states.reduce((n, s) => n + (counts[s] ?? 0), 0);

export function isFinished(r: Rollout): boolean {
  return r.state === 'completed' || r.state === 'aborted';
}

/** One line summing up a rollout, for non-TTY output and the end of a watch. */
export function summaryLine(r: Rollout): string {
  const c = r.counts;
  const parts = [
    `${r.id} ${r.state}`,
    `wave ${Math.min(r.currentWave + 1, r.waves.length)}/${r.waves.length}`,
    `${c.committed ?? 0}/${r.totalDevices} committed`,
    `${sum(c, UPDATING)} updating`,
    `${sum(c, FAILED)} failed`,
  ];
  if (r.reason) parts.push(`(${r.reason})`);
  return parts.join(', ');
}

class Bars {
  private readonly multi = new MultiBar(
    {
      stream: process.stderr,
      format:
        ' wave {wave} {bar} {value}/{total} committed | {updating} updating | {failed} failed | {state}',
      hideCursor: true,
      clearOnComplete: false,
    },
    Presets.shades_classic,
  );
  private readonly bars: SingleBar[] = [];
  private readonly header: SingleBar;

  constructor() {
    this.header = this.multi.create(1, 0, {}, { format: ' {line}' });
  }

  render(r: Rollout): void {
    this.header.update(0, { line: summaryLine(r) });
    r.waves.forEach((w, i) => {
      const payload = {
        wave: w.wave + 1,
        updating: sum(w.counts, UPDATING),
        failed: sum(w.counts, FAILED),
        state: w.state,
      };
      const bar = this.bars[i] ?? this.multi.create(w.size, 0, payload);
      this.bars[i] = bar;
      bar.setTotal(w.size);
      bar.update(w.counts.committed ?? 0, payload);
    });
  }

  stop(): void {
    this.multi.stop();
  }
}

/** Watches until the rollout finishes (or `signal` aborts); returns its last view. */
export async function watchRollout(
  client: RolloutClient,
  id: string,
  opts: { tty: boolean; signal?: AbortSignal },
): Promise<Rollout> {
  const stop = new AbortController();
  opts.signal?.addEventListener('abort', () => stop.abort());
  const bars = opts.tty ? new Bars() : undefined;
  let last: Rollout | undefined;
  let pending: NodeJS.Timeout | undefined;

  const refresh = async (): Promise<void> => {
    pending = undefined;
    const view = await client.get(id);
    if (bars) bars.render(view);
    else if (!last || summaryLine(view) !== summaryLine(last)) {
      process.stdout.write(`${summaryLine(view)}\n`);
    }
    last = view;
    if (isFinished(view)) stop.abort();
  };
  const schedule = (): void => {
    pending ??= setTimeout(() => void refresh().catch(() => stop.abort()), REFRESH_MS);
  };
  const fallback = setInterval(schedule, FALLBACK_REFRESH_MS);

  try {
    const stream = client.events({ rolloutId: id, signal: stop.signal });
    // Subscribe first, then read: nothing that happens in between is missed.
    const first = stream.next();
    await refresh();
    if (!stop.signal.aborted) {
      await first;
      schedule();
      for await (const _event of stream) schedule();
    }
  } finally {
    clearInterval(fallback);
    if (pending) clearTimeout(pending);
    bars?.stop();
  }
  return last ?? client.get(id);
}
