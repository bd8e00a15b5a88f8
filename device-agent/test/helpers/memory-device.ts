/**
 * A device for lifecycle tests: the real `Agent` over the in-memory broker, memory slots and
 * state, an A/B installer, and a reboot hook that starts a fresh `Agent` on the same storage
 * (what a real reboot does to the process).
 */
import type { AckRequest, StatusReport } from '@fetchback/shared';

import type { MemoryBroker } from '../../src/index.js';
import {
  AbDirInstaller,
  Agent,
  type AgentLimits,
  type HealthCheck,
  MemorySlots,
  MemoryStateStore,
  type TransitionRecord,
  alwaysHealthy,
  withLimits,
} from '../../src/index.js';
import type { Responder } from './responder.js';

export const FAST_LIMITS: AgentLimits = withLimits({
  window: 4,
  chunkStallMs: 40,
  maxStallRetries: 2,
  busyBackoffBaseMs: 20,
  busyBackoffCapMs: 100,
  heldFlushChunks: 4,
  heldFlushMs: 20,
  healthCheckTimeoutMs: 200,
  progressIntervalMs: 0,
  rebootFlushMs: 200,
  outbox: { retryAfterMs: 50, backoffBaseMs: 20, backoffCapMs: 100 },
});

export class MemoryDevice {
  readonly store = new MemoryStateStore();
  readonly slots = new MemorySlots();
  readonly transitions: TransitionRecord[] = [];
  readonly acks: AckRequest[] = [];
  readonly statuses: StatusReport[] = [];
  readonly corrupt: number[] = [];
  readonly agents: Agent[] = [];
  healthCheck: HealthCheck = alwaysHealthy;
  private readonly broker: MemoryBroker;
  private readonly responder: Responder;
  private readonly limits: AgentLimits;
  readonly deviceId: string;
  private waiters: Array<() => void> = [];

  constructor(
    broker: MemoryBroker,
    responder: Responder,
    options: { deviceId?: string; limits?: AgentLimits } = {},
  ) {
    this.broker = broker;
    this.responder = responder;
    this.deviceId = options.deviceId ?? 'dev-1';
    this.limits = options.limits ?? FAST_LIMITS;
  }

  get agent(): Agent {
    const agent = this.agents[this.agents.length - 1];
    if (!agent) throw new Error('not booted');
    return agent;
  }

  /** The chain of states entered, across reboots. */
  get states(): string[] {
    return this.transitions.map((t) => t.to);
  }

  async boot(): Promise<Agent> {
    const agent = new Agent({
      deviceId: this.deviceId,
      hardwareClass: 'pi4',
      rootPublicKey: this.responder.root.publicKey,
      currentVersion: '1.0.0',
      transport: this.broker.client(this.deviceId),
      stateStore: this.store,
      slots: this.slots,
      installer: new AbDirInstaller(this.slots),
      rebooter: { reboot: async () => void setImmediate(() => void this.boot()) },
      healthCheck: { check: (c, s) => this.healthCheck.check(c, s) },
      limits: this.limits,
    });
    agent.on('transition', (t) => this.record(() => this.transitions.push(t)));
    agent.on('ack', (a) => this.record(() => this.acks.push(a)));
    agent.on('status', (s) => this.record(() => this.statuses.push(s)));
    agent.on('corruptChunk', ({ index }) => this.corrupt.push(index));
    this.agents.push(agent);
    await agent.start();
    return agent;
  }

  /** Resolves once the device has entered `state` (`count` times), or rejects after a while. */
  waitForState(state: string, count = 1, timeoutMs = 5000): Promise<void> {
    const seen = () => this.states.filter((s) => s === state).length >= count;
    return new Promise((resolve, reject) => {
      if (seen()) return resolve();
      const timer = setTimeout(
        () =>
          reject(new Error(`no ${state} after ${timeoutMs} ms; states ${this.states.join(' ')}`)),
        timeoutMs,
      );
      const check = () => {
        if (!seen()) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve();
      };
      this.waiters.push(check);
    });
  }

  /** Resolves when every ACK and STATUS the device sent has been answered. */
  async settled(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.agent.outboxEntries.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async stop(): Promise<void> {
    for (const agent of this.agents) await agent.stop();
  }

  private record(push: () => void): void {
    push();
    [...this.waiters].forEach((w) => w());
  }
}

export function randomImage(bytes: number, seed = 1): Uint8Array {
  const image = new Uint8Array(bytes);
  let x = seed;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    image[i] = x >> 16;
  }
  return image;
}
