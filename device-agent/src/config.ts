/**
 * `agent.json`: parsed and validated once at start, then frozen. It accepts exactly the JSON
 * that the server's `fetchback device add` prints (brokerUrl, deviceId, username, password,
 * rootPublicKey, hardwareClass, topicPrefix) plus the agent-only fields below, each with a
 * default. Every error is `FB_ERR_CONFIG_INVALID` naming the field; secrets are never echoed.
 * `docs/device.md` ("Configuration") is the reference.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';

import { DEFAULT_TOPIC_PREFIX, LIMITS, fbError, fromHex, isValidDeviceId } from '@fetchback/shared';

import { type AgentLimits, DEFAULT_LIMITS, type OutboxLimits } from './limits.js';
import { LIFECYCLE_STATES, type LifecycleState } from './lifecycle/transitions.js';

/** Where the agent keeps its state and slots unless the config says otherwise. */
export const DEFAULT_DATA_DIR = '/var/lib/fetchback-agent';

export type InstallerConfig =
  | { readonly type: 'ab-dir'; readonly reboot: string; readonly timeoutMs: number }
  | {
      readonly type: 'command';
      readonly install: string;
      readonly markGood?: string;
      readonly rollback?: string;
      /** `exit` exits the agent (the service manager restarts it); anything else is run. */
      readonly reboot: string;
      readonly timeoutMs: number;
    };

export interface AgentConfig {
  readonly brokerUrl: string;
  readonly deviceId: string;
  readonly username?: string;
  readonly password?: string;
  /** PEM files for mqtts:// and wss:// (absolute paths); each is optional. */
  readonly tls?: AgentTlsFiles;
  readonly rootPublicKey: Uint8Array;
  readonly hardwareClass: string;
  readonly topicPrefix: string;
  readonly dataDir: string;
  readonly slots: { readonly dir: string };
  readonly installer: InstallerConfig;
  readonly healthCheck: { readonly command?: string; readonly timeoutMs: number };
  /** Commands run on entering a state (after it is persisted and reported). */
  readonly hooks: Readonly<Partial<Record<LifecycleState, string>>>;
  readonly hookTimeoutMs: number;
  readonly limits: AgentLimits;
  readonly currentVersion: string;
  readonly logLevel: string;
  readonly keepaliveSeconds: number;
  readonly reconnectPeriodMs: number;
}

