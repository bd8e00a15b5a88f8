/**
 * One virtual device: its durable storage (state store and A/B slots, kept across crashes and
 * reboots as a real device keeps its disk) and the incarnations of the real `Agent` that run on
 * it, each with its own MQTT connection. A crash, a reboot or a vanishing device ends an
 * incarnation without the agent's cooperation; a new incarnation starts on the same storage.
 */
import { EventEmitter } from 'node:events';

import {
  Agent,
  type AgentLimits,
  type InstallContext,
  MqttTransport,
  type SlotStorage,
  type StateStore,
  systemClock,
} from '@fetchback/device-agent';
import { type AckRequest, type AckStep, chunkCount, decodeManifest } from '@fetchback/shared';
import type { Logger } from 'pino';

import { FaultyTransport } from '../faults/faulty-transport.js';
import { breakLink, killLink } from '../faults/link-breaker.js';
import type { DevicePlan } from '../faults/plan.js';
import { deviceSeed, seededRandom } from '../faults/random.js';
import { SlowSlots } from '../faults/slow-slots.js';
import { SimHealthCheck, SimInstaller, SimRebooter, skewedClock } from './sim-hooks.js';

export interface DeviceIdentity {
  readonly id: string;
  /** MQTT password (the device secret); the username and client id are the device id. */
  readonly password: string;
  readonly hardwareClass: string;
}

/** What every device of a fleet shares. */
export interface DeviceEnvironment {
  readonly brokerUrl: string;
  readonly rootPublicKey: Uint8Array;
  readonly topicPrefix: string;
  /** Firmware version on first start. */
  readonly firmwareVersion: string;
  readonly limits: AgentLimits;
  readonly seed: number;
  /** Time the simulated installer takes, in milliseconds. */
  readonly installMs: number;
  /** Time a passing health check takes, in milliseconds. */
  readonly healthCheckMs: number;
  /** Time from a reboot or crash to the next agent start, in milliseconds. */
  readonly bootMs: number;
  readonly reconnectPeriodMs: number;
  readonly logger?: Logger;
}

/** The device's own storage; created once, kept for the device's whole life. */
export interface DeviceStorage {
  readonly stateStore: StateStore;
  readonly slots: SlotStorage;
}

/** What the device shows of itself: the agent's lifecycle state, or where it is otherwise. */
export type DeviceState = 'offline' | 'booting' | 'vanished' | string;

/** The device's own record of one acknowledgement it sent. */
export interface DeviceAckRecord {
  readonly rid: string;
  readonly seq: number;
  readonly step: AckStep;
  readonly code: string;
}

export interface DeviceEvents {
  state: [{ from: DeviceState; to: DeviceState; code: string }];
  chunk: [{ bytes: number }];
  fault: [{ name: string }];
}

/** Longest wait for an agent's clean stop at the end of a run, in milliseconds. */
const STOP_TIMEOUT_MS = 5_000;

interface Incarnation {
  readonly agent: Agent;
  readonly mqtt: MqttTransport;
  readonly link: FaultyTransport;
}

export class VirtualDevice extends EventEmitter<DeviceEvents> {
  readonly identity: DeviceIdentity;
  readonly plan: DevicePlan;
  readonly storage: DeviceStorage;
  private readonly env: DeviceEnvironment;
  private readonly random: () => number;
  private current: Incarnation | undefined;
  private shown: DeviceState = 'offline';
  private gone = false;
  private stopping = false;
  private disconnectTimer: NodeJS.Timeout | undefined;
  private bootTimer: NodeJS.Timeout | undefined;
  /** Chunks of the current manifest's image, and how many arrived since it came. */
  private jobChunks = 0;
  private chunksSinceManifest = 0;
  private crashedInDownload = false;
  private crashedInInstall = false;
  /** ACKs the agent sent, by request id (a step repeated after a crash reuses its rid). */
  readonly acks = new Map<string, DeviceAckRecord>();
  /** Image size of the release last assigned to this device, in bytes. */
  imageBytes: number | undefined;
  boots = 0;
  crashes = 0;
  bytesIn = 0;
  corruptChunksRefused = 0;

