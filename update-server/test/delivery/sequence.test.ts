import { join } from 'node:path';

import { Topics, decodeManifest, ManifestVerifier } from '@fetchback/shared';
import { afterAll, describe, expect, it } from 'vitest';

import type { MessageBus } from '../../src/broker/message-bus.js';
import { AssignmentStore } from '../../src/delivery/assignment-store.js';
import { AssignmentService } from '../../src/delivery/assignments.js';
import { ServerEvents } from '../../src/events.js';
import {
  FakeDevices,
  FakeReleases,
  captureLogger,
  makeKeys,
  makeRelease,
  openDb,
  tempDir,
} from '../support/delivery-harness.js';

/** A bus double that records publishes. */
function recordingBus(): MessageBus & { published: { topic: string; retain?: boolean }[] } {
  const published: { topic: string; retain?: boolean }[] = [];
  return {
    mqttPort: undefined,
    wsPort: undefined,
    published,
    publish: async (topic, _payload, opts) => void published.push({ topic, retain: opts.retain }),
    publishParts: async (topic) => void published.push({ topic }),
    subscribe: async () => undefined,
    disconnectDevice: () => undefined,
    close: async () => undefined,
  };
}

describe('assignments', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());

  const setup = (file: string) => {
    const devices = new FakeDevices();
    devices.records.set('dev-1', {
      id: 'dev-1',
      hwClass: 'pi4',
      status: 'active',
      tags: {},
      secret: 'x',
    });
    const releases = new FakeReleases();
    const keys = makeKeys();
    const release = makeRelease(keys, { id: 'r1', sizeBytes: 5000, chunkBytes: 1024 });
    releases.add(release);
    releases.add(
      makeRelease(keys, { id: 'r-other', sizeBytes: 10, chunkBytes: 1024, hwClass: 'x86' }),
    );
    const db = openDb(file);
    const bus = recordingBus();
    const events = new ServerEvents();
    const service = new AssignmentService({
      store: new AssignmentStore(db),
      bus,
      topics: new Topics(),
      devices,
      releases,
      keys,
      events,
      log: captureLogger().log,
      clock: { now: () => Date.now() },
      defaultTtlS: 600,
    });
    return { db, bus, events, service, devices, keys };
  };

  it('keeps the per-device sequence monotonic across a reopen of the SQLite file', () => {
    const file = join(tmp.dir, 'seq.db');
    const first = setup(file);
    expect(first.service.assign('dev-1', 'r1').seq).toBe(1);
    expect(first.service.assign('dev-1', 'r1').seq).toBe(2);
    first.db.close();

    const second = setup(file);
    expect(second.service.assign('dev-1', 'r1').seq).toBe(3);
    expect(second.service.history('dev-1').map((a) => a.seq)).toEqual([3, 2, 1]);
    second.db.close();
  });

  it('publishes a retained manifest that a device verifies against its pinned root', async () => {
    const s = setup(join(tmp.dir, 'm.db'));
    const seen: unknown[] = [];
    s.events.on('device.assigned', (e) => seen.push(e));
    const { seq } = s.service.assign('dev-1', 'r1', { rolloutId: 'ro-1', ackDeadlineS: 60 });
    await new Promise((r) => setImmediate(r));
    expect(s.bus.published).toEqual([{ topic: 'fb/v1/d/dev-1/in/manifest', retain: true }]);
    const manifest = decodeManifest(s.service.latest('dev-1')!.manifest);
    const verified = new ManifestVerifier({
      rootPublicKey: s.keys.rootPublicKey,
      deviceId: 'dev-1',
      hardwareClass: 'pi4',
      maxImageBytes: 1 << 20,
    }).verify(manifest, { lastSequence: 0, securityVersion: 0 });
    expect(verified.assignment.seq).toBe(seq);
    expect(verified.assignment.ro).toBe('ro-1');
    expect(verified.assignment.ackby).toBe(verified.assignment.iat + 60);
    expect(seen).toHaveLength(1);
    s.db.close();
  });

  it('publishes only after the transaction commits; a rolled-back one sends nothing', async () => {
    const s = setup(join(tmp.dir, 'tx.db'));
    const tick = () => new Promise((r) => setImmediate(r));
    // A caller (the rollout engine) assigns inside its own transaction, which then fails.
    expect(() =>
      s.db.transaction(() => {
        expect(s.service.assign('dev-1', 'r1').seq).toBe(1);
        throw new Error('engine step failed after the assignment');
      })(),
    ).toThrow('engine step failed');
    await tick();
    expect(s.bus.published).toEqual([]);
    expect(s.service.latest('dev-1')).toBeUndefined();

    // The retry takes the same number, and this time the device is sent exactly one manifest.
    s.db.transaction(() => expect(s.service.assign('dev-1', 'r1').seq).toBe(1))();
    expect(s.bus.published).toEqual([]);
    await tick();
    expect(s.bus.published).toEqual([{ topic: 'fb/v1/d/dev-1/in/manifest', retain: true }]);
    s.db.close();
  });

  it('refuses unknown devices, decommissioned devices, unknown releases and other hardware', () => {
    const s = setup(join(tmp.dir, 'r.db'));
    expect(() => s.service.assign('nobody', 'r1')).toThrow(
      expect.objectContaining({ code: 'FB_ERR_DEVICE_UNKNOWN' }),
    );
    expect(() => s.service.assign('dev-1', 'nope')).toThrow(
      expect.objectContaining({ code: 'FB_ERR_RELEASE_UNKNOWN' }),
    );
    expect(() => s.service.assign('dev-1', 'r-other')).toThrow(
      expect.objectContaining({ code: 'FB_ERR_WRONG_HW_CLASS' }),
    );
    s.devices.decommission('dev-1');
    expect(() => s.service.assign('dev-1', 'r1')).toThrow(
      expect.objectContaining({ code: 'FB_ERR_DEVICE_DECOMMISSIONED' }),
    );
    expect(s.bus.published).toHaveLength(0);
    s.db.close();
  });
});
