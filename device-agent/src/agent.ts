/**
 * The Fetchback device agent: wires the transport, the durable state, the outbox and the
 * lifecycle machine, and drives the lifecycle from one state to the next. Every dependency with
 * a side effect is injected, so the CLI, the tests and the simulator run the same code.
 *
 *     const agent = new Agent(deps);
 *     agent.on('transition', (t) => console.log(t.from, '->', t.to));
 *     await agent.start(); // resolves once connected and subscribed
 */
import { EventEmitter } from 'node:events';

import {
  type AckRequest,
  type AckResponse,
  type FetchRequest,
  ManifestVerifier,
  type StatusReport,
  Topics,
  decodeAckResponse,
  fbError,
  decodeFetchResponse,
  encodeFetchRequest,
  encodePresence,
} from '@fetchback/shared';
import { type Logger, pino } from 'pino';

import { type Clock, type Random, systemClock } from './clock.js';
import type { DownloadContext } from './download/download-context.js';
import { downloadImage } from './download/download-step.js';
import type { ObjectFetcher } from './download/object-fetcher.js';
import { READ_BACK_PIECE_BYTES, ReadBack } from './download/read-back.js';
import { verifyImage } from './download/verify-image.js';
import type { HealthCheck } from './install/health-check.js';
import type { Installer } from './install/installer.js';
import type { Rebooter } from './install/rebooter.js';
import {
  type AgentState,
  type Job,
  STATE_DOCUMENT,
  initialState,
} from './lifecycle/agent-state.js';
import {
  type InstallStepContext,
  installStep,
  settleStep,
  trialStep,
} from './lifecycle/install-steps.js';
import { checkManifest, isAlreadyAccepted, readManifest } from './lifecycle/intake.js';
import {
  Machine,
  type Outcome,
  type TransitionRecord,
  runningVersion,
} from './lifecycle/machine.js';
import { Reporter } from './lifecycle/reporter.js';
import { type LifecycleState, isResting } from './lifecycle/transitions.js';
import { loadOrCreateDeviceKey } from './device-key.js';
import { type AgentLimits, DEFAULT_LIMITS } from './limits.js';
import { Outbox, type OutboxEntry } from './outbox/outbox.js';
import type { SlotId, SlotStorage } from './storage/slot-storage.js';
import type { StateStore } from './storage/state-store.js';
import type { Transport } from './transport/transport.js';

export interface AgentDeps {
  readonly deviceId: string;
  readonly hardwareClass: string;
  /** The pinned root public key (32 bytes). */
  readonly rootPublicKey: Uint8Array;
  /** Firmware version running when the state store has none yet (first start). */
  readonly currentVersion: string;
  readonly topicPrefix?: string;
  readonly transport: Transport;
  readonly stateStore: StateStore;
  readonly slots: SlotStorage;
  readonly installer: Installer;
  readonly rebooter: Rebooter;
  readonly healthCheck: HealthCheck;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly limits?: AgentLimits;
  readonly logger?: Logger;
  /** Runs on entering each state, after it is persisted and reported (state scripts). */
  readonly stateHook?: (state: LifecycleState, job: Job | undefined) => Promise<void>;
  /** Sent in PRESENCE, e.g. `fetchback-agent/0.1.0`. */
  readonly agentName?: string;
}

/** Events an `Agent` emits, for the CLI's logs, tests and the simulator's progress. */
export interface AgentEvents {
  transition: [TransitionRecord];
  ack: [AckRequest];
  status: [StatusReport];
  ackResponse: [AckResponse];
  progress: [{ held: number; total: number }];
  corruptChunk: [{ index: number }];
  connected: [];
  disconnected: [];
  /** The reboot hook is about to run; this agent acts no more. */
  reboot: [];
  /** An unexpected error in the drive loop (the agent stays up). */
  fault: [Error];
}

export class Agent extends EventEmitter<AgentEvents> {
  private readonly deps: AgentDeps;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly limits: AgentLimits;
  private readonly log: Logger;
  private readonly topics: Topics;
  private readonly verifier: ManifestVerifier;
  private readonly outbox: Outbox;
  private readonly reporter: Reporter;
  private machine: Machine | undefined;
  private fetcher: ObjectFetcher | undefined;
  /** The read-back a download started, for the verifying step of the same job to finish. */
  private readBack: { seq: number; slot: SlotId; readBack: ReadBack } | undefined;
  private pendingManifest: Uint8Array | undefined;
  private driving: Promise<void> | undefined;
  private step: AbortController | undefined;
  private deadlineTimer: unknown;
  private deadlineFor: number | undefined;
  private fetchRid: number;
  private lastProgressMs = 0;
  private entered: TransitionRecord | undefined;
  private stopped = false;

