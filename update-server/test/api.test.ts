/**
 * Contract tests of the core HTTP API with fastify `inject`: every route, every role check and
 * every error path, and the problem+json shape of every error reply.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';

import { ERROR_CATALOGUE, generateKeyPair, keyId, toHex } from '@fetchback/shared';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { buildApi } from '../src/api/app.js';
import { BackStore } from '../src/delivery/back-store.js';
import { type TestContext, testContext } from './helpers.js';

let t: TestContext;
let app: FastifyInstance;

beforeEach(async () => {
  t = testContext({ maxImageBytes: 1024 * 1024, apiBodyLimitBytes: 4096 });
  app = await buildApi(t.ctx);
});
afterEach(async () => {
  await app.close();
  await t.close();
});

type Who = 'admin' | 'operator' | 'viewer' | 'none' | 'wrong';

function auth(who: Who): Record<string, string> {
  if (who === 'none') return {};
  if (who === 'wrong') return { authorization: 'Bearer fbt_wrong' };
  return { authorization: `Bearer ${t.tokens[who]}` };
}

function call(method: string, url: string, who: Who = 'admin', body?: unknown) {
  return app.inject({
    method: method as 'GET',
    url,
    headers: auth(who),
    ...(body === undefined ? {} : { payload: body as object }),
  });
}

function upload(query: string, bytes: Uint8Array, who: Who = 'operator') {
  return app.inject({
    method: 'POST',
    url: `/api/v1/releases?${query}`,
    headers: { ...auth(who), 'content-type': 'application/octet-stream' },
    payload: Buffer.from(bytes),
  });
}

/** Asserts an RFC 9457 problem reply with this status and code. */
function expectProblem(res: LightMyRequestResponse, status: number, code: string): void {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(body).toMatchObject({ status, code, type: `urn:fetchback:error:${code}` });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(code in ERROR_CATALOGUE).toBe(true);
}

async function registerDevice(id = 'dev-1', hardwareClass = 'pi4', tags = {}) {
  const res = await call('POST', '/api/v1/devices', 'operator', { id, hardwareClass, tags });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

async function createRelease(version = '1.0.0', hwClass = 'pi4') {
  const res = await upload(`version=${version}&class=${hwClass}`, randomBytes(200_000));
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

describe('authentication and roles', () => {
  const reads = ['/api/v1/devices', '/api/v1/releases', '/api/v1/devices/dev-1'];

  it('answers 401 FB_ERR_UNAUTHORIZED without a token or with a wrong one', async () => {
    for (const url of [...reads, '/api/v1/tokens']) {
      expectProblem(await call('GET', url, 'none'), 401, 'FB_ERR_UNAUTHORIZED');
      expectProblem(await call('GET', url, 'wrong'), 401, 'FB_ERR_UNAUTHORIZED');
    }
    expectProblem(
      await call('POST', '/api/v1/devices', 'none', { id: 'x' }),
      401,
      'FB_ERR_UNAUTHORIZED',
    );
  });

  it('answers 403 FB_ERR_FORBIDDEN when a viewer changes anything', async () => {
    await registerDevice();
    const changes: [string, string, unknown][] = [
      ['POST', '/api/v1/devices', { id: 'dev-2', hardwareClass: 'pi4' }],
      ['DELETE', '/api/v1/devices/dev-1', undefined],
      ['POST', '/api/v1/devices/dev-1/reset-key', undefined],
      ['POST', '/api/v1/assignments', { releaseId: 'rel-x', deviceIds: ['dev-1'] }],
      ['POST', '/api/v1/tokens', { name: 'x', role: 'viewer' }],
      ['DELETE', '/api/v1/tokens/ops', undefined],
    ];
    for (const [method, url, body] of changes) {
      expectProblem(await call(method, url, 'viewer', body), 403, 'FB_ERR_FORBIDDEN');
    }
    expectProblem(
      await upload('version=1&class=pi4', new Uint8Array(10), 'viewer'),
      403,
      'FB_ERR_FORBIDDEN',
    );
    expect(t.ctx.devices.get('dev-1')?.status).toBe('active');
    expect(t.ctx.releases.list().total).toBe(0);
  });

  it('lets a viewer read and keeps token management to admins', async () => {
    await registerDevice();
    for (const url of reads) expect((await call('GET', url, 'viewer')).statusCode).toBe(200);
    expectProblem(await call('GET', '/api/v1/tokens', 'operator'), 403, 'FB_ERR_FORBIDDEN');
    expectProblem(await call('GET', '/api/v1/tokens', 'viewer'), 403, 'FB_ERR_FORBIDDEN');
  });

  it('serves health, readiness, metrics and the OpenAPI document without a token', async () => {
    expect((await call('GET', '/healthz', 'none')).json()).toEqual({ status: 'ok' });
    expect((await call('GET', '/readyz', 'none')).json()).toMatchObject({ status: 'ready' });
    const openapi = (await call('GET', '/api/v1/openapi.json', 'none')).json();
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/devices',
        '/api/v1/releases',
        '/api/v1/assignments',
        '/api/v1/tokens',
      ]),
    );
    expect(openapi.components.securitySchemes.bearerAuth).toMatchObject({ scheme: 'bearer' });
    expect((await call('GET', '/docs/', 'none')).statusCode).toBe(200);
  });
});

