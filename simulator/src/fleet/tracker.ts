/**
 * Watches every device of a run and keeps what the progress line and the report need: devices
 * per state now and over time, when each device first committed, bytes received, the codes of
 * failed and rolled-back updates, and how many faults were injected.
 */
import type { VirtualDevice } from '../device/virtual-device.js';

/** One point of the update curve. */
export interface TimelineSample {
  /** Milliseconds since the run started. */
  readonly tMs: number;
  readonly states: Readonly<Record<string, number>>;
  readonly bytes: number;
}

export class FleetTracker {
  readonly startedAtMs: number;
  private readonly stateOf = new Map<string, string>();
  private readonly counts = new Map<string, number>();
  private readonly committedAtMs = new Map<string, number>();
  private readonly lastCode = new Map<string, string>();
  private readonly faults = new Map<string, number>();
  readonly timeline: TimelineSample[] = [];
  bytes = 0;
  /** Last state change or chunk received, Unix milliseconds. */
  lastChangeMs: number;

  constructor(startedAtMs = Date.now()) {
    this.startedAtMs = startedAtMs;
    this.lastChangeMs = startedAtMs;
  }

  /** Starts counting a device's states, bytes and faults. */
  watch(device: VirtualDevice): void {
    this.move(device.id, undefined, device.state);
    device.on('state', ({ to, code }) => {
      this.move(device.id, this.stateOf.get(device.id), to);
      if (to === 'committed' && !this.committedAtMs.has(device.id)) {
        this.committedAtMs.set(device.id, Date.now() - this.startedAtMs);
      }
      if (to === 'failed' || to === 'rolled_back' || code !== 'OK')
        this.lastCode.set(device.id, code);
    });
    device.on('chunk', ({ bytes }) => {
      this.bytes += bytes;
      this.lastChangeMs = Date.now();
    });
    device.on('fault', ({ name }) => this.faults.set(name, (this.faults.get(name) ?? 0) + 1));
  }

  /** Devices per state now. */
  get states(): Record<string, number> {
    return Object.fromEntries([...this.counts].filter(([, n]) => n > 0));
  }

  count(state: string): number {
    return this.counts.get(state) ?? 0;
  }

  /** Milliseconds from the start of the run to each device's first commit, ascending. */
  get commitTimesMs(): number[] {
    return [...this.committedAtMs.values()].sort((a, b) => a - b);
  }

  /** The result code each device's update ended with, when it was not OK. */
  codeOf(deviceId: string): string | undefined {
    return this.lastCode.get(deviceId);
  }

  get faultCounts(): Record<string, number> {
    return Object.fromEntries(this.faults);
  }

  /** Adds a point to the update curve. */
  sample(): TimelineSample {
    const point = { tMs: Date.now() - this.startedAtMs, states: this.states, bytes: this.bytes };
    this.timeline.push(point);
    return point;
  }

  private move(id: string, from: string | undefined, to: string): void {
    if (from !== undefined) this.counts.set(from, (this.counts.get(from) ?? 1) - 1);
    this.counts.set(to, (this.counts.get(to) ?? 0) + 1);
    this.stateOf.set(id, to);
    this.lastChangeMs = Date.now();
  }
}
