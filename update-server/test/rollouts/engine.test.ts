import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { isFetchbackError } from '@fetchback/shared';

import { HOUR_MS, Harness } from './fixture.js';

const SEC = 1_000;

function strategy(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    waves: [{ percent: 100 }],
    soakMs: 0,
    successThresholdPercent: 100,
    failureThreshold: { percent: 50, minCount: 100, action: 'pause' },
    maxConcurrent: 1_000,
    deviceTimeoutMs: HOUR_MS,
    maxRetries: 0,
    retryBackoffMs: 0,
    rollbackOnAbort: false,
    ...overrides,
  };
}

let h: Harness;

beforeEach(() => {
  h = new Harness();
  h.addRelease('rel-1', '1.0.0');
  h.addRelease('rel-2', '2.0.0');
});

afterEach(() => h.close());

function create(overrides: Record<string, unknown> = {}, target: object = {}): string {
  return h.engine.create({ releaseId: 'rel-2', target, strategy: strategy(overrides) }).id;
}

describe('waves', () => {
  it('advances to the next wave only when the success threshold is met and the soak time passed', () => {
    h.addFleet(20);
    const id = create({
      waves: [{ percent: 10 }, { percent: 50 }, { percent: 100 }],
      soakMs: 60 * SEC,
    });

    const started = h.engine.start(id);
    expect(started.state).toBe('running');
    expect(started.waves.map((w) => w.size)).toEqual([2, 8, 10]);
    const wave1 = h.port.assigned('rel-2');
    expect(wave1).toHaveLength(2);

    h.commit(wave1[0] as string);
    h.advance(120 * SEC);
    expect(h.port.calls).toHaveLength(2);

    h.commit(wave1[1] as string);
    expect(h.engine.get(id).waves[0]?.state).toBe('soaking');
    h.advance(59 * SEC);
    expect(h.port.calls).toHaveLength(2);
    h.advance(1 * SEC);
    expect(h.port.calls).toHaveLength(10);
    expect(h.engine.get(id).currentWave).toBe(1);

    for (const d of h.port.assigned('rel-2').slice(2)) h.commit(d);
    h.advance(60 * SEC);
    expect(h.port.calls).toHaveLength(20);
    for (const d of h.port.assigned('rel-2').slice(10)) h.commit(d);

    const done = h.engine.get(id);
    expect(done.state).toBe('completed');
    expect(done.counts.committed).toBe(20);
    expect(done.waves.map((w) => w.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  });

  it('assigns each wave in the order of its devices and never more than maxConcurrent at once', () => {
    h.addFleet(10);
    const id = create({ maxConcurrent: 3 });
    h.engine.start(id);
    expect(h.port.calls).toHaveLength(3);

    h.commit(h.port.assigned('rel-2')[0] as string);
    expect(h.port.calls).toHaveLength(4);
    h.ack(h.port.assigned('rel-2')[1] as string, 'downloaded');
    h.advance(SEC);
    expect(h.port.calls).toHaveLength(4);
    expect(h.engine.get(id).counts).toMatchObject({ assigned: 2, downloaded: 1, committed: 1 });
  });

  it('pauses when a wave finishes below its success threshold although the failure threshold did not trip', () => {
    h.addFleet(4);
    const id = create({ waves: [{ count: 2 }, { count: 4 }], successThresholdPercent: 100 });
    h.engine.start(id);
    const [a, b] = h.port.assigned('rel-2') as [string, string];
    h.commit(a);
    h.ack(b, 'rejected', 'FB_ERR_SECURITY_ROLLBACK');

    const view = h.engine.get(id);
    expect(view.state).toBe('paused');
    expect(view.reason).toMatch(/below its success threshold/);
    expect(h.port.calls).toHaveLength(2);
  });
});

describe('failure threshold', () => {
  it('pauses the rollout when failures reach both the percentage and the minimum count', () => {
    h.addFleet(10);
    const id = create({
      maxConcurrent: 5,
      failureThreshold: { percent: 40, minCount: 2, action: 'pause' },
    });
    h.engine.start(id);
    const [a, b, c] = h.port.assigned('rel-2') as [string, string, string];

    h.ack(a, 'rolled_back', 'FB_ERR_HEALTH_CHECK_FAILED');
    expect(h.engine.get(id).state).toBe('running'); // 1 of 5 started: below the minimum count
    h.ack(b, 'rolled_back', 'FB_ERR_HEALTH_CHECK_FAILED'); // 2 of 6 started: 33 %
    expect(h.engine.get(id).state).toBe('running');
    h.ack(c, 'failed', 'FB_ERR_INSTALL_FAILED'); // 3 of 7 started: 43 %

    const paused = h.engine.get(id);
    expect(paused.state).toBe('paused');
    expect(paused.reason).toMatch(/failure threshold/);
    const calls = h.port.calls.length;
    h.advance(HOUR_MS / 2);
    expect(h.port.calls).toHaveLength(calls);
  });

  it('counts failures afresh after a resume, so that the rollout goes on', () => {
    h.addFleet(6);
    const id = create({
      maxConcurrent: 2,
      failureThreshold: { percent: 50, minCount: 1, action: 'pause' },
    });
    h.engine.start(id);
    h.ack(h.port.assigned('rel-2')[0] as string, 'failed', 'FB_ERR_INSTALL_FAILED');
    expect(h.engine.get(id).state).toBe('paused');

    const resumed = h.engine.resume(id);
    expect(resumed.state).toBe('running');
    expect(h.port.calls).toHaveLength(3);
    for (const d of h.port.assigned('rel-2').slice(1)) h.commit(d);
    for (const d of h.port.assigned('rel-2').slice(3)) h.commit(d);
    expect(h.port.calls).toHaveLength(6);
  });

  it('aborts and assigns the previous release to every moved device when so configured', () => {
    h.addFleet(10, 'dev', { version: '1.0.0' });
    const id = create({
      maxConcurrent: 6,
      rollbackOnAbort: true,
      failureThreshold: { percent: 20, minCount: 2, action: 'abort' },
    });
    h.engine.start(id);
    const [a, b, c, d, e] = h.port.assigned('rel-2') as [string, string, string, string, string];
    h.commit(a); // each finished device frees a slot: 9 started in all
    h.commit(b);
    h.ack(c, 'downloaded');
    h.ack(d, 'rolled_back', 'FB_ERR_HEALTH_CHECK_FAILED');
    h.ack(e, 'rolled_back', 'FB_ERR_HEALTH_CHECK_FAILED'); // 2 of 9: 22 %

    const view = h.engine.get(id);
    expect(view.state).toBe('aborted');
    expect(view.reason).toMatch(/failure threshold: 2 of 9/);
    // Committed, downloading and merely assigned devices move back; those that rolled back
    // themselves and those never reached do not.
    const started = h.port.assigned('rel-2');
    expect(started).toHaveLength(9);
    const moved = started.filter((x) => x !== d && x !== e).sort();
    expect(h.port.assigned('rel-1').sort()).toEqual(moved);
    expect(view.counts.cancelled).toBe(1);
    expect(view.rollback.assigned).toBe(7);

    h.commit(a);
    h.ack(b, 'rejected', 'FB_ERR_MANIFEST_EXPIRED');
    const after = h.engine.get(id);
    expect(after.rollback).toMatchObject({ assigned: 5, committed: 1, rejected: 1 });
    expect(after.counts).toMatchObject({ committed: 2, rolled_back: 2, downloaded: 1 });
  });

  it('marks a moved device whose previous release is unknown as not rolled back', () => {
    h.addFleet(2, 'dev', { version: '0.9.0' });
    const id = create({ rollbackOnAbort: true });
    h.engine.start(id);
    const view = h.engine.abort(id);
    expect(view.rollback.unavailable).toBe(2);
    expect(h.port.assigned('rel-1')).toEqual([]);
  });
});

describe('device timeouts and retries', () => {
  it('times a silent device out, retries it with doubling backoff, and then gives up', () => {
    h.addFleet(1);
    const id = create({ deviceTimeoutMs: 10 * SEC, maxRetries: 2, retryBackoffMs: 5 * SEC });
    h.engine.start(id);
    expect(h.port.calls).toHaveLength(1);

    h.advance(10 * SEC); // timed out: first retry due 5 s later
    expect(h.engine.devices(id).items[0]).toMatchObject({
      state: 'retry_wait',
      lastCode: 'FB_ERR_TIMEOUT',
    });
    h.advance(4 * SEC);
    expect(h.port.calls).toHaveLength(1);
    h.advance(1 * SEC);
    expect(h.port.calls).toHaveLength(2);

    h.advance(10 * SEC); // second timeout: retry after 10 s
    h.advance(9 * SEC);
    expect(h.port.calls).toHaveLength(2);
    h.advance(1 * SEC);
    expect(h.port.calls).toHaveLength(3);

    h.advance(10 * SEC);
    const device = h.engine.devices(id).items[0];
    expect(device).toMatchObject({ state: 'timed_out', attempts: 3 });
    expect(h.port.calls.map((c) => c.seq)).toEqual([1, 2, 3]);
    expect(h.engine.get(id).state).toBe('completed');
  });

  it('re-assigns a device that reported a failure while retries are left', () => {
    h.addFleet(1);
    const id = create({ maxRetries: 1, retryBackoffMs: 1 * SEC });
    h.engine.start(id);
    h.ack('dev-00', 'failed', 'FB_ERR_STALLED');
    h.advance(1 * SEC);
    expect(h.port.calls).toHaveLength(2);
    h.ack('dev-00', 'failed', 'FB_ERR_STALLED');
    h.advance(10 * SEC);
    expect(h.port.calls).toHaveLength(2);
    expect(h.engine.devices(id).items[0]).toMatchObject({
      state: 'failed',
      lastCode: 'FB_ERR_STALLED',
    });
  });

  it('counts a late commit of the latest assignment although the device had timed out', () => {
    h.addFleet(1);
    const id = create({ deviceTimeoutMs: 10 * SEC, maxRetries: 0 });
    h.engine.start(id);
    h.advance(10 * SEC);
    expect(h.engine.devices(id).items[0]?.state).toBe('timed_out');
    h.ack('dev-00', 'committed');
    expect(h.engine.devices(id).items[0]?.state).toBe('committed');
  });

  it('ignores an ACK of an older assignment and a progress ACK that arrives after a later step', () => {
    h.addFleet(1);
    const id = create();
    h.engine.start(id);
    h.ack('dev-00', 'installed');
    h.ack('dev-00', 'downloaded');
    expect(h.engine.devices(id).items[0]?.state).toBe('installed');
    h.events.emit('device.ack', {
      deviceId: 'dev-00',
      seq: 99,
      step: 'failed',
      code: 'X',
      releaseId: null,
      rolloutId: null,
      at: 0,
    });
    expect(h.engine.devices(id).items[0]?.state).toBe('installed');
  });
});

describe('maintenance window', () => {
  it('assigns nothing outside the daily window and starts assigning when it opens', () => {
    h.addFleet(3);
    h.clock.t = Date.UTC(2030, 0, 1, 12, 0);
    const id = create({ maintenanceWindow: { start: '22:00', end: '04:00' } });
    expect(h.engine.start(id).state).toBe('running');
    expect(h.port.calls).toHaveLength(0);

    h.advance(9 * HOUR_MS + 59 * 60 * SEC); // 21:59
    expect(h.port.calls).toHaveLength(0);
    h.advance(60 * SEC); // 22:00
    expect(h.port.calls).toHaveLength(3);
  });

  it('holds retries outside the window too', () => {
    h.addFleet(1);
    h.clock.t = Date.UTC(2030, 0, 1, 3, 59);
    const id = create({
      maintenanceWindow: { start: '22:00', end: '04:00' },
      maxRetries: 1,
      retryBackoffMs: 2 * 60 * SEC,
    });
    h.engine.start(id);
    h.ack('dev-00', 'failed', 'FB_ERR_STALLED');
    h.advance(HOUR_MS);
    expect(h.port.calls).toHaveLength(1);
    expect(h.engine.devices(id).items[0]?.state).toBe('retry_wait');
  });
});

describe('scheduling', () => {
  it('waits in scheduled until startAt', () => {
    h.addFleet(2);
    const rollout = h.engine.create({
      releaseId: 'rel-2',
      startAt: h.clock.t + HOUR_MS,
      strategy: strategy(),
    });
    expect(h.engine.start(rollout.id).state).toBe('scheduled');
    h.advance(HOUR_MS - SEC);
    expect(h.port.calls).toHaveLength(0);
    h.advance(SEC);
    expect(h.engine.get(rollout.id).state).toBe('running');
    expect(h.port.calls).toHaveLength(2);
  });
});

describe('targets and conflicts', () => {
  it('targets by tags and current version, only active devices of the release class', () => {
    h.addDevice('a', { tags: { site: 'berlin' } });
    h.addDevice('b', { tags: { site: 'berlin' }, version: '0.1.0' });
    h.addDevice('c', { tags: { site: 'paris' } });
    h.addDevice('d', { tags: { site: 'berlin' }, hwClass: 'x86' });
    h.addDevice('e', { tags: { site: 'berlin' } });
    h.db.prepare("UPDATE devices SET status = 'decommissioned' WHERE id = 'e'").run();

    const id = create({}, { tags: { site: 'berlin' }, currentVersion: '1.0.0' });
    h.engine.start(id);
    expect(h.port.assigned('rel-2')).toEqual(['a']);
  });

  it('refuses a rollout whose devices are in an active rollout, naming them', () => {
    h.addFleet(8);
    const first = create({}, { deviceIds: ['dev-00', 'dev-01', 'dev-02', 'dev-03'] });
    const early = create({}, { deviceIds: ['dev-03', 'dev-04'] }); // both drafts: no conflict yet
    h.engine.start(first);

    const refused = (fn: () => unknown): Record<string, unknown> => {
      try {
        fn();
      } catch (err) {
        if (isFetchbackError(err, 'FB_ERR_ROLLOUT_CONFLICT')) return { ...err.details };
        throw err;
      }
      return expect.unreachable();
    };
    expect(refused(() => create({}, { deviceIds: ['dev-02', 'dev-03', 'dev-04'] }))).toEqual({
      devices: [
        { deviceId: 'dev-02', rolloutId: first },
        { deviceId: 'dev-03', rolloutId: first },
      ],
    });
    expect(refused(() => h.engine.start(early)).devices).toEqual([
      { deviceId: 'dev-03', rolloutId: first },
    ]);
    expect(h.engine.get(early).state).toBe('draft');
    expect(h.engine.get(early).totalDevices).toBe(0);

    h.engine.abort(first);
    expect(h.engine.start(early).state).toBe('running');
    expect(h.port.assigned('rel-2').slice(4).sort()).toEqual(['dev-03', 'dev-04']);
  });

  it('refuses an empty target and a release of another class', () => {
    h.addFleet(2);
    h.addRelease('rel-x86', '2.0.0', 'x86');
    expect(() => create({}, { tags: { site: 'nowhere' } })).toThrow(/matches no device/);
    try {
      h.engine.create({ releaseId: 'rel-2', target: { hwClass: 'x86' } });
      expect.unreachable();
    } catch (err) {
      expect(isFetchbackError(err, 'FB_ERR_WRONG_HW_CLASS')).toBe(true);
    }
    expect(() => h.engine.create({ releaseId: 'nope' })).toThrow(/no release/);
  });
});

describe('joining devices', () => {
  it('adds a device registered during a rollout to its last wave when it matches the target', () => {
    h.addFleet(4, 'dev', { tags: { site: 'berlin' } });
    const id = create({ waves: [{ count: 2 }, { percent: 100 }] }, { tags: { site: 'berlin' } });
    h.engine.start(id);

    h.addDevice('late-match', { tags: { site: 'berlin' } });
    h.events.emit('device.registered', {
      deviceId: 'late-match',
      hardwareClass: 'pi4',
      tags: { site: 'berlin' },
    });
    h.addDevice('late-other', { tags: { site: 'paris' } });
    h.events.emit('device.registered', {
      deviceId: 'late-other',
      hardwareClass: 'pi4',
      tags: { site: 'paris' },
    });

    const view = h.engine.get(id);
    expect(view.totalDevices).toBe(5);
    expect(view.waves[1]?.size).toBe(3);
    expect(h.port.assigned('rel-2')).not.toContain('late-match'); // its wave has not started

    for (const d of h.port.assigned('rel-2')) h.commit(d);
    expect(h.port.assigned('rel-2')).toContain('late-match');
    expect(h.port.assigned('rel-2')).not.toContain('late-other');
  });

  it('takes a decommissioned device out of the rollout', () => {
    h.addFleet(2);
    const id = create({ maxConcurrent: 1 });
    h.engine.start(id);
    const waiting = h.engine.devices(id, { state: 'pending' }).items[0]?.deviceId as string;
    h.port.gone.add(waiting);
    h.commit(h.port.assigned('rel-2')[0] as string);
    h.advance(SEC);
    expect(h.engine.devices(id, { state: 'cancelled' }).items.map((d) => d.deviceId)).toEqual([
      waiting,
    ]);
    expect(h.engine.get(id).state).toBe('completed');
  });
});

describe('restart', () => {
  it('continues a rollout after a restart without assigning a device twice or skipping a wave', () => {
    h.addFleet(30);
    const id = create({
      waves: [{ count: 3 }, { percent: 50 }, { percent: 100 }],
      soakMs: 10 * SEC,
      maxConcurrent: 5,
    });
    h.engine.start(id);
    for (const d of h.port.assigned('rel-2')) h.commit(d);
    h.advance(10 * SEC); // wave 2 starts: 5 of its 12 assigned
    expect(h.engine.get(id).currentWave).toBe(1);
    const before = h.port.calls.length;
    expect(before).toBe(8);

    h.commit(h.port.assigned('rel-2')[3] as string); // one more goes out
    h.restart();
    h.advance(SEC);
    expect(h.port.calls).toHaveLength(before + 1); // nothing re-sent after the restart

    const committed = new Set<string>(h.port.assigned('rel-2').slice(0, 4));
    for (let round = 0; round < 40 && h.engine.get(id).state === 'running'; round++) {
      for (const d of h.port.assigned('rel-2')) {
        if (!committed.has(d)) {
          committed.add(d);
          h.commit(d);
        }
      }
      if (round % 3 === 0) h.restart();
      h.advance(10 * SEC);
    }

    const assigned = h.port.assigned('rel-2');
    expect(new Set(assigned).size).toBe(assigned.length);
    expect(assigned).toHaveLength(30);
    const view = h.engine.get(id);
    expect(view.state).toBe('completed');
    expect(view.waves.map((w) => [w.size, w.state])).toEqual([
      [3, 'succeeded'],
      [12, 'succeeded'],
      [15, 'succeeded'],
    ]);
    // Every device of a wave was assigned before any device of the next one.
    const waveOf = new Map(
      h.engine.devices(id, { limit: 100 }).items.map((d) => [d.deviceId, d.wave]),
    );
    const waves = assigned.map((d) => waveOf.get(d) as number);
    expect(waves).toEqual([...waves].sort((a, b) => a - b));
  });

  it('finishes a fleet rollback interrupted by a restart', () => {
    h.addFleet(4);
    const id = create({ rollbackOnAbort: true });
    h.engine.start(id);
    for (const d of h.port.assigned('rel-2')) h.commit(d);
    // Simulate a crash in the middle of the abort: state stored, no rollback assigned yet.
    h.db.prepare("UPDATE rollouts SET state = 'aborted' WHERE id = ?").run(id);
    h.restart();
    h.advance(SEC);
    expect(h.port.assigned('rel-1').sort()).toEqual(h.port.assigned('rel-2').sort());
    h.advance(SEC);
    expect(h.port.assigned('rel-1')).toHaveLength(4);
  });
});

describe('lifecycle', () => {
  it('refuses transitions the table does not have', () => {
    h.addFleet(1);
    const id = create();
    expect(() => h.engine.pause(id)).toThrow(/pause from draft/);
    h.engine.start(id);
    expect(() => h.engine.resume(id)).toThrow(/resume from running/);
    h.engine.abort(id);
    expect(() => h.engine.start(id)).toThrow(/start from aborted/);
    expect(() => h.engine.get('ro-nope')).toThrow(/no rollout/);
  });

  it('emits rollout.changed on every transition', () => {
    h.addFleet(1);
    const seen: string[] = [];
    h.events.on('rollout.changed', (e) => seen.push(e.state));
    const id = create();
    h.engine.start(id);
    h.commit('dev-00');
    expect(seen[0]).toBe('draft');
    expect(seen).toContain('scheduled');
    expect(seen).toContain('running');
    expect(seen[seen.length - 1]).toBe('completed');
  });

  it('lists rollouts newest first with filters and a cursor', () => {
    h.addFleet(1);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      h.clock.t += SEC;
      ids.push(create());
    }
    h.engine.start(ids[4] as string);
    const page1 = h.engine.list({ limit: 2 });
    expect(page1.items.map((r) => r.id)).toEqual([ids[4], ids[3]]);
    const page2 = h.engine.list({ limit: 2, cursor: page1.nextCursor as string });
    expect(page2.items.map((r) => r.id)).toEqual([ids[2], ids[1]]);
    const page3 = h.engine.list({ limit: 2, cursor: page2.nextCursor as string });
    expect(page3.items.map((r) => r.id)).toEqual([ids[0]]);
    expect(page3.nextCursor).toBeNull();
    expect(h.engine.list({ state: 'running' }).items.map((r) => r.id)).toEqual([ids[4]]);
    expect(h.engine.list({ releaseId: 'rel-1' }).items).toEqual([]);
  });
});
