import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startRolloutServer } from './server-harness.js';
import type { RolloutServer } from './server-harness.js';

let s: RolloutServer;
let rel2: string;
const fleet = Array.from({ length: 6 }, (_, i) => `api-dev-${i}`);

beforeAll(async () => {
  s = await startRolloutServer();
  s.addDevices(fleet, 'pi4', { site: 'lab' });
  s.addDevices(['x86-dev'], 'x86');
  rel2 = await s.addRelease('2.0.0');
});

afterAll(async () => {
  await s?.close();
});

const body = (overrides: Record<string, unknown> = {}) => ({
  releaseId: rel2,
  name: 'canary',
  target: { tags: { site: 'lab' }, deviceIds: fleet.slice(0, 3) },
  strategy: { waves: [{ count: 1 }, { percent: 100 }], maxConcurrent: 2 },
  ...overrides,
});

function expectProblem(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are checked by shape
  res: { status: number; type: string; body: any },
  status: number,
  code: string,
): void {
  expect(res.status).toBe(status);
  expect(res.type).toContain('application/problem+json');
  expect(res.body).toMatchObject({ status, code, type: `urn:fetchback:error:${code}` });
}

describe('authentication and roles', () => {
  const routes: [string, string][] = [
    ['GET', '/api/v1/rollouts'],
    ['POST', '/api/v1/rollouts'],
    ['GET', '/api/v1/rollouts/ro-x'],
    ['POST', '/api/v1/rollouts/ro-x/start'],
    ['POST', '/api/v1/rollouts/ro-x/pause'],
    ['POST', '/api/v1/rollouts/ro-x/resume'],
    ['POST', '/api/v1/rollouts/ro-x/abort'],
    ['GET', '/api/v1/rollouts/ro-x/devices'],
    ['GET', '/api/v1/events'],
    ['GET', '/api/v1/audit'],
  ];

  it.each(routes)('%s %s answers 401 without a token and with a wrong one', async (m, path) => {
    expectProblem(await s.request(m, path, { token: null }), 401, 'FB_ERR_UNAUTHORIZED');
    expectProblem(await s.request(m, path, { token: 'fbt_wrong' }), 401, 'FB_ERR_UNAUTHORIZED');
  });

  it.each(routes.filter(([m]) => m === 'POST'))('a viewer may not %s %s (403)', async (m, p) => {
    expectProblem(
      await s.request(m, p, { token: s.tokens.viewer, body: body() }),
      403,
      'FB_ERR_FORBIDDEN',
    );
  });

  it('a viewer may not read the audit log', async () => {
    expectProblem(
      await s.request('GET', '/api/v1/audit', { token: s.tokens.viewer }),
      403,
      'FB_ERR_FORBIDDEN',
    );
  });
});