export interface AgentTlsFiles {
  /** CA bundle that signs the broker's certificate, when it is not a public CA. */
  readonly caFile?: string;
  /** Client certificate (subject CN = the device id) and its key, for brokers that ask. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

type Json = Record<string, unknown>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function invalid(field: string, rule: string, got: unknown, secret = false): never {
  const shown = secret ? '(hidden)' : describe(got);
  throw fbError('FB_ERR_CONFIG_INVALID', `"${field}" expected ${rule}, got ${shown}`, { field });
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 60));
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : typeof value;
  return String(value);
}

function text(o: Json, key: string, path: string, fallback?: string, secret = false): string {
  const value = o[key] ?? fallback;
  if (typeof value !== 'string' || value.length === 0) {
    return invalid(path, 'a non-empty string', value, secret);
  }
  return value;
}

function optText(o: Json, key: string, path: string, secret = false): string | undefined {
  return o[key] === undefined ? undefined : text(o, key, path, undefined, secret);
}

function integer(o: Json, key: string, path: string, fallback: number, min: number, max: number) {
  const value = o[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    return invalid(path, `an integer in [${min}, ${max}]`, value);
  }
  return value;
}

function object(o: Json, key: string, path: string): Json {
  const value = o[key] ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return invalid(path, 'an object', value);
  }
  return value as Json;
}

/**
 * Validates a parsed `agent.json`. Relative paths are taken relative to `baseDir`.
 *
 * @throws FetchbackError `FB_ERR_CONFIG_INVALID` naming the first bad field.
 */
export function parseConfig(input: unknown, baseDir: string): AgentConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return invalid('(config)', 'a JSON object', input);
  }
  const o = input as Json;
  const path = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const dataDir = path(text(o, 'dataDir', 'dataDir', DEFAULT_DATA_DIR));
  const username = optText(o, 'username', 'username');
  const password = optText(o, 'password', 'password', true);
  const health = healthCheck(object(o, 'healthCheck', 'healthCheck'));
  const tlsFiles = tls(object(o, 'tls', 'tls'), path);

  return Object.freeze({
    brokerUrl: brokerUrl(o),
    deviceId: deviceId(o),
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tlsFiles !== undefined ? { tls: tlsFiles } : {}),
    rootPublicKey: rootPublicKey(o),
    hardwareClass: hardwareClass(o),
    topicPrefix: text(o, 'topicPrefix', 'topicPrefix', DEFAULT_TOPIC_PREFIX),
    dataDir,
    slots: {
      dir: path(text(object(o, 'slots', 'slots'), 'dir', 'slots.dir', join(dataDir, 'slots'))),
    },
    installer: installer(object(o, 'installer', 'installer')),
    healthCheck: health,
    hooks: hooks(object(o, 'hooks', 'hooks')),
    hookTimeoutMs: integer(o, 'hookTimeoutMs', 'hookTimeoutMs', 300_000, 1, 86_400_000),
    limits: limits(object(o, 'limits', 'limits'), health.timeoutMs),
    currentVersion: text(o, 'currentVersion', 'currentVersion', '0.0.0'),
    logLevel: logLevel(o),
    keepaliveSeconds: integer(o, 'keepaliveSeconds', 'keepaliveSeconds', 30, 5, 3600),
    reconnectPeriodMs: integer(o, 'reconnectPeriodMs', 'reconnectPeriodMs', 2000, 100, 600_000),
  });
}