  constructor(deps: AgentDeps) {
    super();
    this.deps = deps;
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? Math.random;
    this.limits = deps.limits ?? DEFAULT_LIMITS;
    this.log = (deps.logger ?? pino({ level: 'silent' })).child({ deviceId: deps.deviceId });
    this.topics = new Topics(deps.topicPrefix);
    this.verifier = new ManifestVerifier({
      rootPublicKey: deps.rootPublicKey,
      deviceId: deps.deviceId,
      hardwareClass: deps.hardwareClass,
      maxImageBytes: this.limits.maxImageBytes,
      now: () => this.clock.now(),
    });
    this.outbox = new Outbox({
      store: deps.stateStore,
      clock: this.clock,
      random: this.random,
      send: (entry) => this.sendOutboxEntry(entry),
      ...this.limits.outbox,
    });
    const runId = Math.floor(this.random() * 2 ** 32).toString(16);
    this.reporter = new Reporter(this.outbox, this.clock, runId, (kind, message) => {
      if (kind === 'ack') this.emit('ack', message as AckRequest);
      else this.emit('status', message as StatusReport);
    });
    this.fetchRid = Math.floor(this.random() * 2 ** 20);
  }

  /** The persisted state (lifecycle state, trust, firmware version, job). */
  get state(): AgentState {
    if (!this.machine) throw new Error('agent not started');
    return this.machine.state;
  }

  /** The firmware version running now. */
  get version(): string {
    return runningVersion(this.state);
  }

  /** Entries waiting in the outbox for their ACK_RESP. */
  get outboxEntries(): readonly OutboxEntry[] {
    return this.outbox.entries;
  }

  /**
   * Loads the persisted state, counts a boot when it finds itself rebooting or on trial,
   * starts the lifecycle, then connects. Resolves once connected and subscribed.
   */
  async start(): Promise<void> {
    this.reporter.signWith(await loadOrCreateDeviceKey(this.deps.stateStore, this.log));
    const stored = await this.deps.stateStore.readJson<AgentState>(STATE_DOCUMENT);
    await this.outbox.load();
    this.machine = new Machine(
      stored ?? initialState(this.deps.currentVersion),
      this.deps.stateStore,
      this.reporter,
      (record) => this.onTransition(record),
    );
    this.log.info({ state: this.machine.state.state, version: this.version }, 'agent starts');
    await this.countBoot();
    this.kick();
    await this.connect();
  }

  /** Stops cleanly: no more actions, presence offline, connection closed. State stays on disk. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.halt();
    this.publishPresence(false);
    await this.outbox.stop();
    await this.driving?.catch(() => undefined);
    await this.deps.transport.close();
    await this.deps.slots.close();
  }

  /** Stops acting at once, as a crash would (no presence, no flush); for the simulator. */
  halt(): void {
    this.stopped = true;
    this.machine?.halt();
    this.step?.abort();
    this.clock.clearTimeout(this.deadlineTimer);
    void this.outbox.stop().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const transport = this.deps.transport;
    transport.onMessage((topic, payload) => this.onMessage(topic, payload));
    transport.onConnect(() => this.onConnected());
    transport.onDisconnect(() => this.onDisconnected());
    const will = {
      topic: this.topics.out(this.deps.deviceId, 'presence'),
      payload: this.presence(false),
      qos: 1 as const,
      retain: true,
    };
    await transport.connect({ will });
    await transport.subscribe(this.topics.deviceInFilter(this.deps.deviceId), 1);
  }

  private onConnected(): void {
    this.publishPresence(true);
    this.outbox.connected();
    this.fetcher?.connected();
    this.emit('connected');
  }

  private onDisconnected(): void {
    this.outbox.disconnected();
    this.fetcher?.disconnected();
    this.emit('disconnected');
  }

  // Runs in the transport's receive path: never awaits a publish (see transport.ts).
  private onMessage(topic: string, payload: Uint8Array): void {
    const parsed = this.topics.parse(topic);
    if (!parsed || parsed.direction !== 'in' || parsed.deviceId !== this.deps.deviceId) return;
    try {
      if (parsed.leaf === 'chunk') this.fetcher?.onResponse(decodeFetchResponse(payload));
      else if (parsed.leaf === 'ack') this.onAckResponse(decodeAckResponse(payload));
      else if (parsed.leaf === 'manifest' && payload.length > 0) this.onManifest(payload);
    } catch (err) {
      this.log.debug({ topic, err: (err as Error).message }, 'message dropped');
    }
  }

