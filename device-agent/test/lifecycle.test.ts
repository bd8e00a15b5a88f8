/**
 * The lifecycle table, scenario by scenario: the exact chain of states, of ACK steps and of
 * STATUS reports, over the in-memory transport with a responder playing the server.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { fbError, toHex } from '@fetchback/shared';

import { MemoryBroker, TRANSITIONS, transitionFor } from '../src/index.js';
import { FAST_LIMITS, MemoryDevice, randomImage } from './helpers/memory-device.js';
import { Responder } from './helpers/responder.js';

const HAPPY = [
  'checking',
  'downloading',
  'verifying',
  'downloaded',
  'installing',
  'rebooting',
  'trial',
  'committed',
];

let broker: MemoryBroker;
let responder: Responder;
let device: MemoryDevice;

beforeEach(async () => {
  broker = new MemoryBroker();
  responder = new Responder({
    publish: (topic, payload, retain) => broker.publish(topic, payload, { retain }),
    subscribe: (filter, handler) => void broker.subscribe(filter, handler),
  });
  device = new MemoryDevice(broker, responder);
});

afterEach(async () => {
  await device.stop();
});

const steps = () => device.acks.map((a) => `${a.step}:${a.code}`);
const reported = () => device.statuses.map((s) => (s.code ? `${s.state}:${s.code}` : s.state));

async function assignAndWait(
  options: Parameters<Responder['manifest']>[1],
  release = responder.release('1.1.0', randomImage(10_000)),
  finalState = 'committed',
) {
  await device.boot();
  responder.assign('dev-1', responder.manifest(release, options));
  await device.waitForState(finalState);
  await device.settled();
  return release;
}

describe('the transition table', () => {
  it('has at most one transition per state and event', () => {
    for (const t of TRANSITIONS) {
      for (const from of t.from) expect(transitionFor(from, t.event)).toBe(t);
    }
  });
});

describe('happy path', () => {
  it('walks checking to committed, acknowledging downloaded, installed and committed', async () => {
    const release = await assignAndWait({ seq: 1 });

    expect(device.states).toEqual(HAPPY);
    expect(reported()).toEqual(HAPPY);
    expect(steps()).toEqual(['downloaded:OK', 'installed:OK', 'committed:OK']);
    expect(device.agent.version).toBe('1.1.0');
    expect(await device.slots.active()).toBe('b');
    expect(device.slots.imageOf('b')).toEqual(release.image);
    expect(device.agent.state.trust).toMatchObject({ lastSequence: 1, securityVersion: 1 });
  });

  it('acknowledges to the server exactly the steps the device took, once each', async () => {
    await assignAndWait({ seq: 1 });
    expect(responder.acks.map((a) => a.step)).toEqual(['downloaded', 'installed', 'committed']);
    expect(responder.statuses.map((s) => s.state)).toEqual(HAPPY);
  });

  it('fetches every chunk exactly once when nothing goes wrong', async () => {
    const release = await assignAndWait({ seq: 1 });
    expect(responder.requestedFor(release)).toEqual([...Array(10).keys()]);
  });

  it('ignores the retained manifest it already accepted when it arrives again', async () => {
    const release = await assignAndWait({ seq: 1 });
    responder.assign('dev-1', responder.manifest(release, { seq: 1 }));
    await new Promise((r) => setTimeout(r, 50));
    expect(device.states).toEqual(HAPPY);
  });
});

describe('trust first: refused manifests', () => {
  const refusedChain = async (
    code: string,
    options: Parameters<Responder['manifest']>[1],
    release?: ReturnType<Responder['release']>,
  ) => {
    await device.boot();
    const rel = release ?? responder.release('1.1.0', randomImage(4096));
    responder.assign('dev-1', responder.manifest(rel, options));
    await device.waitForState('idle');
    await device.settled();
    expect(device.states).toEqual(['checking', 'idle']);
    expect(reported()).toEqual(['checking', `idle:${code}`]);
    expect(steps()).toEqual([`rejected:${code}`]);
    expect(device.acks[0]?.seq).toBe(options.seq);
    expect(responder.totalRequested).toBe(0);
    expect(device.agent.version).toBe('1.0.0');
    expect(await device.slots.active()).toBe('a');
  };

  it('rejects a manifest whose assignment signature does not verify', async () => {
    await refusedChain('FB_ERR_ASSIGNMENT_SIGNATURE', { seq: 1, tamperAssignmentSignature: true });
  });

  it('rejects an expired manifest', async () => {
    await refusedChain('FB_ERR_MANIFEST_EXPIRED', { seq: 1, expSeconds: 1000 });
  });

  it('rejects a manifest whose sequence number went down', async () => {
    await device.store.writeJson('state', {
      format: 1,
      state: 'idle',
      firmwareVersion: '1.0.0',
      trust: { lastSequence: 5, securityVersion: 0 },
    });
    await refusedChain('FB_ERR_SEQUENCE_REPLAY', { seq: 3 });
  });

  it('rejects a release for another hardware class', async () => {
    const release = responder.release('1.1.0', randomImage(4096), { hw: 'pi3' });
    await refusedChain('FB_ERR_WRONG_HW_CLASS', { seq: 1 }, release);
  });

  it('reports an unreadable manifest with a STATUS only', async () => {
    await device.boot();
    responder.assign('dev-1', Uint8Array.of(0x61, 0x61));
    await device.waitForState('idle');
    await device.settled();
    expect(device.states).toEqual(['checking', 'idle']);
    expect(reported()).toEqual(['checking', 'idle:FB_ERR_MSG_NOT_MAP']);
    expect(device.acks).toEqual([]);
  });
});

describe('download faults', () => {
  it('refetches a corrupt chunk, counts it, and commits with the good copy', async () => {
    responder.faults.corrupt.set(3, 1);
    const release = await assignAndWait({ seq: 1 });

    expect(device.states).toEqual(HAPPY);
    expect(device.corrupt).toEqual([3]);
    expect(responder.requestedFor(release).filter((i) => i === 3)).toHaveLength(2);
    expect(device.slots.imageOf('b')).toEqual(release.image);
  });

  it('fails with FB_ERR_STALLED after the stall retries, never silently', async () => {
    responder.faults.dropImage = true;
    const release = await assignAndWait({ seq: 1 }, undefined, 'failed');

    expect(device.states).toEqual(['checking', 'downloading', 'failed']);
    expect(reported()).toEqual(['checking', 'downloading', 'failed:FB_ERR_STALLED']);
    expect(steps()).toEqual(['failed:FB_ERR_STALLED']);
    // The first request plus one re-request per allowed stall, for the window of chunks.
    const window = FAST_LIMITS.window;
    expect(responder.requestedFor(release)).toHaveLength(
      window * (1 + FAST_LIMITS.maxStallRetries),
    );
    expect(device.agent.version).toBe('1.0.0');
  });

  it('backs off on FB_ERR_BUSY and then completes', async () => {
    responder.faults.busy = 2;
    await assignAndWait({ seq: 1 });
    expect(device.states).toEqual(HAPPY);
  });

  it('reports FB_ERR_DEADLINE_MISSED when the acknowledgement deadline passes mid-download', async () => {
    responder.faults.dropImage = true;
    const ackby = Math.floor(Date.now() / 1000) + 1;
    const slow = new MemoryDevice(broker, responder, {
      limits: { ...FAST_LIMITS, chunkStallMs: 5000 },
    });
    device = slow;
    await assignAndWait({ seq: 1, ackbySeconds: ackby }, undefined, 'failed');
    expect(steps()).toEqual(['failed:FB_ERR_DEADLINE_MISSED']);
  });
});

describe('trial', () => {
  it('rolls back with FB_ERR_HEALTH_CHECK_FAILED when the health check fails', async () => {
    device.healthCheck = {
      check: async () => {
        throw fbError('FB_ERR_HEALTH_CHECK_FAILED', 'exit 1');
      },
    };
    await assignAndWait({ seq: 1 }, undefined, 'rolled_back');

    const chain = [...HAPPY.slice(0, -1), 'rolled_back'];
    expect(device.states).toEqual(chain);
    expect(reported()).toEqual([...chain.slice(0, -1), 'rolled_back:FB_ERR_HEALTH_CHECK_FAILED']);
    expect(steps()).toEqual([
      'downloaded:OK',
      'installed:OK',
      'rolled_back:FB_ERR_HEALTH_CHECK_FAILED',
    ]);
    expect(device.agent.version).toBe('1.0.0');
    expect(await device.slots.active()).toBe('a');
    expect(device.agent.state.trust.securityVersion).toBe(0);
  });

  it('rolls back with FB_ERR_HEALTH_CHECK_TIMEOUT when the health check hangs', async () => {
    device.healthCheck = { check: () => new Promise(() => undefined) };
    await assignAndWait({ seq: 1 }, undefined, 'rolled_back');

    expect(steps()).toEqual([
      'downloaded:OK',
      'installed:OK',
      'rolled_back:FB_ERR_HEALTH_CHECK_TIMEOUT',
    ]);
    expect(await device.slots.active()).toBe('a');
  });

  it('rolls back with FB_ERR_BOOT_LOOP when trial starts more often than allowed', async () => {
    const release = responder.release('1.1.0', randomImage(2048));
    await device.store.writeJson('state', {
      format: 1,
      state: 'trial',
      firmwareVersion: '1.0.0',
      trust: { lastSequence: 1, securityVersion: 0, lastRel: 'x' },
      job: {
        seq: 1,
        rel: toHex(new Uint8Array(32)),
        rollout: 'ro-1',
        release: {
          name: 'fw',
          version: '1.1.0',
          securityVersion: 1,
          sizeBytes: 2048,
          chunkBytes: 1024,
          digest: toHex(release.body.digest),
          chunkTableDigest: toHex(release.body.ctab),
        },
        targetSlot: 'b',
        previousSlot: 'a',
        previousVersion: '1.0.0',
        bootCount: FAST_LIMITS.maxBootAttempts,
        repairs: 0,
      },
    });
    await device.slots.setActive('b');
    await device.boot();
    await device.waitForState('rolled_back');
    await device.settled();

    expect(device.states).toEqual(['trial', 'rolled_back']);
    expect(steps()).toEqual(['rolled_back:FB_ERR_BOOT_LOOP']);
    expect(await device.slots.active()).toBe('a');
  });
});

describe('the outbox', () => {
  it('resends an unanswered ACK with the same rid until the ACK_RESP arrives', async () => {
    responder.faults.dropAckResponses = 3;
    await assignAndWait({ seq: 1 });
    expect(responder.acks.map((a) => a.step)).toEqual(['downloaded', 'installed', 'committed']);
    expect(device.agent.outboxEntries).toEqual([]);
  });
});
