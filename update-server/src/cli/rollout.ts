/**
 * `fetchback rollout create|start|pause|resume|abort|status|list`: the operator's rollout
 * commands, each with `--json`.
 */
import { readFileSync } from 'node:fs';

import type { Command } from 'commander';

import { action, cliConfigPath, clientFor, globalsOf, isJson, print, table } from './common.js';
import { RolloutClient } from './rollout-client.js';
import type { Rollout, RolloutAction, RolloutCreateInput } from './rollout-client.js';
import {
  collectTag,
  parseCount,
  parseDuration,
  parsePercent,
  parseWaves,
  parseWindow,
} from './rollout-flags.js';
import { summaryLine, watchRollout } from './rollout-watch.js';

interface CreateFlags {
  release: string;
  name?: string;
  targetClass?: string;
  device?: string[];
  tag?: Record<string, string>;
  currentVersion?: string;
  waves?: ReturnType<typeof parseWaves>;
  soak?: number;
  successThreshold?: number;
  failureThreshold?: number;
  failureMin?: number;
  onFailure?: 'pause' | 'abort';
  maxConcurrent?: number;
  deviceTimeout?: number;
  retries?: number;
  retryBackoff?: number;
  window?: { start: string; end: string };
  rollbackOnAbort?: boolean;
  startAt?: string;
  start?: boolean;
}

/** The token as `clientFor` resolves it, for the event stream (fetch outside the client). */
function tokenFor(command: Command): string | undefined {
  let file: { token?: string } = {};
  try {
    file = JSON.parse(readFileSync(cliConfigPath(), 'utf8')) as { token?: string };
  } catch {
    // No config file: flags and environment only.
  }
  return globalsOf(command).token ?? process.env.FETCHBACK_TOKEN ?? file.token;
}

function rolloutsFor(command: Command): RolloutClient {
  return new RolloutClient(clientFor(command), tokenFor(command));
}

const defined = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** The create request the flags describe; unset flags leave the server's defaults. */
export function createInput(f: CreateFlags): RolloutCreateInput {
  const failure = defined({
    percent: f.failureThreshold,
    minCount: f.failureMin,
    action: f.onFailure,
  });
  const target = defined({
    deviceIds: f.device,
    hwClass: f.targetClass,
    tags: f.tag,
    currentVersion: f.currentVersion,
  });
  const strategy = defined({
    waves: f.waves,
    soakMs: f.soak,
    successThresholdPercent: f.successThreshold,
    failureThreshold: Object.keys(failure).length > 0 ? failure : undefined,
    maxConcurrent: f.maxConcurrent,
    deviceTimeoutMs: f.deviceTimeout,
    maxRetries: f.retries,
    retryBackoffMs: f.retryBackoff,
    maintenanceWindow: f.window,
    rollbackOnAbort: f.rollbackOnAbort,
  });
  return {
    releaseId: f.release,
    ...(f.name !== undefined && { name: f.name }),
    target,
    strategy,
    ...(f.startAt !== undefined && { startAt: new Date(f.startAt).toISOString() }),
  };
}

function describe(r: Rollout): string {
  const waves = r.waves.map((w) => [
    w.wave + 1,
    w.size,
    w.state,
    w.counts.committed ?? 0,
    (w.counts.rolled_back ?? 0) + (w.counts.failed ?? 0) + (w.counts.rejected ?? 0),
    w.counts.timed_out ?? 0,
  ]);
  return [
    summaryLine(r),
    `release ${r.releaseId}, created by ${r.createdBy} at ${r.createdAt}`,
    '',
    table(['WAVE', 'SIZE', 'STATE', 'COMMITTED', 'FAILED', 'TIMED OUT'], waves),
  ].join('\n');
}