describe('create', () => {
  it('creates a draft with its strategy defaults filled in', async () => {
    const res = await s.request('POST', '/api/v1/rollouts', { body: body() });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      state: 'draft',
      releaseId: rel2,
      name: 'canary',
      createdBy: 't-operator',
      totalDevices: 0,
      strategy: { maxConcurrent: 2, failureThreshold: { action: 'pause' } },
    });
    expect(res.body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    await s.request('POST', `/api/v1/rollouts/${res.body.id}/abort`);
  });

  it.each([
    ['a missing releaseId', { releaseId: undefined }],
    ['an unknown field', { colour: 'red' }],
    ['a wave with both count and percent', { strategy: { waves: [{ count: 1, percent: 5 }] } }],
    ['an unknown failure action', { strategy: { failureThreshold: { action: 'explode' } } }],
    ['a malformed window', { strategy: { maintenanceWindow: { start: '9am', end: '10:00' } } }],
    ['a malformed startAt', { startAt: 'tomorrow' }],
  ])('refuses %s with 400', async (_name, overrides) => {
    const res = await s.request('POST', '/api/v1/rollouts', { body: body(overrides) });
    expect(res.status).toBe(400);
    expect(['FB_ERR_VALIDATION', 'FB_ERR_ARGUMENT']).toContain(res.body.code);
  });

  it('refuses decreasing cumulative waves with 400 naming the field', async () => {
    const res = await s.request('POST', '/api/v1/rollouts', {
      body: body({ strategy: { waves: [{ percent: 50 }, { percent: 10 }] } }),
    });
    expectProblem(res, 400, 'FB_ERR_ARGUMENT');
    expect(res.body.detail).toContain('strategy.waves[1]');
  });

  it('refuses malformed JSON with 400', async () => {
    expectProblem(
      await s.request('POST', '/api/v1/rollouts', { raw: '{"releaseId": ' }),
      400,
      'FB_ERR_BODY_MALFORMED',
    );
  });

  it('refuses an unknown release with 404 and an empty target with 409', async () => {
    expectProblem(
      await s.request('POST', '/api/v1/rollouts', { body: body({ releaseId: 'rel-nope' }) }),
      404,
      'FB_ERR_RELEASE_UNKNOWN',
    );
    expectProblem(
      await s.request('POST', '/api/v1/rollouts', {
        body: body({ target: { tags: { site: 'moon' } } }),
      }),
      409,
      'FB_ERR_ROLLOUT_EMPTY',
    );
  });

  it('refuses a device of another class named in the target with 400', async () => {
    expectProblem(
      await s.request('POST', '/api/v1/rollouts', {
        body: body({ target: { deviceIds: ['x86-dev'] } }),
      }),
      400,
      'FB_ERR_WRONG_HW_CLASS',
    );
  });
});

describe('lifecycle', () => {
  it('starts, pauses, resumes and aborts, with counts per state and per wave', async () => {
    const created = await s.request('POST', '/api/v1/rollouts', { body: body() });
    const id = created.body.id as string;

    const started = await s.request('POST', `/api/v1/rollouts/${id}/start`);
    expect(started.status).toBe(200);
    expect(started.body).toMatchObject({ state: 'running', totalDevices: 3, currentWave: 0 });
    expect(started.body.waves.map((w: { size: number }) => w.size)).toEqual([1, 2]);
    expect(started.body.counts.assigned).toBe(1); // the real AssignmentService issued it
    expect(started.body.waves[0].counts.assigned).toBe(1);

    const devices = await s.request('GET', `/api/v1/rollouts/${id}/devices?state=assigned`);
    expect(devices.body).toMatchObject({ total: 1, limit: 100, offset: 0 });
    expect(devices.body.items[0]).toMatchObject({ wave: 0, state: 'assigned', seq: 1 });

    expect((await s.request('POST', `/api/v1/rollouts/${id}/pause`)).body.state).toBe('paused');
    expectProblem(
      await s.request('POST', `/api/v1/rollouts/${id}/pause`),
      409,
      'FB_ERR_ROLLOUT_TRANSITION',
    );
    expect((await s.request('POST', `/api/v1/rollouts/${id}/resume`)).body.state).toBe('running');

    const conflict = await s.request('POST', '/api/v1/rollouts', {
      body: body({ target: { deviceIds: [fleet[0], fleet[4]] } }),
    });
    expectProblem(conflict, 409, 'FB_ERR_ROLLOUT_CONFLICT');
    expect(conflict.body.detail).toContain(fleet[0]);

    const aborted = await s.request('POST', `/api/v1/rollouts/${id}/abort`, {
      token: s.tokens.admin,
    });
    expect(aborted.body).toMatchObject({ state: 'aborted', reason: 'aborted by t-admin' });
    expect(aborted.body.counts.cancelled).toBe(2);
  });

  it('answers 404 for an unknown rollout on every route', async () => {
    for (const [m, p] of [
      ['GET', '/api/v1/rollouts/ro-missing'],
      ['GET', '/api/v1/rollouts/ro-missing/devices'],
      ['POST', '/api/v1/rollouts/ro-missing/start'],
      ['POST', '/api/v1/rollouts/ro-missing/abort'],
    ] as const) {
      expectProblem(await s.request(m, p), 404, 'FB_ERR_ROLLOUT_UNKNOWN');
    }
  });
});