describe('framework errors as problem+json', () => {
  it('answers 400 FB_ERR_BODY_MALFORMED for malformed JSON', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/devices',
      headers: { ...auth('operator'), 'content-type': 'application/json' },
      payload: '{"id": ',
    });
    expectProblem(res, 400, 'FB_ERR_BODY_MALFORMED');
  });

  it('answers 413 FB_ERR_BODY_TOO_LARGE for a JSON body over the limit', async () => {
    const res = await call('POST', '/api/v1/devices', 'operator', {
      id: 'dev-1',
      hardwareClass: 'pi4',
      tags: { big: 'x'.repeat(5000) },
    });
    expectProblem(res, 413, 'FB_ERR_BODY_TOO_LARGE');
  });

  it('answers 400 FB_ERR_VALIDATION for a body off its schema or with unknown fields', async () => {
    expectProblem(
      await call('POST', '/api/v1/devices', 'operator', { id: 'dev-1' }),
      400,
      'FB_ERR_VALIDATION',
    );
    expectProblem(
      await call('POST', '/api/v1/devices', 'operator', {
        id: 'dev-1',
        hardwareClass: 'pi4',
        colour: 'red',
      }),
      400,
      'FB_ERR_VALIDATION',
    );
    expectProblem(await call('GET', '/api/v1/devices?limit=0', 'viewer'), 400, 'FB_ERR_VALIDATION');
  });

  it('answers 404 FB_ERR_NOT_FOUND for an unknown route', async () => {
    expectProblem(await call('GET', '/api/v1/nothing-here', 'none'), 404, 'FB_ERR_NOT_FOUND');
  });

  it('answers 415 FB_ERR_MEDIA_TYPE for an upload not application/octet-stream', async () => {
    const res = await call('POST', '/api/v1/releases?version=1&class=pi4', 'operator', {
      image: 'x',
    });
    expectProblem(res, 415, 'FB_ERR_MEDIA_TYPE');
  });
});