  private onAckResponse(response: AckResponse): void {
    if (!response.ok) this.log.warn({ rid: response.rid, code: response.code }, 'ack refused');
    this.emit('ackResponse', response);
    void this.outbox.answer(response).catch((err) => this.fault(err));
  }

  private onManifest(payload: Uint8Array): void {
    if (!this.machine || this.machine.isHalted) return;
    if (isAlreadyAccepted(readManifest(payload), this.machine.state)) return;
    this.pendingManifest = payload;
    this.kick();
  }

  private kick(): void {
    if (this.driving || this.stopped) return;
    this.driving = this.drive()
      .catch((err) => this.fault(err))
      .finally(() => {
        this.driving = undefined;
        if (this.pendingManifest && isResting(this.state.state)) this.kick();
      });
  }

  /** Runs steps until the lifecycle rests with no manifest waiting, or the agent halts. */
  private async drive(): Promise<void> {
    const machine = this.machine as Machine;
    while (!machine.isHalted) {
      const state = machine.state.state;
      if (isResting(state)) {
        await this.settle();
        const manifest = this.pendingManifest;
        this.pendingManifest = undefined;
        if (!manifest) return;
        await this.intake(manifest);
        continue;
      }
      const outcome = await this.runStep(state);
      if (!outcome) return;
      await this.fire(outcome);
    }
  }

  private async intake(bytes: Uint8Array): Promise<void> {
    const machine = this.machine as Machine;
    const read = readManifest(bytes);
    if (isAlreadyAccepted(read, machine.state)) return;
    await this.fire({ event: 'manifest' });
    const activeSlot = await this.deps.slots.active();
    const outcome = checkManifest(read, {
      verifier: this.verifier,
      state: machine.state,
      activeSlot,
    });
    if (outcome.event === 'accepted') {
      await this.deps.stateStore.removePrefix('held-');
      await this.deps.stateStore.removePrefix('ctab-');
    }
    await this.fire(outcome);
  }

  private async runStep(state: LifecycleState): Promise<Outcome | undefined> {
    this.step = new AbortController();
    switch (state) {
      case 'downloading':
        return downloadImage(this.downloadContext(this.step.signal, this.startReadBack()));
      case 'verifying':
        return verifyImage(this.downloadContext(this.step.signal, this.takeReadBack()));
      case 'downloaded':
        return { event: 'install' };
      case 'installing':
        return installStep(this.installContext(this.step.signal));
      case 'rebooting':
        await this.reboot();
        return undefined;
      case 'trial':
        return trialStep(this.installContext(this.step.signal));
      default:
        return undefined;
    }
  }

  /** On start in `rebooting` or `trial`: one more boot, persisted before the health check. */
  private async countBoot(): Promise<void> {
    const machine = this.machine as Machine;
    const { state, job } = machine.state;
    if ((state !== 'rebooting' && state !== 'trial') || !job) return;
    await this.fire({ event: 'booted', jobChanges: { bootCount: job.bootCount + 1 } });
  }

  private async reboot(): Promise<void> {
    await this.outbox.drained(this.limits.rebootFlushMs);
    if (this.stopped) return;
    this.log.info({}, 'rebooting');
    this.emit('reboot');
    this.halt();
    await this.deps.rebooter.reboot();
  }

  /** Completes a resting state's action (mark good, roll back) once, even after a crash. */
  private async settle(): Promise<void> {
    const machine = this.machine as Machine;
    const { state, job } = machine.state;
    if (!job || job.settled || (state !== 'committed' && state !== 'rolled_back')) return;
    await settleStep(state, this.installContext(new AbortController().signal));
    await machine.update({ settled: true });
  }

  private onTransition(record: TransitionRecord): void {
    const { from, to, event, code } = record;
    this.log.info({ from, to, event, code, seq: record.state.job?.seq }, 'state transition');
    this.emit('transition', record);
    this.armDeadline(record.state);
    this.entered = record;
  }

  /** Fires a transition, then runs the state hook of the state entered, if any. */
  private async fire(outcome: Outcome): Promise<void> {
    this.entered = undefined;
    await (this.machine as Machine).fire(outcome);
    const entered = this.entered as TransitionRecord | undefined;
    if (entered && this.deps.stateHook && !this.stopped) {
      await this.deps.stateHook(entered.to, entered.state.job);
    }
  }

  /**
   * The acknowledgement deadline: when it passes during the download, the download fails with
   * `FB_ERR_DEADLINE_MISSED`; later in the update, a STATUS with that code says so.
   */
  private armDeadline(state: AgentState): void {
    const job = state.job;
    const active = job?.ackByMs !== undefined && !isResting(state.state);
    if (!active || !job || this.deadlineFor === job.seq) {
      if (!active) this.clearDeadline();
      return;
    }
    this.clearDeadline();
    const delayMs = Math.max(0, (job.ackByMs as number) - this.clock.now());
    if (delayMs > 2 ** 31 - 1) return;
    this.deadlineFor = job.seq;
    this.deadlineTimer = this.clock.setTimeout(() => this.onDeadline(job.seq), delayMs);
  }