/** Reads and validates a config file. */
export async function loadConfig(file: string): Promise<AgentConfig> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (err) {
    throw fbError('FB_ERR_CONFIG_INVALID', `cannot read ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw fbError('FB_ERR_CONFIG_INVALID', `${file} is not JSON: ${(err as Error).message}`);
  }
  return parseConfig(parsed, dirname(resolve(file)));
}

function tls(o: Json, path: (p: string) => string): AgentTlsFiles | undefined {
  const files: Record<string, string> = {};
  for (const key of ['caFile', 'certFile', 'keyFile']) {
    const value = optText(o, key, `tls.${key}`);
    if (value !== undefined) files[key] = path(value);
  }
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    return invalid('tls', 'certFile and keyFile together', Object.keys(files).join(', '));
  }
  return Object.keys(files).length > 0 ? files : undefined;
}

function brokerUrl(o: Json): string {
  const value = text(o, 'brokerUrl', 'brokerUrl');
  if (!/^(mqtts?|wss?|tcp|ssl):\/\/[^\s]+$/.test(value)) {
    return invalid('brokerUrl', 'an mqtt://, mqtts://, ws:// or wss:// URL', value);
  }
  return value;
}

function deviceId(o: Json): string {
  const value = o.deviceId;
  if (!isValidDeviceId(value)) {
    return invalid('deviceId', '1-64 of [A-Za-z0-9._-] starting alphanumeric', value);
  }
  return value;
}

function rootPublicKey(o: Json): Uint8Array {
  const value = o.rootPublicKey;
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{64}$/.test(value)) {
    return invalid('rootPublicKey', '64 hex digits (an ed25519 public key)', value);
  }
  return fromHex(value);
}

function hardwareClass(o: Json): string {
  const value = text(o, 'hardwareClass', 'hardwareClass');
  if (value.length > LIMITS.maxClassLength || !/^[A-Za-z0-9._-]+$/.test(value)) {
    return invalid('hardwareClass', `1-${LIMITS.maxClassLength} of [A-Za-z0-9._-]`, value);
  }
  return value;
}

function logLevel(o: Json): string {
  const value = text(o, 'logLevel', 'logLevel', 'info');
  if (!LOG_LEVELS.includes(value)) return invalid('logLevel', `one of ${LOG_LEVELS}`, value);
  return value;
}

function installer(o: Json): InstallerConfig {
  const type = text(o, 'type', 'installer.type', 'ab-dir');
  const timeoutMs = integer(o, 'timeoutMs', 'installer.timeoutMs', 600_000, 1, 86_400_000);
  const reboot = text(o, 'reboot', 'installer.reboot', 'exit');
  if (type === 'ab-dir') return { type, reboot, timeoutMs };
  if (type !== 'command') return invalid('installer.type', '"ab-dir" or "command"', type);
  const markGood = optText(o, 'markGood', 'installer.markGood');
  const rollback = optText(o, 'rollback', 'installer.rollback');
  return {
    type,
    install: text(o, 'install', 'installer.install'),
    ...(markGood !== undefined ? { markGood } : {}),
    ...(rollback !== undefined ? { rollback } : {}),
    reboot,
    timeoutMs,
  };
}

function healthCheck(o: Json): AgentConfig['healthCheck'] {
  const command = optText(o, 'command', 'healthCheck.command');
  const timeoutMs = integer(o, 'timeoutMs', 'healthCheck.timeoutMs', 60_000, 1, 86_400_000);
  return { ...(command !== undefined ? { command } : {}), timeoutMs };
}

function hooks(o: Json): AgentConfig['hooks'] {
  const out: Partial<Record<LifecycleState, string>> = {};
  for (const key of Object.keys(o)) {
    if (!(LIFECYCLE_STATES as readonly string[]).includes(key)) {
      return invalid(`hooks.${key}`, `a state: ${LIFECYCLE_STATES.join(', ')}`, key);
    }
    out[key as LifecycleState] = text(o, key, `hooks.${key}`);
  }
  return out;
}

/** `healthCheck.timeoutMs` is the one place the health check's timeout is set. */
function limits(o: Json, healthCheckTimeoutMs: number): AgentLimits {
  const d = DEFAULT_LIMITS;
  const n = (key: keyof AgentLimits, min: number, max: number) =>
    integer(o, key, `limits.${key}`, d[key] as number, min, max);
  const day = 86_400_000;
  return Object.freeze({
    maxImageBytes: n('maxImageBytes', 1, LIMITS.maxImageBytes),
    window: n('window', 0, LIMITS.maxWindow),
    windowBytes: n('windowBytes', LIMITS.minChunkBytes, 256 * LIMITS.maxChunkBytes),
    chunkStallMs: n('chunkStallMs', 10, day),
    maxStallRetries: n('maxStallRetries', 0, 1000),
    maxCorruptPerChunk: n('maxCorruptPerChunk', 0, 1000),
    busyBackoffBaseMs: n('busyBackoffBaseMs', 1, day),
    busyBackoffCapMs: n('busyBackoffCapMs', 1, day),
    heldFlushChunks: n('heldFlushChunks', 1, 1_000_000),
    heldFlushMs: n('heldFlushMs', 1, day),
    maxRepairs: n('maxRepairs', 0, 100),
    healthCheckTimeoutMs,
    maxBootAttempts: n('maxBootAttempts', 1, 1000),
    progressIntervalMs: n('progressIntervalMs', 0, day),
    rebootFlushMs: n('rebootFlushMs', 0, day),
    outbox: outboxLimits(object(o, 'outbox', 'limits.outbox')),
  });
}

function outboxLimits(o: Json): OutboxLimits {
  const d = DEFAULT_LIMITS.outbox;
  const n = (key: keyof OutboxLimits, min: number, max: number) =>
    integer(o, key, `limits.outbox.${key}`, d[key], min, max);
  return Object.freeze({
    maxEntries: n('maxEntries', 10, 100_000),
    retryAfterMs: n('retryAfterMs', 0, 86_400_000),
    backoffBaseMs: n('backoffBaseMs', 1, 86_400_000),
    backoffCapMs: n('backoffCapMs', 1, 86_400_000),
  });
}