describe('devices', () => {
  it('registers a device and returns an agent config with the secret and root key', async () => {
    const { device, agentConfig } = await registerDevice('dev-1', 'pi4', { site: 'lab' });
    expect(device).toMatchObject({
      id: 'dev-1',
      hardwareClass: 'pi4',
      tags: { site: 'lab' },
      status: 'active',
    });
    expect(agentConfig).toMatchObject({
      deviceId: 'dev-1',
      username: 'dev-1',
      hardwareClass: 'pi4',
      topicPrefix: 'fb/v1',
      rootPublicKey: Buffer.from(t.ctx.keys.rootPublicKey).toString('hex'),
      brokerUrl: 'mqtt://localhost:1883',
    });
    expect(await t.ctx.devices.authenticate('dev-1', agentConfig.password)).toBe(true);
    expect(t.ctx.audit.list().items[0]).toMatchObject({
      actor: 'ops',
      action: 'device.register',
      target: 'dev-1',
    });
  });

  it('answers 409 FB_ERR_DEVICE_EXISTS for a device id taken, 400 for a bad id', async () => {
    await registerDevice();
    expectProblem(
      await call('POST', '/api/v1/devices', 'operator', { id: 'dev-1', hardwareClass: 'pi4' }),
      409,
      'FB_ERR_DEVICE_EXISTS',
    );
    expectProblem(
      await call('POST', '/api/v1/devices', 'operator', { id: '-bad', hardwareClass: 'pi4' }),
      400,
      'FB_ERR_DEVICE_ID_INVALID',
    );
  });

  it('lists devices with class, tag and status filters and pagination', async () => {
    await registerDevice('a', 'pi4', { ring: 'canary' });
    await registerDevice('b', 'pi4', { ring: 'main' });
    await registerDevice('c', 'pi5', { ring: 'canary' });
    const byClass = (await call('GET', '/api/v1/devices?class=pi4', 'viewer')).json();
    expect(byClass.items.map((d: { id: string }) => d.id)).toEqual(['a', 'b']);
    const byTag = (await call('GET', '/api/v1/devices?tag=ring=canary', 'viewer')).json();
    expect(byTag.items.map((d: { id: string }) => d.id)).toEqual(['a', 'c']);
    const page = (await call('GET', '/api/v1/devices?limit=1&offset=1', 'viewer')).json();
    expect(page).toMatchObject({ total: 3, limit: 1, offset: 1 });
    expect(page.items.map((d: { id: string }) => d.id)).toEqual(['b']);
    expectProblem(
      await call('GET', '/api/v1/devices?tag=novalue', 'viewer'),
      400,
      'FB_ERR_ARGUMENT',
    );
  });

  it('shows a device with its history; 404 FB_ERR_DEVICE_UNKNOWN for an unknown id', async () => {
    await registerDevice();
    const res = (await call('GET', '/api/v1/devices/dev-1', 'viewer')).json();
    expect(res.device.id).toBe('dev-1');
    expect(res.deviceKey).toBeNull();
    expect(res.history).toEqual({ assignments: [], acks: [], status: [] });
    expectProblem(
      await call('GET', '/api/v1/devices/nobody', 'viewer'),
      404,
      'FB_ERR_DEVICE_UNKNOWN',
    );
  });

  it('pins a device key given at registration; refuses one not 32 bytes of hex', async () => {
    const key = generateKeyPair();
    const res = await call('POST', '/api/v1/devices', 'operator', {
      id: 'dev-k',
      hardwareClass: 'pi4',
      deviceKey: toHex(key.publicKey),
    });
    expect(res.statusCode).toBe(201);
    const shown = (await call('GET', '/api/v1/devices/dev-k', 'viewer')).json();
    expect(shown.deviceKey.publicKey).toBe(toHex(key.publicKey));
    expectProblem(
      await call('POST', '/api/v1/devices', 'operator', {
        id: 'dev-bad',
        hardwareClass: 'pi4',
        deviceKey: 'abcd',
      }),
      400,
      'FB_ERR_VALIDATION',
    );
    expect(t.ctx.devices.get('dev-bad')).toBeUndefined();
  });

  it('shows the pinned key, forgets it on reset-key (audited); 404 unknown id', async () => {
    await registerDevice();
    const key = generateKeyPair();
    new BackStore(t.ctx.db).pinDeviceKey('dev-1', key.publicKey, 1);

    const shown = (await call('GET', '/api/v1/devices/dev-1', 'viewer')).json();
    expect(shown.deviceKey).toEqual({
      publicKey: toHex(key.publicKey),
      keyId: toHex(keyId(key.publicKey)),
    });
    const reset = await call('POST', '/api/v1/devices/dev-1/reset-key', 'operator');
    expect(reset.statusCode).toBe(200);
    expect(reset.json()).toMatchObject({ device: { id: 'dev-1' }, forgotten: true });
    expect((await call('GET', '/api/v1/devices/dev-1', 'viewer')).json().deviceKey).toBeNull();
    expect(
      (await call('POST', '/api/v1/devices/dev-1/reset-key', 'operator')).json().forgotten,
    ).toBe(false);
    expect(t.ctx.audit.list({ action: 'device.reset-key' }).total).toBe(2);
    expectProblem(
      await call('POST', '/api/v1/devices/nobody/reset-key', 'operator'),
      404,
      'FB_ERR_DEVICE_UNKNOWN',
    );
  });

  it('decommissions: credentials revoked, connection dropped, audited; twice is 409', async () => {
    const { agentConfig } = await registerDevice();
    const res = await call('DELETE', '/api/v1/devices/dev-1', 'operator');
    expect(res.statusCode).toBe(200);
    expect(res.json().device.status).toBe('decommissioned');
    expect(await t.ctx.devices.authenticate('dev-1', agentConfig.password)).toBe(false);
    expect(t.bus.disconnected).toEqual(['dev-1']);
    expect(t.ctx.audit.list({ action: 'device.decommission' }).total).toBe(1);
    expectProblem(
      await call('DELETE', '/api/v1/devices/dev-1', 'operator'),
      409,
      'FB_ERR_DEVICE_DECOMMISSIONED',
    );
    expectProblem(
      await call('DELETE', '/api/v1/devices/nobody', 'operator'),
      404,
      'FB_ERR_DEVICE_UNKNOWN',
    );
  });
});