  constructor(
    identity: DeviceIdentity,
    plan: DevicePlan,
    storage: DeviceStorage,
    env: DeviceEnvironment,
  ) {
    super();
    this.identity = identity;
    this.plan = plan;
    this.env = env;
    this.random = seededRandom(deviceSeed(env.seed, identity.id) ^ 0x5eed);
    this.storage = plan.slowFlash
      ? { ...storage, slots: new SlowSlots(storage.slots, this.random) }
      : storage;
  }

  get id(): string {
    return this.identity.id;
  }

  /** The lifecycle state, or offline / booting / vanished. */
  get state(): DeviceState {
    return this.shown;
  }

  get vanished(): boolean {
    return this.gone;
  }

  /** The firmware version the agent reports, once it started. */
  get version(): string | undefined {
    return this.current?.agent.version;
  }

  /** Outbox entries still waiting for their ACK_RESP. */
  get pendingReports(): number {
    return this.current?.agent.outboxEntries.length ?? 0;
  }

  /** First power-on. Resolves once connected (or after `timeoutMs`, still trying). */
  async start(timeoutMs = 30_000): Promise<void> {
    this.scheduleDisconnect();
    await this.boot(timeoutMs);
  }

  /** Shuts the device down cleanly (end of the run). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.disconnectTimer);
    clearTimeout(this.bootTimer);
    const current = this.current;
    this.current = undefined;
    if (!current || this.gone) return;
    // A clean stop waits for the agent's running step and the MQTT close; with the broker gone
    // or a step stuck either may never end, and one such device must not hold the whole
    // fleet's stop. Past the wait the device is cut off as a crash would.
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
    });
    const stopped = current.agent.stop().then(
      () => 'stopped' as const,
      () => 'stopped' as const,
    );
    const outcome = await Promise.race([stopped, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      current.agent.halt();
      current.link.kill();
      killLink(current.mqtt);
    }
  }

  private async boot(timeoutMs: number): Promise<void> {
    if (this.gone || this.stopping) return;
    this.boots++;
    this.show('booting', 'OK');
    const incarnation = this.incarnate();
    this.current = incarnation;
    const started = incarnation.agent.start();
    started.catch((err: Error) =>
      this.env.logger?.warn({ deviceId: this.id, err: err.message }, 'agent start failed'),
    );
    const timer = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([started.catch(() => undefined), timer]);
    if (this.current === incarnation && this.shown === 'booting') {
      this.show(incarnation.agent.state.state, 'OK');
    }
  }

  private incarnate(): Incarnation {
    const { identity, env, plan } = this;
    const mqtt = new MqttTransport({
      brokerUrl: env.brokerUrl,
      clientId: identity.id,
      username: identity.id,
      password: identity.password,
      reconnectPeriodMs: env.reconnectPeriodMs,
      keepaliveSeconds: 60,
    });
    const link = new FaultyTransport(mqtt, plan.link, this.random, {
      onChunk: (bytes) => this.onChunk(bytes),
      onManifest: (payload) => this.onManifest(payload),
      onFault: (name) => this.emit('fault', { name }),
    });
    const agent = new Agent({
      deviceId: identity.id,
      hardwareClass: identity.hardwareClass,
      rootPublicKey: env.rootPublicKey,
      currentVersion: env.firmwareVersion,
      topicPrefix: env.topicPrefix,
      transport: link,
      stateStore: this.storage.stateStore,
      slots: this.storage.slots,
      installer: new SimInstaller(this.storage.slots, env.installMs, (context) =>
        this.maybeCrashInInstall(context),
      ),
      rebooter: new SimRebooter(() => this.restart('reboot')),
      healthCheck: new SimHealthCheck(plan.health, env.healthCheckMs),
      clock: skewedClock(systemClock, plan.clockSkewMs),
      random: this.random,
      limits: env.limits,
      agentName: 'fetchback-sim/0.1.0',
      ...(env.logger ? { logger: env.logger } : {}),
    });
    agent.on('transition', (t) => this.show(t.to, t.code));
    agent.on('ack', (ack) => this.recordAck(ack));
    agent.on('corruptChunk', () => this.corruptChunksRefused++);
    return { agent, mqtt, link };
  }

  private show(to: DeviceState, code: string): void {
    const from = this.shown;
    if (from === to && to !== 'trial') return;
    this.shown = to;
    this.emit('state', { from, to, code });
  }

  private recordAck(ack: AckRequest): void {
    this.acks.set(ack.rid, { rid: ack.rid, seq: ack.seq, step: ack.step, code: ack.code });
  }

  private onManifest(payload: Uint8Array): void {
    try {
      const body = decodeManifest(payload).rel.body;
      this.jobChunks = chunkCount(body.size, body.cbytes);
      this.imageBytes = body.size;
      this.chunksSinceManifest = 0;
    } catch {
      // The agent refuses it and reports why; nothing for the fault plan to time.
    }
  }

  private onChunk(bytes: number): void {
    this.bytesIn += bytes;
    this.chunksSinceManifest++;
    this.emit('chunk', { bytes });
    if (this.shown !== 'downloading' || this.jobChunks === 0) return;
    const share = this.chunksSinceManifest / this.jobChunks;
    const { vanishAt, crashDownloadAt } = this.plan;
    if (vanishAt !== undefined && share >= vanishAt) return this.vanish();
    if (crashDownloadAt !== undefined && !this.crashedInDownload && share >= crashDownloadAt) {
      this.crashedInDownload = true;
      this.restart('crash-download');
    }
  }

  /**
   * The `crash-install` fault: half the time the pointer already moved when the power goes
   * (the installer is idempotent and runs again after the restart), half the time not.
   */
  private async maybeCrashInInstall(context: InstallContext): Promise<void> {
    if (!this.plan.crashInstall || this.crashedInInstall) return;
    this.crashedInInstall = true;
    if (this.random() < 0.5) await this.storage.slots.setActive(context.targetSlot);
    this.restart('crash-install');
    throw new Error('simulated power loss inside the installer');
  }

