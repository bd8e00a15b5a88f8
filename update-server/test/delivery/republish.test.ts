import { join } from 'node:path';

import { decodeManifest } from '@fetchback/shared';
import { afterAll, describe, expect, it } from 'vitest';

import {
  FakeDevices,
  FakeReleases,
  makeKeys,
  makeRelease,
  nextMessage,
  startHarness,
  tempDir,
} from '../support/delivery-harness.js';

describe('manifests after a restart', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());

  it('republishes every active device its newest manifest, retained, when delivery starts', async () => {
    const dbFile = join(tmp.dir, 'state.db');
    const devices = new FakeDevices();
    const releases = new FakeReleases();
    const keys = makeKeys();
    const dev = devices.add('dev-1');
    releases.add(makeRelease(keys, { id: 'r1', sizeBytes: 2048, chunkBytes: 1024 }));

    const first = await startHarness({ dbFile, devices, releases, keys });
    first.delivery.assignments.assign('dev-1', 'r1');
    first.delivery.assignments.assign('dev-1', 'r1');
    await first.close();

    const second = await startHarness({ dbFile, devices, releases, keys });
    try {
      const client = await second.connect(dev.id, dev.secret);
      const manifest = nextMessage(client, 'fb/v1/d/dev-1/in/manifest');
      await client.subscribeAsync('fb/v1/d/dev-1/in/#', { qos: 1 });
      expect(decodeManifest(await manifest).asg.body.seq).toBe(2);
    } finally {
      await second.close();
    }
  });
});
