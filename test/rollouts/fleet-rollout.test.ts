/**
 * Rollouts end to end (issue 5): the real server (`startServer`: SQLite in a temp dir, embedded
 * broker and HTTP API on free ports) and 50 devices registered through the API, each running the
 * real agent with its own MQTT connection. Everything the test does to the server goes through
 * the HTTP API; everything it knows of a device comes from the device itself (its persisted
 * state, its slots, the ACKs its agents sent).
 *
 * The second test starts from where the first left the fleet (every device on release 1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type TestServer, startTestServer } from '../server/support/server-harness.js';
import { FleetDevice } from './support/fleet-device.js';
import {
  IN_FLIGHT,
  type RolloutBody,
  type RolloutDeviceBody,
  RolloutApi,
  nonZero,
  tally,
  until,
} from './support/rollout-api.js';

const FLEET_SIZE = 50;
const IMAGE_BYTES = 256 * 1024;
const FACTORY_VERSION = '0.9.0';
const THREE_WAVES = [{ percent: 10 }, { percent: 50 }, { percent: 100 }];
/** Short soak and device timeout: the whole file must run in about a minute on 2 cores. */
const FAST = { soakMs: 300, deviceTimeoutMs: 30_000 };

/** Neither waiting to start nor running: paused, completed or aborted. */
const isSettled = (r: RolloutBody) => r.state !== 'scheduled' && r.state !== 'running';