  /** Ends the running incarnation at once and boots a new one after `bootMs`. */
  private restart(reason: 'reboot' | 'crash-download' | 'crash-install'): void {
    if (reason !== 'reboot') {
      this.crashes++;
      this.emit('fault', { name: reason });
    }
    this.endIncarnation();
    this.show('offline', 'OK');
    const bootMs = this.env.bootMs * (0.5 + this.random());
    this.bootTimer = setTimeout(() => void this.boot(30_000), bootMs);
  }

  /** The `vanish` fault: the device is gone for good, mid-update. */
  private vanish(): void {
    this.gone = true;
    clearTimeout(this.disconnectTimer);
    this.emit('fault', { name: 'vanish' });
    this.endIncarnation();
    this.show('vanished', 'OK');
  }

  private endIncarnation(): void {
    const current = this.current;
    this.current = undefined;
    if (!current) return;
    current.agent.halt();
    current.link.kill();
    killLink(current.mqtt);
  }

  /** The `disconnect` fault: link breaks as a Poisson process of `disconnectsPerS`. */
  private scheduleDisconnect(): void {
    const rate = this.plan.disconnectsPerS;
    if (rate <= 0 || this.gone || this.stopping) return;
    const waitMs = (-Math.log(1 - this.random()) / rate) * 1000;
    this.disconnectTimer = setTimeout(() => {
      const current = this.current;
      if (current?.mqtt.connected) {
        this.emit('fault', { name: 'disconnect' });
        breakLink(current.mqtt);
      }
      this.scheduleDisconnect();
    }, waitMs);
    this.disconnectTimer.unref();
  }
}