  private clearDeadline(): void {
    this.clock.clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.deadlineFor = undefined;
  }

  private onDeadline(seq: number): void {
    const { state, job } = this.state;
    if (!job || job.seq !== seq || isResting(state) || this.stopped) return;
    const error = fbError(
      'FB_ERR_DEADLINE_MISSED',
      `deadline ${new Date(job.ackByMs ?? 0).toISOString()}`,
    );
    this.log.warn({ seq, state }, 'acknowledgement deadline passed');
    if (state === 'downloading') {
      this.step?.abort(error);
      return;
    }
    const fields = { code: error.code, detail: error.message };
    void this.reporter.status(state, job, this.version, fields).catch((err) => this.fault(err));
  }

  /** A fresh read-back of the job's target slot, kept for its verifying step. */
  private startReadBack(): ReadBack {
    const job = this.state.job as Job;
    const readBack = new ReadBack({
      slots: this.deps.slots,
      slot: job.targetSlot,
      sizeBytes: job.release.sizeBytes,
      pieceBytes: READ_BACK_PIECE_BYTES,
    });
    this.readBack = { seq: job.seq, slot: job.targetSlot, readBack };
    return readBack;
  }

  /** The read-back the download of this job started, once; none after a restart. */
  private takeReadBack(): ReadBack | undefined {
    const job = this.state.job as Job;
    const kept = this.readBack;
    this.readBack = undefined;
    return kept?.seq === job.seq && kept.slot === job.targetSlot ? kept.readBack : undefined;
  }

  private downloadContext(signal: AbortSignal, readBack?: ReadBack): DownloadContext {
    const job = this.state.job as Job;
    return {
      ...(readBack ? { readBack } : {}),
      job,
      store: this.deps.stateStore,
      slots: this.deps.slots,
      clock: this.clock,
      random: this.random,
      limits: this.limits,
      logger: this.log,
      signal,
      send: (request) => this.sendFetch(request),
      nextRid: () => (this.fetchRid = (this.fetchRid + 1) % Number.MAX_SAFE_INTEGER),
      online: () => this.deps.transport.connected,
      attach: (fetcher) => (this.fetcher = fetcher),
      onProgress: (held, total) => this.onProgress(job, held, total),
      onCorrupt: (index) => {
        this.log.warn({ index }, 'corrupt chunk dropped');
        this.emit('corruptChunk', { index });
      },
    };
  }

  private installContext(signal: AbortSignal): InstallStepContext {
    return {
      job: this.state.job as Job,
      trust: this.state.trust,
      installer: this.deps.installer,
      healthCheck: this.deps.healthCheck,
      slots: this.deps.slots,
      clock: this.clock,
      logger: this.log,
      limits: this.limits,
      signal,
    };
  }

  private onProgress(job: Job, held: number, total: number): void {
    this.emit('progress', { held, total });
    const interval = this.limits.progressIntervalMs;
    const nowMs = this.clock.now();
    if (interval <= 0 || nowMs - this.lastProgressMs < interval || held === total) return;
    this.lastProgressMs = nowMs;
    const fields = { have: held, total };
    void this.reporter
      .status('downloading', job, this.version, fields)
      .catch((err) => this.fault(err));
  }

  private sendFetch(request: FetchRequest): void {
    const topic = this.topics.out(this.deps.deviceId, 'fetch');
    this.deps.transport.publish(topic, encodeFetchRequest(request), { qos: 0 });
  }

  private sendOutboxEntry(entry: OutboxEntry): void {
    const topic = this.topics.out(this.deps.deviceId, entry.kind === 'ack' ? 'ack' : 'status');
    this.deps.transport.publish(topic, entry.payload, { qos: 1 });
  }

  private presence(online: boolean): Uint8Array {
    const version = this.machine ? this.version : this.deps.currentVersion;
    return encodePresence({
      online,
      at: this.clock.now(),
      ver: version,
      ...(this.deps.agentName ? { agent: this.deps.agentName } : {}),
    });
  }

  private publishPresence(online: boolean): void {
    const topic = this.topics.out(this.deps.deviceId, 'presence');
    this.deps.transport.publish(topic, this.presence(online), { qos: 1, retain: true });
  }

  private fault(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.log.error({ err: error.message }, 'agent fault');
    this.emit('fault', error);
  }
}
