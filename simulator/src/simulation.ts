/**
 * One simulator run, as the CLI, the demo, the tests and the benchmarks drive it: register (or
 * reuse) the devices, start the fleet, wait for the end of the run, stop, and report.
 *
 *     const sim = await Simulation.start(options);
 *     await sim.waitForEnd({ untilIdle: true, idleTimeoutMs: 30_000 });
 *     const report = await sim.finish();
 */
import { type AgentLimits, withLimits } from '@fetchback/device-agent';
import { FetchbackClient } from '@fetchback/update-server';
import type { Logger } from 'pino';

import { activeFaults, type FaultRates } from './faults/profiles.js';
import { type FleetCredentials, registerFleet } from './fleet/credentials.js';
import { Fleet, type StorageKind } from './fleet/fleet.js';
import type { FleetTracker } from './fleet/tracker.js';
import { ProgressLine } from './report/progress.js';
import { type FleetReport, buildReport } from './report/report.js';

export interface SimulationOptions {
  /** Base URL of the update server's HTTP API, e.g. `http://127.0.0.1:8080`. */
  readonly server: string;
  readonly token?: string;
  readonly devices: number;
  readonly hardwareClass: string;
  /** Device ids are `<prefix>-00001` …; the devices are tagged `fleet=<prefix>`. */
  readonly prefix: string;
  readonly rates: FaultRates;
  /** Where credentials (and `dir` storage) are kept between runs. */
  readonly stateDir: string;
  readonly storage: StorageKind;
  readonly seed: number;
  /** Broker URL to use instead of the one the server hands out at registration. */
  readonly brokerUrl?: string;
  /** Firmware version a device runs on its first start. */
  readonly firmwareVersion: string;
  /** The agent's limits (window, stall timeout, health-check timeout …). */
  readonly limits: AgentLimits;
  readonly installMs: number;
  readonly healthCheckMs: number;
  readonly bootMs: number;
  readonly reconnectPeriodMs: number;
  readonly startConcurrency: number;
  /** Interval of the update curve's samples, in milliseconds. */
  readonly sampleMs: number;
  /** Draw the progress line (default: when stderr is a TTY). */
  readonly progress?: boolean;
  readonly logger?: Logger;
}

/** Agent limits tuned for a simulated fleet: shorter waits than a real device's defaults. */
export const SIM_LIMITS: AgentLimits = withLimits({
  chunkStallMs: 3_000,
  healthCheckTimeoutMs: 3_000,
  rebootFlushMs: 1_000,
  progressIntervalMs: 5_000,
  outbox: { retryAfterMs: 2_000, backoffBaseMs: 500, backoffCapMs: 10_000 },
});

export const DEFAULT_SIMULATION: Omit<SimulationOptions, 'server' | 'devices' | 'rates'> = {
  hardwareClass: 'pi4',
  prefix: 'sim',
  stateDir: '.fetchback-sim',
  storage: 'memory',
  seed: 1,
  firmwareVersion: '1.0.0',
  limits: SIM_LIMITS,
  installMs: 50,
  healthCheckMs: 100,
  bootMs: 300,
  reconnectPeriodMs: 1_000,
  startConcurrency: 50,
  sampleMs: 500,
};

export interface EndCondition {
  /** Stop after this long at the latest, in milliseconds. */
  readonly durationMs?: number;
  /** Stop once every device that got an update has finished it and reported everything. */
  readonly untilIdle?: boolean;
  /** With `untilIdle`: also stop when no device changed state for this long. */
  readonly idleTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

export type EndReason = 'idle' | 'quiet' | 'duration' | 'aborted';

const RESTING = new Set(['idle', 'committed', 'rolled_back', 'failed']);

export class Simulation {
  readonly options: SimulationOptions;
  readonly client: FetchbackClient;
  readonly credentials: FleetCredentials;
  readonly fleet: Fleet;
  private readonly progress: ProgressLine;
  private sampler: NodeJS.Timeout | undefined;
  note = '';