describe('rollouts end to end: 50 real agents against the real server and broker', () => {
  let t: TestServer;
  let rollouts: RolloutApi;
  const fleet: FleetDevice[] = [];
  let release1: { id: string; image: Buffer; digest: string };

  beforeAll(async () => {
    t = await startTestServer({ logLevel: 'warn' });
    rollouts = new RolloutApi(t.api);
    const uploaded = await t.release(IMAGE_BYTES, '1.0.0');
    release1 = { ...uploaded, digest: (await t.api.getRelease(uploaded.id)).imageDigest };
    const ids = Array.from({ length: FLEET_SIZE }, (_, i) => `pi-${String(i).padStart(3, '0')}`);
    const creds = await Promise.all(ids.map((id) => t.device(id)));
    fleet.push(...creds.map((c) => new FleetDevice(c, FACTORY_VERSION)));
    await Promise.all(fleet.map((d) => d.start()));
  });

  afterAll(async () => {
    await Promise.all(fleet.map((d) => d.stop()));
    await t?.close();
  });

  /** Every device's own outcome in a rollout: its last ACK for the assignment of `version`. */
  function ownStates(rolloutId: string, version: string, unreached: string): Map<string, string> {
    return new Map(
      fleet.map((d) => {
        const seq = d.seqOf(rolloutId, version);
        return [d.id, seq === undefined ? unreached : (d.stepsOf(seq).at(-1) ?? 'assigned')];
      }),
    );
  }

  /** The server's ACK records of a device, as `seq:step` strings, sorted. */
  async function serverAcks(deviceId: string): Promise<string[]> {
    const { history } = await t.api.getDevice(deviceId);
    return history.acks.map((a) => `${a.seq}:${a.step}`).sort();
  }

  function deviceAcks(d: FleetDevice): string[] {
    return [...d.acks.values()].map((a) => `${a.seq}:${a.step}`).sort();
  }

  async function expectDevicesRunning(devices: FleetDevice[], version: string, digest: string) {
    for (const d of devices) {
      const own = await d.ownState();
      expect({ id: d.id, state: own.state, version: own.firmwareVersion }).toEqual({
        id: d.id,
        state: 'committed',
        version,
      });
      expect(await d.activeImage()).toEqual({ digest, sizeBytes: IMAGE_BYTES });
    }
  }

  it('a three-wave rollout brings every device to the release, one ACK per step, counts equal to the devices', async () => {
    const created = await rollouts.create({
      name: 'fleet to 1.0.0',
      releaseId: release1.id,
      strategy: { waves: THREE_WAVES, ...FAST },
    });
    expect(created.state).toBe('draft');
    await rollouts.act(created.id, 'start');

    const done = await rollouts.waitFor(created.id, isSettled, 'completion');
    expect({ state: done.state, reason: done.reason }).toEqual({
      state: 'completed',
      reason: 'every device finished',
    });
    await until(() => fleet.every((d) => d.resting), 'fleet at rest');

    expect(done.waves.map((w) => [w.size, w.state])).toEqual([
      [5, 'succeeded'],
      [20, 'succeeded'],
      [25, 'succeeded'],
    ]);
    expect(done.totalDevices).toBe(FLEET_SIZE);
    await expectDevicesRunning(fleet, '1.0.0', release1.digest);

    const own = ownStates(created.id, '1.0.0', 'pending');
    expect(nonZero(done.counts)).toEqual(tally(own.values()));
    expect(nonZero(done.counts)).toEqual({ committed: FLEET_SIZE });

    const listed = await rollouts.devices(created.id);
    for (const d of fleet) {
      const seq = d.seqOf(created.id, '1.0.0');
      expect(listed.get(d.id)).toMatchObject({ state: own.get(d.id), seq, attempts: 1 });
      expect(await serverAcks(d.id)).toEqual([
        `${seq}:committed`,
        `${seq}:downloaded`,
        `${seq}:installed`,
      ]);
      expect(await serverAcks(d.id)).toEqual(deviceAcks(d));
      expect(d.boots).toBe(2);
      expect(d.faults).toEqual([]);
    }
  });

  it('a rollout failing its health check on 30 % of devices pauses at its failure threshold; aborting it rolls the moved devices back', async () => {
    const uploaded = await t.release(IMAGE_BYTES, '2.0.0');
    const created = await rollouts.create({
      name: 'fleet to 2.0.0',
      releaseId: uploaded.id,
      strategy: {
        waves: THREE_WAVES,
        ...FAST,
        // Low enough that a wave with failures still advances: the failure threshold decides.
        successThresholdPercent: 50,
        failureThreshold: { percent: 20, minCount: 3, action: 'pause' },
        rollbackOnAbort: true,
      },
      // Starting fixes the waves; the delay lets the test plan the failures per wave first.
      startAt: new Date(Date.now() + 2_000).toISOString(),
    });
    const scheduled = await rollouts.act(created.id, 'start');
    expect(scheduled.state).toBe('scheduled');
    expect(nonZero(scheduled.counts)).toEqual({ pending: FLEET_SIZE });
    const unhealthy = planFailures(await rollouts.devices(created.id));
    expect(unhealthy.size).toBe(FLEET_SIZE * 0.3);
    for (const d of fleet) d.healthy = !unhealthy.has(d.id);
    // The plan holds only if it was in place before any device got this rollout's manifest.
    const early = fleet.filter((d) => d.seqOf(created.id, '2.0.0') !== undefined);
    expect(early.map((d) => d.id)).toEqual([]);

    const paused = await rollouts.waitFor(created.id, isSettled, 'pause');
    expect(paused.state).toBe('paused');
    expect(paused.reason).toMatch(/^failure threshold: \d+ of \d+ started devices failed$/);
    const [, failed, started] = /(\d+) of (\d+)/.exec(paused.reason ?? '')!.map(Number);
    expect(failed).toBeGreaterThanOrEqual(3);
    expect((failed! * 100) / started!).toBeGreaterThanOrEqual(20);

    // A pause assigns nothing new; the devices already updating finish on their own.
    const settled = await rollouts.waitFor(
      created.id,
      (r) => IN_FLIGHT.every((s) => r.counts[s] === 0),
      'device in flight finished',
    );
    await until(() => fleet.every((d) => d.resting), 'fleet at rest');
    expect(settled.state).toBe('paused');
    const before = await rollouts.devices(created.id);
    const moved = fleet.filter((d) => before.get(d.id)?.state === 'committed');
    const selfRolledBack = fleet.filter((d) => before.get(d.id)?.state === 'rolled_back');
    const unreached = fleet.filter((d) => before.get(d.id)?.state === 'pending');
    expect(moved.length + selfRolledBack.length + unreached.length).toBe(FLEET_SIZE);
    expect(moved.length).toBeGreaterThanOrEqual(3);
    expect(selfRolledBack.length).toBeGreaterThanOrEqual(3);
    expect(moved.every((d) => !unhealthy.has(d.id))).toBe(true);
    expect(selfRolledBack.every((d) => unhealthy.has(d.id))).toBe(true);
    await expectDevicesRunning(moved, '2.0.0', (await t.api.getRelease(uploaded.id)).imageDigest);

    await rollouts.act(created.id, 'abort');
    const aborted = await rollouts.waitFor(
      created.id,
      (r) => r.rollback.committed === moved.length,
      'fleet rollback committed',
    );
    await until(() => fleet.every((d) => d.resting), 'fleet at rest after the rollback');

    expect(aborted.state).toBe('aborted');
    expectCountsEqualDevices(aborted, created.id);
    expect(nonZero(aborted.rollback)).toEqual(nonZero({ committed: moved.length }));

    // Every device runs release 1 again: moved ones through the fleet rollback, the unhealthy
    // ones because they rolled back themselves, the unreached ones because nothing touched them.
    const after = await rollouts.devices(created.id);
    for (const d of moved) {
      const row = after.get(d.id)!;
      expect(row).toMatchObject({ state: 'committed', rollbackState: 'committed' });
      expect(row.previousReleaseId).toBe(release1.id);
      expect(d.seqOf(created.id, '1.0.0')).toBe(row.rollbackSeq);
      const { history } = await t.api.getDevice(d.id);
      expect(history.assignments[0]).toMatchObject({
        seq: row.rollbackSeq,
        releaseId: release1.id,
        rolloutId: created.id,
      });
      expect(d.stepsOf(row.rollbackSeq!)).toEqual(['downloaded', 'installed', 'committed']);
    }
    for (const d of selfRolledBack) {
      expect(after.get(d.id)).toMatchObject({ state: 'rolled_back', rollbackState: null });
      expect((await d.ownState()).state).toBe('rolled_back');
      expect((await d.ownState()).firmwareVersion).toBe('1.0.0');
      expect(await d.activeImage()).toEqual({ digest: release1.digest, sizeBytes: IMAGE_BYTES });
    }
    for (const d of unreached) {
      expect(after.get(d.id)).toMatchObject({ state: 'cancelled', seq: null });
    }
    await expectDevicesRunning([...moved, ...unreached], '1.0.0', release1.digest);

    for (const d of fleet) {
      const acks = await serverAcks(d.id);
      expect(acks).toEqual(deviceAcks(d));
      expect(new Set(acks).size).toBe(acks.length);
      expect(d.faults).toEqual([]);
    }
  });

  /**
   * Picks 30 % of the fleet to fail the health check: 2 of wave 1's 5 devices (so wave 1 still
   * meets its 50 % success threshold and moves some devices), 6 of wave 2's 20, 7 of wave 3's 25.
   */
  function planFailures(devices: Map<string, RolloutDeviceBody>): Set<string> {
    const perWave = [2, 6, 7];
    const unhealthy = new Set<string>();
    for (const [wave, count] of perWave.entries()) {
      const ids = [...devices.values()].filter((d) => d.wave === wave).map((d) => d.deviceId);
      ids.slice(0, count).forEach((id) => unhealthy.add(id));
    }
    return unhealthy;
  }

  /** The API's counts per state equal the devices' own outcomes, rollout and rollback alike. */
  function expectCountsEqualDevices(rollout: RolloutBody, rolloutId: string): void {
    const own = ownStates(rolloutId, '2.0.0', 'cancelled');
    expect(nonZero(rollout.counts)).toEqual(tally(own.values()));
    const ownRollback = fleet.flatMap((d) => {
      const seq = d.seqOf(rolloutId, '1.0.0');
      return seq === undefined ? [] : [d.stepsOf(seq).at(-1) ?? 'assigned'];
    });
    expect(nonZero(rollout.rollback)).toEqual(tally(ownRollback));
  }
});
