/**
 * One device of an end-to-end fleet: the real `Agent` with its own real MQTT connection, over
 * storage that outlives the agent (in-memory slots and state store, kept across reboots as a
 * real device keeps its disk). The installer moves the slot pointer; the reboot ends the running
 * agent and starts a new one on the same storage; the health check answers what the test says.
 */
import {
  Agent,
  type AgentLimits,
  type AgentState,
  type HealthCheck,
  type InstallContext,
  type Installer,
  MemorySlots,
  MemoryStateStore,
  MqttTransport,
  type Rebooter,
  STATE_DOCUMENT,
  withLimits,
} from '@fetchback/device-agent';
import { type AckRequest, fbError, fromHex, sha256, toHex } from '@fetchback/shared';

/** What the HTTP API returned when the device was registered. */
export interface FleetCredentials {
  readonly brokerUrl: string;
  readonly deviceId: string;
  readonly password: string;
  /** Hex. */
  readonly rootPublicKey: string;
  readonly hardwareClass: string;
}

/** Short timings, so that a stuck step fails the test in seconds rather than minutes. */
export const FLEET_LIMITS: AgentLimits = withLimits({
  chunkStallMs: 2_000,
  healthCheckTimeoutMs: 5_000,
  progressIntervalMs: 0,
  rebootFlushMs: 2_000,
  outbox: { retryAfterMs: 1_000, backoffBaseMs: 200, backoffCapMs: 2_000 },
});

/** Time from the reboot hook to the next agent start, in milliseconds. */
const BOOT_MS = 50;
const RECONNECT_PERIOD_MS = 500;

/** An A/B installer on the device's slots: the pointer moves; nothing else is needed. */
class PointerInstaller implements Installer {
  constructor(private readonly slots: MemorySlots) {}

  install(context: InstallContext): Promise<void> {
    return this.slots.setActive(context.targetSlot);
  }

  async markGood(_context: InstallContext): Promise<void> {}

  rollback(context: InstallContext): Promise<void> {
    return this.slots.setActive(context.previousSlot);
  }
}

export class FleetDevice {
  readonly id: string;
  readonly slots = new MemorySlots();
  readonly stateStore = new MemoryStateStore();
  /** What the health check of the next trial answers. */
  healthy = true;
  /** Every ACK the device's agents sent, by request id (a repeated step reuses its rid). */
  readonly acks = new Map<string, AckRequest>();
  /** Every assignment the device accepted, by sequence number: its rollout and version. */
  readonly jobs = new Map<number, { rollout: string; version: string }>();
  /** Agent starts: the first power-on plus one per reboot. */
  boots = 0;
  readonly faults: Error[] = [];
  private readonly creds: FleetCredentials;
  private readonly firmwareVersion: string;
  private agent: Agent | undefined;
  private transport: MqttTransport | undefined;
  private bootTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(creds: FleetCredentials, firmwareVersion: string) {
    this.creds = creds;
    this.id = creds.deviceId;
    this.firmwareVersion = firmwareVersion;
  }

  /** Powers the device on; resolves once its agent is connected and subscribed. */
  start(): Promise<void> {
    return this.boot();
  }

  /** Shuts the device down for good: the agent stops, its connection closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.bootTimer);
    const agent = this.agent;
    this.agent = undefined;
    await agent?.stop().catch(() => undefined);
    await this.transport?.close().catch(() => undefined);
  }

  /** The agent's persisted state, as the device would read it after a power cut. */
  async ownState(): Promise<AgentState> {
    const state = await this.stateStore.readJson<AgentState>(STATE_DOCUMENT);
    if (!state) throw new Error(`${this.id} has no persisted state`);
    return state;
  }

  /** True when a running agent rests (idle, committed, rolled back, failed) with nothing queued. */
  get resting(): boolean {
    const agent = this.agent;
    if (!agent) return false;
    const state = agent.state.state;
    const rests = ['idle', 'committed', 'rolled_back', 'failed'].includes(state);
    return rests && agent.outboxEntries.length === 0;
  }

  /** SHA-256 (hex) and length of the image in the slot the device boots. */
  async activeImage(): Promise<{ digest: string; sizeBytes: number }> {
    const image = this.slots.imageOf(await this.slots.active()) ?? new Uint8Array(0);
    return { digest: toHex(sha256(image)), sizeBytes: image.length };
  }

  /** Steps this device acknowledged for assignment `seq`, in the order it sent them. */
  stepsOf(seq: number): string[] {
    return [...this.acks.values()].filter((a) => a.seq === seq).map((a) => a.step);
  }

  /** Sequence number of the assignment of `version` that rollout `rolloutId` gave this device. */
  seqOf(rolloutId: string, version: string): number | undefined {
    for (const [seq, job] of this.jobs) {
      if (job.rollout === rolloutId && job.version === version) return seq;
    }
    return undefined;
  }

  private async boot(): Promise<void> {
    if (this.stopped) return;
    this.boots++;
    const transport = new MqttTransport({
      brokerUrl: this.creds.brokerUrl,
      clientId: this.id,
      username: this.id,
      password: this.creds.password,
      reconnectPeriodMs: RECONNECT_PERIOD_MS,
      connectTimeoutMs: 5_000,
    });
    const agent = new Agent({
      deviceId: this.id,
      hardwareClass: this.creds.hardwareClass,
      rootPublicKey: fromHex(this.creds.rootPublicKey),
      currentVersion: this.firmwareVersion,
      transport,
      stateStore: this.stateStore,
      slots: this.slots,
      installer: new PointerInstaller(this.slots),
      rebooter: this.rebooter(),
      healthCheck: this.healthCheck(),
      limits: FLEET_LIMITS,
    });
    agent.on('ack', (ack) => this.acks.set(ack.rid, ack));
    agent.on('transition', ({ state: { job } }) => {
      if (job) this.jobs.set(job.seq, { rollout: job.rollout, version: job.release.version });
    });
    agent.on('fault', (err) => this.faults.push(err));
    this.agent = agent;
    this.transport = transport;
    await agent.start();
  }

  /**
   * The reboot hook: the running agent has halted; its connection goes down as the device
   * powers off, and a new agent starts on the same storage once the device is back.
   */
  private rebooter(): Rebooter {
    return {
      reboot: async () => {
        const transport = this.transport;
        this.agent = undefined;
        this.transport = undefined;
        await transport?.close().catch(() => undefined);
        if (this.stopped) return;
        this.bootTimer = setTimeout(() => {
          this.boot().catch((err: Error) => this.faults.push(err));
        }, BOOT_MS);
      },
    };
  }

  private healthCheck(): HealthCheck {
    return {
      check: async () => {
        if (!this.healthy) {
          throw fbError('FB_ERR_HEALTH_CHECK_FAILED', 'test: the application did not start');
        }
      },
    };
  }
}
