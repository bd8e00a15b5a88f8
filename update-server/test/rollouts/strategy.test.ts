import { describe, expect, it } from 'vitest';

import { parseRolloutInput, parseStrategy } from '../../src/rollouts/model.js';
import {
  failureThresholdReached,
  inMaintenanceWindow,
  retryDelayMs,
  waveSizes,
} from '../../src/rollouts/strategy.js';
import {
  ROLLOUT_EVENTS,
  ROLLOUT_STATES,
  TRANSITIONS,
  nextState,
} from '../../src/rollouts/transitions.js';

describe('wave sizes', () => {
  it('reads percentages as cumulative shares and gives the last wave the rest', () => {
    expect(waveSizes([{ percent: 10 }, { percent: 50 }, { percent: 100 }], 20)).toEqual([2, 8, 10]);
    expect(waveSizes([{ percent: 10 }, { percent: 50 }], 20)).toEqual([2, 18]);
    expect(waveSizes([{ count: 1 }, { count: 5 }, { percent: 100 }], 3)).toEqual([1, 2]);
  });

  it('drops waves that would be empty', () => {
    expect(waveSizes([{ percent: 1 }, { percent: 1 }, { percent: 100 }], 3)).toEqual([1, 2]);
    expect(waveSizes([{ count: 10 }, { count: 20 }], 4)).toEqual([4]);
  });
});

describe('maintenance window', () => {
  const at = (h: number, m: number): number => Date.UTC(2030, 0, 1, h, m);

  it('holds inside a same-day window and not outside it', () => {
    const w = { start: '09:00', end: '17:00' };
    expect(inMaintenanceWindow(w, at(9, 0))).toBe(true);
    expect(inMaintenanceWindow(w, at(16, 59))).toBe(true);
    expect(inMaintenanceWindow(w, at(17, 0))).toBe(false);
    expect(inMaintenanceWindow(w, at(8, 59))).toBe(false);
  });

  it('wraps midnight when the start is after the end', () => {
    const w = { start: '22:00', end: '04:00' };
    expect(inMaintenanceWindow(w, at(23, 30))).toBe(true);
    expect(inMaintenanceWindow(w, at(3, 59))).toBe(true);
    expect(inMaintenanceWindow(w, at(4, 0))).toBe(false);
    expect(inMaintenanceWindow(w, at(21, 59))).toBe(false);
    expect(inMaintenanceWindow(null, at(12, 0))).toBe(true);
  });
});

describe('thresholds and retries', () => {
  it('needs both the minimum count and the percentage', () => {
    const t = { percent: 30, minCount: 3, action: 'pause' as const };
    expect(failureThresholdReached({ failed: 2, started: 2 }, t)).toBe(false);
    expect(failureThresholdReached({ failed: 3, started: 11 }, t)).toBe(false);
    expect(failureThresholdReached({ failed: 3, started: 10 }, t)).toBe(true);
  });

  it('doubles the retry delay and caps it at 16 times the base', () => {
    expect([1, 2, 3, 4, 5, 6, 9].map((r) => retryDelayMs(r, 100))).toEqual([
      100, 200, 400, 800, 1600, 1600, 1600,
    ]);
  });
});

describe('input parsing', () => {
  it('fills in the defaults', () => {
    const input = parseRolloutInput({ releaseId: 'r1' });
    expect(input.strategy.waves).toEqual([{ percent: 100 }]);
    expect(input.strategy.failureThreshold.action).toBe('pause');
    expect(input.target).toEqual({});
  });

  it.each([
    [{ waves: [] }, /strategy.waves/],
    [{ waves: [{ percent: 50 }, { percent: 10 }] }, /not below the wave before/],
    [{ waves: [{ percent: 10, count: 2 }] }, /either \{count\} or \{percent\}/],
    [{ maintenanceWindow: { start: '25:00', end: '04:00' } }, /HH:MM/],
    [{ failureThreshold: { action: 'explode' } }, /"pause" or "abort"/],
    [{ maxConcurrent: 0 }, /strategy.maxConcurrent/],
    [{ rollbackOnAbort: 'yes' }, /a boolean/],
  ])('refuses the strategy %j with a field-naming message', (strategy, message) => {
    expect(() => parseStrategy(strategy)).toThrow(message);
  });
});

describe('transition table', () => {
  it('has one row per (state, event, action) and only known states and events', () => {
    const keys = TRANSITIONS.map((t) => `${t.from}/${t.event}/${t.onFailure ?? ''}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const t of TRANSITIONS) {
      expect(ROLLOUT_STATES).toContain(t.from);
      expect(ROLLOUT_STATES).toContain(t.to);
      expect(ROLLOUT_EVENTS).toContain(t.event);
    }
  });

  it('leaves completed and aborted rollouts terminal', () => {
    for (const event of ROLLOUT_EVENTS) {
      expect(nextState('completed', event, 'pause')).toBeUndefined();
      expect(nextState('aborted', event, 'abort')).toBeUndefined();
    }
  });

  it('sends the failure threshold to paused or aborted by the configured action', () => {
    expect(nextState('running', 'failure-threshold', 'pause')).toBe('paused');
    expect(nextState('running', 'failure-threshold', 'abort')).toBe('aborted');
  });
});