describe('releases', () => {
  it('creates a release from a raw upload, lists it and shows it with its statement', async () => {
    const created = await createRelease('1.2.0');
    expect(created).toMatchObject({
      name: 'firmware',
      version: '1.2.0',
      hardwareClass: 'pi4',
      size: 200_000,
    });
    const list = (await call('GET', '/api/v1/releases?class=pi4', 'viewer')).json();
    expect(list.items.map((r: { id: string }) => r.id)).toEqual([created.id]);
    const one = (await call('GET', `/api/v1/releases/${created.id}`, 'viewer')).json();
    expect(typeof one.statement).toBe('string');
    expect(t.ctx.audit.list({ action: 'release.create' }).items[0]?.actor).toBe('ops');
  });

  it('answers 409 FB_ERR_RELEASE_EXISTS for the same name, class and version twice', async () => {
    await createRelease('1.0.0');
    expectProblem(
      await upload('version=1.0.0&class=pi4', randomBytes(10)),
      409,
      'FB_ERR_RELEASE_EXISTS',
    );
  });

  it('answers 413 FB_ERR_UPLOAD_TOO_LARGE over maxImageBytes and keeps no file', async () => {
    expectProblem(
      await upload('version=1.0.0&class=pi4', randomBytes(1024 * 1024 + 1)),
      413,
      'FB_ERR_UPLOAD_TOO_LARGE',
    );
    expect(readdirSync(t.ctx.images.tempDir)).toEqual([]);
    expect(t.ctx.releases.list().total).toBe(0);
  });

  it('answers 400 for missing or bad release fields, 404 for an unknown release', async () => {
    expectProblem(await upload('class=pi4', randomBytes(10)), 400, 'FB_ERR_VALIDATION');
    expectProblem(await upload('version=1%202&class=pi4', randomBytes(10)), 400, 'FB_ERR_ARGUMENT');
    expectProblem(
      await call('GET', '/api/v1/releases/rel-nope', 'viewer'),
      404,
      'FB_ERR_RELEASE_UNKNOWN',
    );
  });
});

