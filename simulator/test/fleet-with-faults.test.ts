/**
 * A fleet of 100 virtual devices with every fault on, against a real server with its embedded
 * broker on a real socket and a real SQLite store. What a fleet operator relies on, checked
 * device by device: updates that should commit do, failing health checks roll back, nothing
 * unverified runs, and the server's ACK records are the devices' own, once each.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { expectedEnd } from '../src/faults/plan.js';
import { FAULT_NAMES, resolveFaults } from '../src/faults/profiles.js';
import { factoryImage } from '../src/fleet/fleet.js';
import {
  type LocalServer,
  startLocalServer,
  testImage,
  uploadRelease,
} from '../src/local-server.js';
import type { FleetReport } from '../src/report/report.js';
import { DEFAULT_SIMULATION, Simulation } from '../src/simulation.js';

const DEVICES = 100;
const IMAGE_BYTES = 1024 * 1024;

const sha256Hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('a 100-device fleet with every fault on', () => {
  let local: LocalServer;
  let stateDir: string;
  let simulation: Simulation;
  let report: FleetReport;
  let release: { id: string; imageDigest: string };

  beforeAll(async () => {
    local = await startLocalServer();
    stateDir = await mkdtemp(join(tmpdir(), 'fetchback-sim-test-'));
    const rates = resolveFaults('chaos');
    expect(FAULT_NAMES.filter((name) => rates[name] === 0)).toEqual([]);

    simulation = await Simulation.start({
      ...DEFAULT_SIMULATION,
      server: local.url,
      token: local.token,
      devices: DEVICES,
      rates,
      seed: 42,
      stateDir,
      progress: false,
    });
    const image = testImage('1.1.0', IMAGE_BYTES);
    release = await uploadRelease(local.client, { version: '1.1.0', hardwareClass: 'pi4' }, image);
    expect(release.imageDigest).toBe(sha256Hex(image));
    await local.client.assign(
      release.id,
      simulation.fleet.devices.map((d) => d.id),
    );
    const reason = await simulation.waitForEnd({
      untilIdle: true,
      idleTimeoutMs: 30_000,
      durationMs: 75_000,
    });
    report = await simulation.finish();
    expect(reason).toBe('idle');
  }, 90_000);

  afterAll(async () => {
    await simulation?.fleet.stop();
    await local?.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('injects every kind of fault at least once', () => {
    for (const name of ['corrupt', 'drop-in', 'drop-out', 'crash-download', 'crash-install']) {
      expect(report.faultsInjected[name], name).toBeGreaterThan(0);
    }
    const plans = simulation.fleet.devices.map((d) => d.plan);
    expect(plans.some((p) => p.health === 'fail')).toBe(true);
    expect(plans.some((p) => p.health === 'hang')).toBe(true);
    expect(plans.some((p) => p.slowFlash)).toBe(true);
    expect(plans.some((p) => p.clockSkewMs !== 0)).toBe(true);
    expect(plans.some((p) => p.vanishAt !== undefined)).toBe(true);
  });

  it('commits every device whose fault plan allows it, and rolls back every failing health check', () => {
    for (const device of simulation.fleet.devices) {
      const expected = expectedEnd(device.plan);
      expect({ id: device.id, state: device.state }).toEqual({ id: device.id, state: expected });
    }
    expect(report.unexpected).toEqual([]);
    expect(report.finalStates.committed).toBeGreaterThan(DEVICES * 0.7);
  });

  it('runs on every committed device exactly the verified image, and the factory image after a rollback', async () => {
    const factoryDigest = sha256Hex(factoryImage(DEFAULT_SIMULATION.firmwareVersion));
    for (const device of simulation.fleet.devices) {
      if (device.state !== 'committed' && device.state !== 'rolled_back') continue;
      const slots = device.storage.slots;
      const active = await slots.active();
      const size = (await slots.size(active)) as number;
      const digest = sha256Hex(await slots.read(active, 0, size));
      const want = device.state === 'committed' ? release.imageDigest : factoryDigest;
      expect({ id: device.id, digest }).toEqual({ id: device.id, digest: want });
    }
  });

  it("records on the server exactly the devices' own ACKs, none lost and none doubled", async () => {
    for (const device of simulation.fleet.devices) {
      const { history } = await local.client.getDevice(device.id);
      const server = history.acks.map((a) => `${a.requestId} ${a.seq} ${a.step} ${a.code}`).sort();
      const own = [...device.acks.values()]
        .map((a) => `${a.rid} ${a.seq} ${a.step} ${a.code}`)
        .sort();
      expect(new Set(server).size).toBe(server.length);
      if (device.vanished) {
        // A device that went away may have ACKs the server never received; none may be extra.
        expect(own).toEqual(expect.arrayContaining(server));
      } else {
        expect({ id: device.id, acks: server }).toEqual({ id: device.id, acks: own });
      }
    }
  });

  it("counts in its report what the server's API counts", async () => {
    const live = simulation.fleet.devices.filter((d) => !d.vanished);
    let committedAcks = 0;
    let rolledBackAcks = 0;
    for (const device of live) {
      const { history } = await local.client.getDevice(device.id);
      if (history.acks.some((a) => a.step === 'committed')) committedAcks++;
      if (history.acks.some((a) => a.step === 'rolled_back')) rolledBackAcks++;
    }
    expect(committedAcks).toBe(report.finalStates.committed);
    expect(rolledBackAcks).toBe(report.finalStates.rolled_back ?? 0);
    expect(report.bytes.minimum).toBe(IMAGE_BYTES * DEVICES);
  });

  // Fails while the server sets a device's state from whichever STATUS it processed last: under
  // load it records a device's "committed" before its earlier "trial" and ends on "trial".
  it('shows for every device the state the device itself ended in', async () => {
    const live = simulation.fleet.devices.filter((d) => !d.vanished);
    const page = await local.client.listDevices({ tags: { fleet: 'sim' }, limit: 1000 });
    const serverState = new Map(page.items.map((d) => [d.id, d.state]));
    const differing = live
      .filter((d) => serverState.get(d.id) !== d.state)
      .map((d) => `${d.id}: device ${d.state}, server ${serverState.get(d.id)}`);
    expect(differing).toEqual([]);
    expect(report.serverStates?.committed).toBe(report.finalStates.committed);
    expect(report.serverStates?.rolled_back ?? 0).toBe(report.finalStates.rolled_back ?? 0);
  });
});
