import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { FetchbackClient } from '../../src/cli/client.js';
import { RolloutClient } from '../../src/cli/rollout-client.js';
import { parseDuration, parseWaves, parseWindow } from '../../src/cli/rollout-flags.js';
import { createInput } from '../../src/cli/rollout.js';
import { watchRollout } from '../../src/cli/rollout-watch.js';
import { SseParser } from '../../src/cli/sse.js';
import { startRolloutServer } from './server-harness.js';
import type { RolloutServer } from './server-harness.js';

describe('rollout create flags', () => {
  it('reads waves as percentages or counts and refuses a mix of junk', () => {
    expect(parseWaves('10%,50%,100%')).toEqual([
      { percent: 10 },
      { percent: 50 },
      { percent: 100 },
    ]);
    expect(parseWaves('5, 20,100')).toEqual([{ count: 5 }, { count: 20 }, { count: 100 }]);
    expect(() => parseWaves('10%,abc')).toThrow(/--waves/);
    expect(() => parseWaves('0%')).toThrow(/--waves/);
  });

  it('reads durations with units and windows in UTC', () => {
    expect(parseDuration('soak')('30m')).toBe(1_800_000);
    expect(parseDuration('soak')('1.5h')).toBe(5_400_000);
    expect(parseDuration('soak')('250')).toBe(250);
    expect(() => parseDuration('soak')('soon')).toThrow(/"--soak" expected/);
    expect(parseWindow('22:00-04:00')).toEqual({ start: '22:00', end: '04:00' });
    expect(() => parseWindow('22-4')).toThrow(/--window/);
  });

  it('turns the flags into a create request, leaving unset ones to the server', () => {
    expect(
      createInput({
        release: 'rel-1',
        targetClass: 'pi4',
        tag: { site: 'lab' },
        waves: [{ percent: 10 }, { percent: 100 }],
        failureThreshold: 30,
        onFailure: 'abort',
        rollbackOnAbort: true,
      }),
    ).toEqual({
      releaseId: 'rel-1',
      target: { hwClass: 'pi4', tags: { site: 'lab' } },
      strategy: {
        waves: [{ percent: 10 }, { percent: 100 }],
        failureThreshold: { percent: 30, action: 'abort' },
        rollbackOnAbort: true,
      },
    });
  });
});

describe('server-sent event parser', () => {
  it('assembles events split across chunks, joins data lines and skips comments', () => {
    const p = new SseParser();
    expect(p.push(': hello\n\nid: 1\nevent: rollout.chan')).toEqual([]);
    expect(p.push('ged\ndata: {"a":1}\r\ndata: x\n\nid: 2\ndata: y\n')).toEqual([
      { id: '1', event: 'rollout.changed', data: '{"a":1}\nx' },
    ]);
    expect(p.push('\n')).toEqual([{ id: '2', event: 'message', data: 'y' }]);
  });
});

describe('rollout client and watch against a real server', () => {
  let s: RolloutServer;
  let client: RolloutClient;
  const fleet = Array.from({ length: 5 }, (_, i) => `cli-dev-${i}`);

  beforeAll(async () => {
    s = await startRolloutServer();
    s.addDevices(fleet);
    client = new RolloutClient(
      new FetchbackClient({ url: s.base, token: s.tokens.operator }),
      s.tokens.operator,
    );
  });

  afterAll(async () => {
    await s?.close();
  });

  /** Plays every assigned device through to committed, as agents would report. */
  function commitAssigned(): void {
    const rows = s.server.ctx.db
      .prepare("SELECT device_id, assigned_seq FROM rollout_devices WHERE state = 'assigned'")
      .all() as { device_id: string; assigned_seq: number }[];
    for (const r of rows) {
      s.server.ctx.events.emit('device.ack', {
        deviceId: r.device_id,
        seq: r.assigned_seq,
        step: 'committed',
        code: 'OK',
        releaseId: null,
        rolloutId: null,
        at: Date.now(),
      });
    }
  }

  it('watches a three-wave rollout to completion, a line per change without a TTY', async () => {
    const release = await s.addRelease('3.0.0');
    const created = await client.create(
      createInput({ release, waves: parseWaves('20%,60%,100%') }),
    );
    await client.act(created.id, 'start');
    const lines: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    const driver = setInterval(commitAssigned, 100);
    try {
      const final = await watchRollout(client, created.id, { tty: false });
      expect(final.state).toBe('completed');
      expect(final.counts.committed).toBe(5);
      expect(final.waves.map((w) => w.size)).toEqual([1, 2, 2]);
    } finally {
      clearInterval(driver);
      write.mockRestore();
    }
    expect(lines[0]).toMatch(/running, wave 1\/3/);
    // A line only when the summary changed (how many depends on how fast the waves go here).
    expect(lines.every((line, i) => i === 0 || line !== lines[i - 1])).toBe(true);
    expect(lines[lines.length - 1]).toMatch(/completed, wave 3\/3, 5\/5 committed/);

    const page = await client.list({ state: 'completed' });
    expect(page.items.map((r) => r.id)).toContain(created.id);
    const devices = await client.devices(created.id);
    expect(devices.items.every((d) => d.state === 'committed')).toBe(true);
  });

  it('turns a refused event stream into the server code', async () => {
    const anonymous = new RolloutClient(new FetchbackClient({ url: s.base }), undefined);
    await expect(anonymous.events().next()).rejects.toMatchObject({ code: 'FB_ERR_UNAUTHORIZED' });
  });
});