function registerCreate(rollout: Command): void {
  rollout
    .command('create')
    .description('create a rollout of a release (a draft; --start starts it)')
    .requiredOption('--release <id>', 'release id')
    .option('--name <name>', 'a name for people')
    .option('--target-class <hw>', 'only devices of this hardware class')
    .option('--device <id>', 'only these devices (repeatable)', (v, p: string[] = []) => [...p, v])
    .option('--tag <k=v>', 'only devices with this tag (repeatable)', collectTag)
    .option('--current-version <v>', 'only devices running this version')
    .option('--waves <list>', 'cumulative waves: 10%,50%,100% or 5,20,100', parseWaves)
    .option('--soak <duration>', 'soak time after a wave succeeds (30m)', parseDuration('soak'))
    .option(
      '--success-threshold <pct>',
      'committed share to advance',
      parsePercent('success-threshold'),
    )
    .option(
      '--failure-threshold <pct>',
      'failed share that trips',
      parsePercent('failure-threshold'),
    )
    .option('--failure-min <n>', 'failures needed before it trips', parseCount('failure-min'))
    .option('--on-failure <action>', 'pause or abort', (v) => {
      if (v !== 'pause' && v !== 'abort') throw new Error('--on-failure expects pause or abort');
      return v;
    })
    .option('--max-concurrent <n>', 'devices updating at once', parseCount('max-concurrent'))
    .option('--device-timeout <duration>', 'per-device timeout', parseDuration('device-timeout'))
    .option('--retries <n>', 'retries per device', parseCount('retries', true))
    .option('--retry-backoff <duration>', 'first retry delay', parseDuration('retry-backoff'))
    .option('--window <HH:MM-HH:MM>', 'daily maintenance window, UTC', parseWindow)
    .option('--rollback-on-abort', 'on abort, give moved devices their previous release')
    .option('--start-at <time>', 'ISO 8601 time; the started rollout waits until then')
    .option('--start', 'start it right away')
    .action(
      action(async (flags: CreateFlags, command: Command) => {
        const client = rolloutsFor(command);
        let created = await client.create(createInput(flags));
        if (flags.start) created = await client.act(created.id, 'start');
        print(command, created, () => `created ${created.id}\n${describe(created)}`);
      }),
    );
}

function registerActions(rollout: Command): void {
  const actions: [RolloutAction, string][] = [
    ['start', 'start a draft rollout'],
    ['pause', 'stop assigning; devices updating now finish'],
    ['resume', 'continue a paused rollout'],
    ['abort', 'end a rollout (and roll back if it was created with --rollback-on-abort)'],
  ];
  for (const [name, description] of actions) {
    rollout
      .command(`${name} <id>`)
      .description(description)
      .action(
        action(async (id: string, _flags: object, command: Command) => {
          const r = await rolloutsFor(command).act(id, name);
          print(command, r, () => summaryLine(r));
        }),
      );
  }
}

function registerStatus(rollout: Command): void {
  rollout
    .command('status <id>')
    .description('show a rollout with counts per wave; --watch follows it live')
    .option('--watch', 'live progress bars per wave until it completes or is aborted')
    .option('--devices', 'also list its devices')
    .action(
      action(
        async (id: string, flags: { watch?: boolean; devices?: boolean }, command: Command) => {
          const client = rolloutsFor(command);
          const tty = process.stderr.isTTY === true && !isJson(command);
          const r = flags.watch ? await watchRollout(client, id, { tty }) : await client.get(id);
          const devices = flags.devices ? (await client.devices(id, { limit: 1000 })).items : [];
          const rows = devices.map((d) => [
            d.deviceId,
            d.wave + 1,
            d.state,
            d.attempts,
            d.lastCode,
          ]);
          print(command, flags.devices ? { ...r, devices } : r, () =>
            [
              describe(r),
              ...(flags.devices
                ? ['', table(['DEVICE', 'WAVE', 'STATE', 'ATTEMPTS', 'LAST CODE'], rows)]
                : []),
            ].join('\n'),
          );
        },
      ),
    );
}

function registerList(rollout: Command): void {
  rollout
    .command('list')
    .description('list rollouts, newest first')
    .option('--state <state>', 'only rollouts in this state')
    .option('--release <id>', 'only rollouts of this release')
    .option('--limit <n>', 'page size', parseCount('limit'))
    .option('--offset <n>', 'rows to skip', parseCount('offset', true))
    .action(
      action(
        async (
          flags: { state?: string; release?: string; limit?: number; offset?: number },
          command: Command,
        ) => {
          const page = await rolloutsFor(command).list(
            defined({
              state: flags.state,
              releaseId: flags.release,
              limit: flags.limit,
              offset: flags.offset,
            }),
          );
          const rows = page.items.map((r) => [
            r.id,
            r.name || null,
            r.releaseId,
            r.state,
            `${Math.min(r.currentWave + 1, r.waves.length)}/${r.waves.length}`,
            `${r.counts.committed ?? 0}/${r.totalDevices}`,
            r.createdAt,
          ]);
          print(command, page, () =>
            table(['ID', 'NAME', 'RELEASE', 'STATE', 'WAVE', 'COMMITTED', 'CREATED'], rows),
          );
        },
      ),
    );
}

/** Adds `fetchback rollout …` to the program. */
export function registerRolloutCommands(program: Command): void {
  const rollout = program.command('rollout').description('create, drive and watch rollouts');
  registerCreate(rollout);
  registerActions(rollout);
  registerStatus(rollout);
  registerList(rollout);
}
