/**
 * The final report of a run: how fast the fleet committed, how every device ended and why,
 * what was injected, and the bytes delivered against the least the update could take.
 */
import type { VirtualDevice } from '../device/virtual-device.js';
import { expectedEnd } from '../faults/plan.js';
import type { FleetTracker, TimelineSample } from '../fleet/tracker.js';

/** Milliseconds from the start of the run until this share of devices had committed. */
export interface CommitTimes {
  readonly p50Ms: number | null;
  readonly p90Ms: number | null;
  readonly p100Ms: number | null;
}

export interface FleetReport {
  readonly format: 1;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly server: string;
  readonly devices: number;
  readonly faults: Readonly<Record<string, number>>;
  /** Shares of the whole fleet. */
  readonly timeToCommit: CommitTimes;
  /** Shares of the devices the fault plan meant to commit (no failing check, not vanished). */
  readonly timeToCommitExpected: CommitTimes;
  /** Each device's state at the end: a lifecycle state, or `vanished` / `offline`. */
  readonly finalStates: Readonly<Record<string, number>>;
  /** Result codes of updates that did not commit, with their counts. */
  readonly failuresByCode: Readonly<Record<string, number>>;
  /** How the fault plan meant the devices to end. */
  readonly expected: Readonly<Record<string, number>>;
  /** Devices whose end differs from their plan, by id (empty when every plan held). */
  readonly unexpected: readonly { id: string; expected: string; actual: string }[];
  readonly faultsInjected: Readonly<Record<string, number>>;
  readonly restarts: { readonly crashes: number; readonly boots: number };
  readonly bytes: {
    /** FETCH_RESP payload bytes that reached the devices (chunks, chunk tables, framing). */
    readonly delivered: number;
    /** Image size × devices that received an assignment. */
    readonly minimum: number;
    readonly ratio: number | null;
  };
  /** Device states as the server's API shows them, when it was asked. */
  readonly serverStates?: Readonly<Record<string, number>>;
  readonly timeline: readonly TimelineSample[];
}

export interface ReportInput {
  readonly server: string;
  readonly faults: Readonly<Record<string, number>>;
  readonly tracker: FleetTracker;
  readonly devices: readonly VirtualDevice[];
  readonly serverStates?: Record<string, number>;
}

export function buildReport(input: ReportInput): FleetReport {
  const { tracker, devices } = input;
  const commits = tracker.commitTimesMs;
  const expectedCommits = devices.filter((d) => expectedEnd(d.plan) === 'committed').length;
  const delivered = tracker.bytes;
  const minimum = devices.reduce((sum, d) => sum + (d.imageBytes ?? 0), 0);
  return {
    format: 1,
    startedAt: new Date(tracker.startedAtMs).toISOString(),
    durationMs: Date.now() - tracker.startedAtMs,
    server: input.server,
    devices: devices.length,
    faults: input.faults,
    timeToCommit: commitTimes(commits, devices.length),
    timeToCommitExpected: commitTimes(commits, expectedCommits),
    finalStates: countBy(devices, (d) => d.state),
    failuresByCode: failures(input),
    expected: countBy(devices, (d) => expectedEnd(d.plan)),
    unexpected: unexpectedEnds(devices),
    faultsInjected: tracker.faultCounts,
    restarts: {
      crashes: devices.reduce((n, d) => n + d.crashes, 0),
      boots: devices.reduce((n, d) => n + d.boots, 0),
    },
    bytes: { delivered, minimum, ratio: minimum > 0 ? round(delivered / minimum, 4) : null },
    ...(input.serverStates ? { serverStates: input.serverStates } : {}),
    timeline: tracker.timeline,
  };
}

/** The times at which 50, 90 and 100 % of `of` devices had committed (null: never). */
export function commitTimes(sortedMs: readonly number[], of: number): CommitTimes {
  const at = (share: number): number | null => {
    if (of === 0) return null;
    const needed = Math.max(1, Math.ceil(of * share));
    return needed <= sortedMs.length ? (sortedMs[needed - 1] as number) : null;
  };
  return { p50Ms: at(0.5), p90Ms: at(0.9), p100Ms: at(1) };
}

function failures(input: ReportInput): Record<string, number> {
  const codes = input.devices
    .filter((d) => d.state === 'failed' || d.state === 'rolled_back')
    .map((d) => input.tracker.codeOf(d.id) ?? 'unknown');
  return countBy(codes, (c) => c);
}

function unexpectedEnds(devices: readonly VirtualDevice[]) {
  return devices
    .map((d) => ({ id: d.id, expected: expectedEnd(d.plan) as string, actual: d.state }))
    .filter((e) => e.expected !== e.actual);
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** A short text summary for the terminal. */
export function formatReport(report: FleetReport): string {
  const s = (ms: number | null) => (ms === null ? 'never' : `${(ms / 1000).toFixed(1)} s`);
  const t = report.timeToCommit;
  const expectedCommits = report.expected['committed'] ?? 0;
  const lines = [
    `fleet of ${report.devices} devices, ${(report.durationMs / 1000).toFixed(1)} s, faults: ${
      Object.entries(report.faults)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || 'none'
    }`,
    `  committed: 50 % at ${s(t.p50Ms)}, 90 % at ${s(t.p90Ms)}, 100 % at ${s(t.p100Ms)}` +
      // With faults that make devices fail or roll back by design, 100 % is never reached:
      // the time that says whether the rollout finished is that of the devices meant to commit.
      (expectedCommits < report.devices
        ? `; all ${expectedCommits} expected to commit at ${s(report.timeToCommitExpected.p100Ms)}`
        : ''),
    `  final states: ${fmt(report.finalStates)}`,
    `  expected:     ${fmt(report.expected)}${
      report.unexpected.length ? `  (${report.unexpected.length} differ)` : ''
    }`,
    `  failures by code: ${fmt(report.failuresByCode) || 'none'}`,
    `  faults injected: ${fmt(report.faultsInjected) || 'none'}`,
    `  bytes delivered ${mb(report.bytes.delivered)} for a minimum of ${mb(report.bytes.minimum)}` +
      (report.bytes.ratio !== null ? ` (x${report.bytes.ratio.toFixed(3)})` : ''),
  ];
  if (report.serverStates) lines.push(`  server reports: ${fmt(report.serverStates)}`);
  return lines.join('\n');
}

function fmt(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