  private constructor(
    options: SimulationOptions,
    client: FetchbackClient,
    credentials: FleetCredentials,
  ) {
    this.options = options;
    this.client = client;
    this.credentials = credentials;
    this.progress = new ProgressLine(
      process.stderr,
      options.progress ?? process.stderr.isTTY === true,
    );
    this.fleet = new Fleet({
      identities: credentials.identities,
      env: {
        brokerUrl: options.brokerUrl ?? credentials.brokerUrl,
        rootPublicKey: credentials.rootPublicKey,
        topicPrefix: credentials.topicPrefix,
        firmwareVersion: options.firmwareVersion,
        limits: options.limits,
        seed: options.seed,
        installMs: options.installMs,
        healthCheckMs: options.healthCheckMs,
        bootMs: options.bootMs,
        reconnectPeriodMs: options.reconnectPeriodMs,
        ...(options.logger ? { logger: options.logger } : {}),
      },
      rates: options.rates,
      storage: options.storage,
      storageDir: `${options.stateDir}/devices`,
      startConcurrency: options.startConcurrency,
    });
  }

  /** Registers (or reuses) the devices and starts them; resolves once all are connected. */
  static async start(options: SimulationOptions): Promise<Simulation> {
    const client = new FetchbackClient({ url: options.server, token: options.token });
    const credentials = await registerFleet({
      client,
      stateDir: options.stateDir,
      count: options.devices,
      prefix: options.prefix,
      hardwareClass: options.hardwareClass,
      tags: { fleet: options.prefix },
    });
    const simulation = new Simulation(options, client, credentials);
    simulation.startSampling();
    await simulation.fleet.start();
    return simulation;
  }

  get tracker(): FleetTracker {
    return this.fleet.tracker;
  }

  /** Resolves when the end condition holds. */
  waitForEnd(end: EndCondition): Promise<EndReason> {
    const startedMs = Date.now();
    return new Promise((resolve) => {
      const check = setInterval(() => {
        const reason = this.endReason(end, startedMs);
        if (!reason) return;
        clearInterval(check);
        resolve(reason);
      }, 200);
    });
  }

  /** True when every device that got an update finished it and has nothing left to report. */
  isIdle(): boolean {
    const live = this.fleet.devices.filter((d) => !d.vanished);
    return live.every(
      (d) => d.imageBytes !== undefined && RESTING.has(d.state) && d.pendingReports === 0,
    );
  }

  /** Stops the fleet and builds the report (with the server's view of the same devices). */
  async finish(): Promise<FleetReport> {
    this.tracker.sample();
    clearInterval(this.sampler);
    this.progress.update(this.tracker, this.options.devices, 'stopping');
    this.progress.done();
    await this.fleet.stop();
    const serverStates = await this.serverStates().catch(() => undefined);
    return buildReport({
      server: this.options.server,
      faults: activeFaults(this.options.rates),
      tracker: this.tracker,
      devices: this.fleet.devices,
      ...(serverStates ? { serverStates } : {}),
    });
  }

  /** Device states as the server's API shows them, counted over this fleet's devices. */
  async serverStates(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    const tags = { fleet: this.options.prefix };
    for (let offset = 0; ; offset += 1000) {
      const page = await this.client.listDevices({ tags, limit: 1000, offset });
      for (const device of page.items) {
        const state = device.state ?? 'unknown';
        counts[state] = (counts[state] ?? 0) + 1;
      }
      if (page.items.length < 1000) return counts;
    }
  }

  private endReason(end: EndCondition, startedMs: number): EndReason | undefined {
    if (end.signal?.aborted) return 'aborted';
    if (end.durationMs !== undefined && Date.now() - startedMs >= end.durationMs) return 'duration';
    if (!end.untilIdle) return undefined;
    if (this.isIdle()) return 'idle';
    const quietMs = Date.now() - this.tracker.lastChangeMs;
    if (end.idleTimeoutMs !== undefined && quietMs >= end.idleTimeoutMs) return 'quiet';
    return undefined;
  }

  private startSampling(): void {
    this.tracker.sample();
    this.sampler = setInterval(() => {
      this.tracker.sample();
      this.progress.update(this.tracker, this.options.devices, this.note);
    }, this.options.sampleMs);
  }
}
