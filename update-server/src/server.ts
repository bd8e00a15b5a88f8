/**
 * `startServer`: opens the store, loads (or on the first start creates) the keys, starts the
 * message bus and delivery, then the HTTP API. `close()` stops them in the reverse order, API
 * first, so that no request or message is half-handled when the database closes.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { Topics, fbError, isFetchbackError } from '@fetchback/shared';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';

import { type RouteModule, buildApi } from './api/app.js';
import { ROLLOUT_ROUTES } from './api/rollouts.js';
import { startMessageBus } from './broker/index.js';
import { type Clock, systemClock } from './clock.js';
import type { ServerOptions } from './config.js';
import type { ServerContext } from './context.js';
import { deliveryMigrations, startDelivery } from './delivery/index.js';
import { ServerEvents } from './events.js';
import { ImageStore } from './images/image-store.js';
import {
  type ServerKeys,
  certificatesExpireAt,
  initKeys,
  keysExist,
  loadServerKeys,
} from './keys/index.js';
import { createLogger } from './logger.js';
import { attachRollouts } from './rollouts/attach.js';
import { rolloutMigrations } from './rollouts/migrations.js';
import { AuditLog } from './store/audit.js';
import { type Db, openDatabase } from './store/db.js';
import { DeviceRepository } from './store/devices.js';
import { runMigrations } from './store/migrate.js';
import { coreMigrations } from './store/migrations.js';
import { ReleaseRepository } from './store/releases.js';
import { TokenStore } from './store/tokens.js';

export interface StartDeps {
  /** Injectable time source (tests). */
  clock?: Clock;
  /** Root logger; by default pino on stdout at `options.logLevel`. */
  log?: Logger;
  /** Where the start-up banner (URLs, first admin token) goes, as one text; default stdout. */
  announce?: (banner: string) => void;
  /** Route modules registered after the core ones. */
  extraRoutes?: readonly RouteModule[];
}

export interface RunningServer {
  readonly ctx: ServerContext;
  readonly httpPort: number;
  /** Embedded broker port; undefined with an external broker. */
  readonly mqttPort: number | undefined;
  readonly wsPort: number | undefined;
  readonly urls: { api: string; docs: string; mqtt?: string; ws?: string };
  /** The admin token created on the first start (also printed once); undefined afterwards. */
  readonly initialAdminToken: string | undefined;
  close(): Promise<void>;
}

/** Every migration of every module, in one list. */
export const ALL_MIGRATIONS = [...coreMigrations, ...deliveryMigrations, ...rolloutMigrations];

/** Days before certificate expiry from which every start warns. */
const CERT_WARN_DAYS = 30;
const DAY_MS = 86_400_000;

/** Closers of what has started so far, run in reverse on close or on a failed start. */
class Stack {
  private readonly closers: { name: string; close: () => unknown }[] = [];

  push(name: string, close: () => unknown): void {
    this.closers.push({ name, close });
  }

  async closeAll(log: Logger): Promise<void> {
    for (const { name, close } of this.closers.splice(0).reverse()) {
      try {
        await close();
      } catch (err) {
        log.error({ component: name, err }, 'close failed');
      }
    }
  }
}

/** @throws FetchbackError `FB_ERR_STORAGE` when the data directory cannot be written. */
function prepareDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true });
    accessSync(dataDir, constants.W_OK);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw fbError('FB_ERR_STORAGE', `"dataDir" ${dataDir} is not writable (${reason})`, {
      field: 'dataDir',
    });
  }
}

function openStore(options: ServerOptions, log: Logger): Db {
  prepareDataDir(options.dataDir);
  const db = openDatabase(join(options.dataDir, 'fetchback.db'));
  const applied = runMigrations(db, ALL_MIGRATIONS);
  if (applied.length > 0) log.info({ applied }, 'database migrated');
  return db;
}

function loadKeys(options: ServerOptions, log: Logger, clock: Clock): ServerKeys {
  const dir = join(options.dataDir, 'keys');
  if (!keysExist(dir)) {
    initKeys(dir, { certValidityDays: options.certValidityDays, now: clock.now() });
    log.warn({ dir }, 'created root, release and assignment keys; move root.key offline');
  }
  const keys = loadServerKeys(dir);
  const expiresAt = certificatesExpireAt(keys);
  if (expiresAt <= clock.now()) {
    log.error({ expiresAt: new Date(expiresAt) }, 'key certificates expired; run keys renew');
  } else if (expiresAt - clock.now() < CERT_WARN_DAYS * DAY_MS) {
    log.warn({ expiresAt: new Date(expiresAt) }, 'key certificates expire soon; run keys renew');
  }
  return keys;
}

/** Turns "address in use" into one clear coded line naming the option to change. */
function portError(err: unknown, field: keyof ServerOptions, options: ServerOptions): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code !== 'EADDRINUSE' && code !== 'EACCES') return err;
  const port = options[field];
  const reason = code === 'EADDRINUSE' ? 'is already in use' : 'needs privileges to bind';
  return fbError('FB_ERR_CONFIG_INVALID', `"${field}" ${port} on ${options.host} ${reason}`, {
    field,
  });
}

