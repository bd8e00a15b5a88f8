/**
 * The simulator keeps its devices' secrets per server URL so that a second run reuses the
 * devices. A server started afresh at the same URL (its data directory removed, as a newcomer
 * does to start over) knows none of them: the stored secrets and root key are dropped and the
 * devices registered again, instead of connecting with credentials the broker refuses.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { toHex } from '@fetchback/shared';
import { afterEach, describe, expect, it } from 'vitest';

import { registerFleet } from '../src/fleet/credentials.js';
import { type LocalServer, startLocalServer } from '../src/local-server.js';

describe("the simulator's stored device credentials", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function server(httpPort = 0): Promise<LocalServer> {
    const local = await startLocalServer({ httpPort });
    cleanups.push(() => local.close());
    return local;
  }

  const register = (local: LocalServer, stateDir: string, count: number) =>
    registerFleet({
      client: local.client,
      stateDir,
      count,
      prefix: 'cred',
      hardwareClass: 'pi4',
      tags: { fleet: 'cred' },
    });

  it('reuses the stored devices on the same server, registering only the new ones', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'fb-sim-cred-'));
    cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
    const local = await server();

    const first = await register(local, stateDir, 2);
    const second = await register(local, stateDir, 3);

    expect(second.identities.slice(0, 2)).toEqual(first.identities);
    expect((await local.client.listDevices({ tags: { fleet: 'cred' } })).total).toBe(3);
    for (const { id, password } of second.identities) {
      expect(await local.server.ctx.devices.authenticate(id, password)).toBe(true);
    }
  });

  it('registers again on a new server at the same URL, with its root key', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'fb-sim-cred-'));
    cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
    const old = await server();
    const port = old.server.httpPort;
    const before = await register(old, stateDir, 2);
    await cleanups.pop()!();

    const fresh = await server(port);
    const after = await register(fresh, stateDir, 2);

    expect(toHex(after.rootPublicKey)).toBe(toHex(fresh.server.ctx.keys.rootPublicKey));
    expect(toHex(after.rootPublicKey)).not.toBe(toHex(before.rootPublicKey));
    for (const { id, password } of after.identities) {
      expect(await fresh.server.ctx.devices.authenticate(id, password)).toBe(true);
    }
  });
});