describe('list, audit, metrics and docs', () => {
  it('lists with filters and pagination', async () => {
    const all = await s.request('GET', '/api/v1/rollouts?limit=1', { token: s.tokens.viewer });
    expect(all.status).toBe(200);
    expect(all.body.items).toHaveLength(1);
    expect(all.body.total).toBeGreaterThanOrEqual(2);
    const next = await s.request('GET', `/api/v1/rollouts?limit=1&cursor=${all.body.nextCursor}`);
    expect(next.body.items[0].id).not.toBe(all.body.items[0].id);
    const second = await s.request('GET', '/api/v1/rollouts?limit=1&offset=1');
    expect(second.body.items[0].id).toBe(next.body.items[0].id);

    const aborted = await s.request('GET', '/api/v1/rollouts?state=aborted');
    expect(aborted.body.items.every((r: { state: string }) => r.state === 'aborted')).toBe(true);
    const none = await s.request('GET', '/api/v1/rollouts?releaseId=rel-none');
    expect(none.body).toMatchObject({ items: [], total: 0 });
    expectProblem(
      await s.request('GET', '/api/v1/rollouts?state=sideways'),
      400,
      'FB_ERR_VALIDATION',
    );
    expectProblem(await s.request('GET', '/api/v1/rollouts?cursor=zzz'), 400, 'FB_ERR_ARGUMENT');
  });

  it('writes every rollout change to the audit log with the token name as actor', async () => {
    const res = await s.request('GET', '/api/v1/audit?action=rollout.abort');
    expect(res.status).toBe(200);
    expect(res.body.items.map((e: { actor: string }) => e.actor)).toContain('t-admin');
    const creates = await s.request('GET', '/api/v1/audit?action=rollout.create&limit=5');
    expect(creates.body.items[0]).toMatchObject({ actor: 't-operator', action: 'rollout.create' });
    expect(creates.body.items[0].at).toMatch(/^\d{4}-/);
  });

  it('exports rollouts by state on /metrics', async () => {
    const res = await fetch(`${s.base}/metrics`, {
      headers: { authorization: `Bearer ${s.tokens.admin}` },
    });
    const text = await res.text();
    expect(text).toMatch(/fetchback_rollouts\{state="aborted"\} [1-9]/);
    expect(text).toMatch(/fetchback_rollouts\{state="running"\} 0/);
  });

  it('documents the rollout routes in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${s.base}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    for (const p of [
      '/api/v1/rollouts',
      '/api/v1/rollouts/{id}',
      '/api/v1/rollouts/{id}/start',
      '/api/v1/rollouts/{id}/devices',
      '/api/v1/events',
      '/api/v1/audit',
    ]) {
      expect(doc.paths).toHaveProperty([p]);
    }
  });
});

describe('server-sent events', () => {
  it('streams rollout.changed and device.assigned with ids, filtered by rollout', async () => {
    const created = await s.request('POST', '/api/v1/rollouts', {
      body: body({ target: { deviceIds: [fleet[5]] } }),
    });
    const id = created.body.id as string;
    const controller = new AbortController();
    const res = await fetch(`${s.base}/api/v1/events?rollout=${id}`, {
      headers: { authorization: `Bearer ${s.tokens.viewer}` },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');

    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    await s.request('POST', '/api/v1/rollouts', {
      body: body({ target: { deviceIds: [fleet[3]] } }),
    });
    await s.request('POST', `/api/v1/rollouts/${id}/start`);
    while (!text.includes('event: device.assigned')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    expect(text).toMatch(/id: \d+\nevent: rollout.changed\ndata: \{"rolloutId":"ro-/);
    expect(text).toContain(`"deviceId":"${fleet[5]}"`);
    const rollouts = [...text.matchAll(/"rolloutId":"(ro-[0-9a-f]+)"/g)].map((m) => m[1]);
    expect(new Set(rollouts)).toEqual(new Set([id]));
  });
});