describe('assignments', () => {
  it('assigns a release to devices through the assignment service, audited', async () => {
    await registerDevice('a');
    await registerDevice('b');
    const release = await createRelease();
    const res = await call('POST', '/api/v1/assignments', 'operator', {
      releaseId: release.id,
      deviceIds: ['a', 'b'],
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().assignments).toEqual([
      { deviceId: 'a', seq: 1 },
      { deviceId: 'b', seq: 1 },
    ]);
    expect(t.assigned.map((a) => a.deviceId)).toEqual(['a', 'b']);
    expect(t.ctx.audit.list({ action: 'assignment.create' }).total).toBe(1);
  });

  it('assigns none when one device is unknown, decommissioned or of another class', async () => {
    await registerDevice('a');
    await registerDevice('gone');
    await registerDevice('other', 'pi5');
    await call('DELETE', '/api/v1/devices/gone', 'operator');
    const release = await createRelease();
    const body = (ids: string[]) => ({ releaseId: release.id, deviceIds: ids });
    expectProblem(
      await call('POST', '/api/v1/assignments', 'operator', body(['a', 'nobody'])),
      404,
      'FB_ERR_DEVICE_UNKNOWN',
    );
    expectProblem(
      await call('POST', '/api/v1/assignments', 'operator', body(['a', 'gone'])),
      409,
      'FB_ERR_DEVICE_DECOMMISSIONED',
    );
    expectProblem(
      await call('POST', '/api/v1/assignments', 'operator', body(['a', 'other'])),
      400,
      'FB_ERR_WRONG_HW_CLASS',
    );
    expectProblem(
      await call('POST', '/api/v1/assignments', 'operator', {
        releaseId: 'rel-nope',
        deviceIds: ['a'],
      }),
      404,
      'FB_ERR_RELEASE_UNKNOWN',
    );
    expectProblem(
      await call('POST', '/api/v1/assignments', 'operator', body([])),
      400,
      'FB_ERR_VALIDATION',
    );
    expect(t.assigned).toEqual([]);
  });

  it("lists a device's assignments, and 404 for an unknown device", async () => {
    await registerDevice('a');
    const res = (await call('GET', '/api/v1/devices/a/assignments', 'viewer')).json();
    expect(res).toEqual({ items: [] });
    expectProblem(
      await call('GET', '/api/v1/devices/nobody/assignments', 'viewer'),
      404,
      'FB_ERR_DEVICE_UNKNOWN',
    );
  });
});

describe('tokens', () => {
  it('creates a token that works at once, lists it without secrets, and revokes it', async () => {
    const created = await call('POST', '/api/v1/tokens', 'admin', { name: 'ci', role: 'viewer' });
    expect(created.statusCode).toBe(201);
    const { token, id } = created.json();
    expect(token).toMatch(/^fbt_/);
    const ok = await app.inject({
      url: '/api/v1/devices',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(ok.statusCode).toBe(200);
    const list = (await call('GET', '/api/v1/tokens')).json();
    expect(list.items.map((i: { name: string }) => i.name)).toContain('ci');
    expect(JSON.stringify(list)).not.toContain(token);
    expect((await call('DELETE', `/api/v1/tokens/${id}`)).json().revokedAt).not.toBeNull();
    const after = await app.inject({
      url: '/api/v1/devices',
      headers: { authorization: `Bearer ${token}` },
    });
    expectProblem(after, 401, 'FB_ERR_UNAUTHORIZED');
    expect(t.ctx.audit.list({ action: 'token.revoke' }).items[0]?.actor).toBe('root-admin');
  });

  it('answers 409 for a name in use, 404 for an unknown token, 400 for a bad role', async () => {
    expectProblem(
      await call('POST', '/api/v1/tokens', 'admin', { name: 'ops', role: 'viewer' }),
      409,
      'FB_ERR_CONFLICT',
    );
    expectProblem(await call('DELETE', '/api/v1/tokens/tok-nope'), 404, 'FB_ERR_NOT_FOUND');
    expectProblem(
      await call('POST', '/api/v1/tokens', 'admin', { name: 'x', role: 'root' }),
      400,
      'FB_ERR_VALIDATION',
    );
  });

  it('refuses to revoke the last admin token (409 FB_ERR_STATE)', async () => {
    expectProblem(await call('DELETE', '/api/v1/tokens/root-admin'), 409, 'FB_ERR_STATE');
  });
});

describe('metrics', () => {
  it('exposes device and release gauges in the Prometheus format', async () => {
    await registerDevice('a');
    await createRelease();
    const res = await call('GET', '/metrics', 'none');
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toContain('fetchback_devices{status="active",state="unknown"} 1');
    expect(res.body).toContain('fetchback_releases 1');
  });
});