function busOptions(options: ServerOptions) {
  return {
    host: options.host,
    mqttPort: options.mqttPort,
    tls: options.tlsCertFile
      ? {
          certFile: options.tlsCertFile,
          keyFile: options.tlsKeyFile as string,
          caFile: options.tlsCaFile,
          requireClientCert: options.tlsRequireClientCert,
        }
      : undefined,
    wsPort: options.wsPort,
    externalUrl: options.brokerUrl,
    externalUsername: options.brokerUsername,
    externalPassword: options.brokerPassword,
    maxPacketBytes: options.maxPacketBytes,
    maxQueuedPerClient: options.maxQueuedPerClient,
    drainTimeoutMs: options.drainTimeoutMs,
  };
}

function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

function urlsOf(options: ServerOptions, httpPort: number, mqttPort?: number, wsPort?: number) {
  const host = displayHost(options.host);
  const scheme = options.tlsCertFile ? 'mqtts' : 'mqtt';
  return {
    api: `http://${host}:${httpPort}/api/v1`,
    docs: `http://${host}:${httpPort}/docs`,
    ...(mqttPort !== undefined ? { mqtt: `${scheme}://${host}:${mqttPort}` } : {}),
    ...(wsPort !== undefined
      ? { ws: `${options.tlsCertFile ? 'wss' : 'ws'}://${host}:${wsPort}` }
      : {}),
  };
}

/** Creates the first admin token on a fresh database. */
function firstAdminToken(ctx: ServerContext): string | undefined {
  if (ctx.tokens.countAll() > 0) return undefined;
  const { token, record } = ctx.tokens.create('admin', 'admin', 'system');
  ctx.audit.record('system', 'token.create', record.id, { name: record.name, role: record.role });
  return token;
}

function banner(urls: RunningServer['urls'], token: string | undefined): string[] {
  const lines = [
    'fetchback server ready',
    `  HTTP API  ${urls.api}   (docs ${urls.docs})`,
    ...(urls.mqtt ? [`  MQTT      ${urls.mqtt}`] : ['  MQTT      external broker']),
    ...(urls.ws ? [`  MQTT/WS   ${urls.ws}`] : []),
  ];
  if (token) {
    lines.push(
      '  First start: an admin API token was created. It is shown only now; store it:',
      `  FETCHBACK_TOKEN=${token}`,
    );
  }
  return lines;
}

/**
 * Starts the server.
 *
 * @throws FetchbackError `FB_ERR_STORAGE` (data directory), `FB_ERR_CONFIG_INVALID` (port in
 *   use, bad option), `FB_ERR_KEY_INVALID` (key material).
 */
export async function startServer(
  options: ServerOptions,
  deps: StartDeps = {},
): Promise<RunningServer> {
  const clock = deps.clock ?? systemClock;
  const log = deps.log ?? createLogger(options.logLevel);
  const stack = new Stack();
  try {
    return await start(options, deps, clock, log, stack);
  } catch (err) {
    await stack.closeAll(log);
    throw isFetchbackError(err) ? err : fbError('FB_ERR_INTERNAL', (err as Error).message);
  }
}

async function start(
  options: ServerOptions,
  deps: StartDeps,
  clock: Clock,
  log: Logger,
  stack: Stack,
): Promise<RunningServer> {
  const db = openStore(options, log);
  stack.push('database', () => db.close());
  const keys = loadKeys(options, log, clock);
  const images = new ImageStore(join(options.dataDir, 'images'));
  stack.push('images', () => images.close());
  const topics = new Topics(options.topicPrefix);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const devices = new DeviceRepository(db, clock);
  const releases = new ReleaseRepository(db);
  const events = new ServerEvents();

  const bus = await startMessageBus(busOptions(options), {
    devices,
    // The bus names its own component (and, for an external broker, the broker's URL).
    log,
    registry,
    topics,
  }).catch((err: unknown) => {
    throw portError(err, 'mqttPort', options);
  });
  stack.push('bus', () => bus.close());
  const delivery = await startDelivery({
    bus,
    db,
    log,
    events,
    topics,
    devices,
    releases,
    images,
    keys,
    registry,
    clock,
    options,
  });
  stack.push('delivery', () => delivery.close());

  const ctx: ServerContext = {
    options,
    db,
    log,
    events,
    keys,
    topics,
    metrics: { registry },
    assignments: delivery.assignments,
    audit: new AuditLog(db, clock),
    clock,
    devices,
    releases,
    tokens: new TokenStore(db, clock),
    images,
    bus,
    deviceKeys: delivery.back,
  };
  const rollouts = attachRollouts(ctx);
  stack.push('rollouts', () => rollouts.close());
  const app = await buildApi(ctx, [...ROLLOUT_ROUTES, ...(deps.extraRoutes ?? [])]);
  stack.push('api', () => app.close());
  const httpPort = await listen(app, options);

  const urls = urlsOf(options, httpPort, bus.mqttPort, bus.wsPort);
  const initialAdminToken = firstAdminToken(ctx);
  const announce = deps.announce ?? ((text: string) => process.stdout.write(`${text}\n`));
  // One write, so that a reader of the output sees the whole banner at once.
  announce(banner(urls, initialAdminToken).join('\n'));
  log.info({ ...urls }, 'server started');

  let closing: Promise<void> | undefined;
  return {
    ctx,
    httpPort,
    mqttPort: bus.mqttPort,
    wsPort: bus.wsPort,
    urls,
    initialAdminToken,
    close: () => {
      closing ??= stack.closeAll(log).then(() => log.info({}, 'server stopped'));
      return closing;
    },
  };
}

async function listen(app: FastifyInstance, options: ServerOptions): Promise<number> {
  try {
    await app.listen({ host: options.host, port: options.httpPort });
  } catch (err) {
    throw portError(err, 'httpPort', options);
  }
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : options.httpPort;
}
