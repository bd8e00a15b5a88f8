/**
 * The terminal summary of a run: the commit times it prints, and the time to every device the
 * fault plan meant to commit when faults keep the whole fleet from committing.
 */
import { describe, expect, it } from 'vitest';

import { type FleetReport, commitTimes, formatReport } from '../src/report/report.js';

function reportOf(changes: Partial<FleetReport>): FleetReport {
  return {
    format: 1,
    startedAt: '2026-12-04T00:00:00.000Z',
    durationMs: 17_200,
    server: 'http://127.0.0.1:8080',
    devices: 200,
    faults: {},
    timeToCommit: { p50Ms: 12_000, p90Ms: 12_500, p100Ms: 12_900 },
    timeToCommitExpected: { p50Ms: 12_000, p90Ms: 12_500, p100Ms: 12_900 },
    finalStates: { committed: 200 },
    failuresByCode: {},
    expected: { committed: 200 },
    unexpected: [],
    faultsInjected: {},
    restarts: { crashes: 0, boots: 0 },
    bytes: { delivered: 420_000_000, minimum: 419_430_400, ratio: 1.0014 },
    timeline: [],
    ...changes,
  };
}

describe('formatReport', () => {
  it('prints the three commit times of a fleet that all committed, and nothing more', () => {
    const line = formatReport(reportOf({})).split('\n')[1];
    expect(line).toBe('  committed: 50 % at 12.0 s, 90 % at 12.5 s, 100 % at 12.9 s');
  });

  it('adds the time to all devices expected to commit when some were meant not to', () => {
    const sorted = Array.from({ length: 197 }, (_, i) => 10_000 + i * 10);
    const report = reportOf({
      timeToCommit: commitTimes(sorted, 200),
      timeToCommitExpected: commitTimes(sorted, 197),
      finalStates: { committed: 197, rolled_back: 3 },
      expected: { committed: 197, rolled_back: 3 },
      failuresByCode: { FB_ERR_HEALTH_CHECK_FAILED: 3 },
    });
    const lines = formatReport(report).split('\n');
    expect(lines[1]).toBe(
      '  committed: 50 % at 11.0 s, 90 % at 11.8 s, 100 % at never; ' +
        'all 197 expected to commit at 12.0 s',
    );
    expect(lines).toContain('  failures by code: FB_ERR_HEALTH_CHECK_FAILED 3');
  });

  it('says never for devices expected to commit that did not', () => {
    const sorted = Array.from({ length: 150 }, (_, i) => 5_000 + i);
    const report = reportOf({
      timeToCommit: commitTimes(sorted, 200),
      timeToCommitExpected: commitTimes(sorted, 190),
      expected: { committed: 190, vanished: 10 },
    });
    expect(formatReport(report).split('\n')[1]).toMatch(
      /100 % at never; all 190 expected to commit at never$/,
    );
  });
});
