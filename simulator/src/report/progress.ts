/**
 * Live progress on the terminal: one line, redrawn in place, with devices per state, bytes
 * received and the current rate. Quiet when the stream is not a TTY (CI logs, pipes).
 */
import type { FleetTracker } from '../fleet/tracker.js';

/** Short labels, in the order a device passes through them. */
const SHOWN: readonly [string, string][] = [
  ['offline', 'off'],
  ['booting', 'boot'],
  ['idle', 'idle'],
  ['checking', 'chk'],
  ['downloading', 'dl'],
  ['verifying', 'ver'],
  ['downloaded', 'dld'],
  ['installing', 'inst'],
  ['rebooting', 'rbt'],
  ['trial', 'trial'],
  ['committed', 'ok'],
  ['rolled_back', 'rb'],
  ['failed', 'fail'],
  ['vanished', 'gone'],
];

export class ProgressLine {
  private readonly stream: NodeJS.WriteStream;
  private readonly enabled: boolean;
  private lastBytes = 0;
  private lastMs = Date.now();
  private drawn = false;

  constructor(stream: NodeJS.WriteStream = process.stderr, enabled = stream.isTTY === true) {
    this.stream = stream;
    this.enabled = enabled;
  }

  /** Redraws the line from the tracker's counts. */
  update(tracker: FleetTracker, total: number, note = ''): void {
    if (!this.enabled) return;
    const nowMs = Date.now();
    const rate = ((tracker.bytes - this.lastBytes) / Math.max(1, nowMs - this.lastMs)) * 1000;
    this.lastBytes = tracker.bytes;
    this.lastMs = nowMs;
    const elapsed = ((nowMs - tracker.startedAtMs) / 1000).toFixed(1);
    const states = SHOWN.map(([s, label]) => [label, tracker.count(s)] as const)
      .filter(([, n]) => n > 0)
      .map(([label, n]) => `${label} ${n}`)
      .join(' | ');
    const bytes = `${(tracker.bytes / 1e6).toFixed(1)} MB ${(rate / 1e6).toFixed(1)} MB/s`;
    const line = `[${elapsed}s] ${tracker.count('committed')}/${total} committed | ${states} | ${bytes}${note ? ` | ${note}` : ''}`;
    const width = this.stream.columns ?? 120;
    this.stream.write(`\r${line.slice(0, width - 1).padEnd(width - 1)}`);
    this.drawn = true;
  }

  /** Ends the line so that what follows starts on a fresh one. */
  done(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
