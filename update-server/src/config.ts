/**
 * Server configuration: defaults < config file (`--config file.json` or `FETCHBACK_CONFIG`) <
 * environment (`FETCHBACK_*`) < CLI flags / code overrides. Every value is parsed and checked
 * once, here, with a coded error naming the field; the result is frozen.
 */
import { accessSync, constants, readFileSync } from 'node:fs';

import { Topics, fbError } from '@fetchback/shared';

import { LOG_LEVELS, OPTION_SPECS, type OptionSpec, type ServerOptions } from './config-spec.js';

export {
  LOG_LEVELS,
  OPTION_SPECS,
  type LogLevel,
  type OptionSpec,
  type ServerOptions,
} from './config-spec.js';

export interface ConfigSources {
  /** JSON config file; defaults to `env.FETCHBACK_CONFIG`. */
  configFile?: string;
  /** Environment; defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Highest precedence: CLI flags or code, by option key. `undefined` entries are ignored. */
  overrides?: Partial<Record<keyof ServerOptions, unknown>>;
}

type Value = string | number | boolean | undefined;

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};

function invalid(spec: OptionSpec, rule: string, raw: unknown, origin: string): never {
  const shown = spec.secret ? '(hidden)' : JSON.stringify(raw);
  throw fbError(
    'FB_ERR_CONFIG_INVALID',
    `"${spec.key}" expected ${rule}, got ${shown} (${origin})`,
    {
      field: spec.key,
    },
  );
}

function parseInteger(spec: OptionSpec, raw: unknown, origin: string): number {
  const n = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n))
    return invalid(spec, 'an integer', raw, origin);
  return n;
}

/** Bytes as an integer or a string with a binary unit: `65536`, `64KiB`, `2GiB`, `2G`. */
function parseBytes(spec: OptionSpec, raw: unknown, origin: string): number {
  if (typeof raw === 'number') return parseInteger(spec, raw, origin);
  const match = typeof raw === 'string' ? /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(raw) : null;
  const factor = match ? BYTE_UNITS[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || factor === undefined) {
    return invalid(spec, 'a byte count such as 65536, 64KiB or 2GiB', raw, origin);
  }
  return Number(match[1]) * factor;
}

function parseBool(spec: OptionSpec, raw: unknown, origin: string): boolean {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true' || raw === '1' || raw === 'yes') return true;
  if (raw === 'false' || raw === '0' || raw === 'no') return false;
  return invalid(spec, 'true or false', raw, origin);
}

function inRange(spec: OptionSpec, n: number, raw: unknown, origin: string): number {
  const min = spec.kind === 'port' || spec.kind === 'optionalPort' ? 0 : (spec.min ?? 0);
  const max = spec.kind === 'port' || spec.kind === 'optionalPort' ? 65535 : (spec.max ?? Infinity);
  if (n < min || n > max) return invalid(spec, `an integer in [${min}, ${max}]`, raw, origin);
  return n;
}

/** Parses one raw value (typed JSON from a file, or text from the environment or a flag). */
function parseValue(spec: OptionSpec, raw: unknown, origin: string): Value {
  switch (spec.kind) {
    case 'string':
      if (typeof raw !== 'string' || raw.length === 0)
        return invalid(spec, 'a non-empty string', raw, origin);
      return raw;
    case 'bool':
      return parseBool(spec, raw, origin);
    case 'level':
      if (!(LOG_LEVELS as readonly unknown[]).includes(raw)) {
        return invalid(spec, `one of ${LOG_LEVELS.join(', ')}`, raw, origin);
      }
      return raw as string;
    case 'optionalPort':
      if (raw === 'off' || raw === '' || raw === false || raw === null) return undefined;
      return inRange(spec, parseInteger(spec, raw, origin), raw, origin);
    case 'bytes':
      return inRange(spec, parseBytes(spec, raw, origin), raw, origin);
    case 'port':
    case 'int':
      return inRange(spec, parseInteger(spec, raw, origin), raw, origin);
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw fbError('FB_ERR_CONFIG_INVALID', `config file ${file}: ${(err as Error).message}`, {
      field: 'config',
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw fbError('FB_ERR_CONFIG_INVALID', `config file ${file}: expected a JSON object`, {
      field: 'config',
    });
  }
  const known = new Set<string>(OPTION_SPECS.map((s) => s.key));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) {
      throw fbError('FB_ERR_CONFIG_INVALID', `config file ${file}: unknown option "${key}"`, {
        field: key,
      });
    }
  }
  return parsed as Record<string, unknown>;
}

/** The value of one option from the highest-precedence source that sets it. */
function resolveOne(
  spec: OptionSpec,
  file: Record<string, unknown> | undefined,
  fileName: string | undefined,
  sources: ConfigSources,
  env: Readonly<Record<string, string | undefined>>,
): Value {
  const override = sources.overrides?.[spec.key];
  if (override !== undefined) return parseValue(spec, override, `--${spec.flag}`);
  const fromEnv = env[spec.env];
  if (fromEnv !== undefined) return parseValue(spec, fromEnv, spec.env);
  if (file && file[spec.key] !== undefined)
    return parseValue(spec, file[spec.key], fileName ?? 'config');
  return spec.default;
}

function fail(field: keyof ServerOptions, detail: string): never {
  throw fbError('FB_ERR_CONFIG_INVALID', `"${field}" ${detail}`, { field });
}

function checkReadable(field: keyof ServerOptions, file: string | undefined): void {
  if (file === undefined) return;
  try {
    accessSync(file, constants.R_OK);
  } catch {
    fail(field, `expected a readable file, got ${JSON.stringify(file)}`);
  }
}

/** Rules that span options or need more than a type. */
function checkTogether(o: ServerOptions): void {
  if ((o.tlsCertFile === undefined) !== (o.tlsKeyFile === undefined)) {
    fail(
      o.tlsCertFile ? 'tlsKeyFile' : 'tlsCertFile',
      'must be set together with the other TLS file',
    );
  }
  if (o.tlsRequireClientCert && o.tlsCaFile === undefined) {
    fail('tlsCaFile', 'is required by tlsRequireClientCert');
  }
  checkReadable('tlsCertFile', o.tlsCertFile);
  checkReadable('tlsKeyFile', o.tlsKeyFile);
  checkReadable('tlsCaFile', o.tlsCaFile);
  for (const field of ['brokerUrl', 'advertisedBrokerUrl'] as const) {
    const url = o[field];
    if (url !== undefined && !/^(mqtts?|wss?):\/\/[^/\s]+/.test(url)) {
      fail(field, `expected an mqtt://, mqtts://, ws:// or wss:// URL, got ${JSON.stringify(url)}`);
    }
  }
  try {
    new Topics(o.topicPrefix);
  } catch {
    fail('topicPrefix', `expected levels of [A-Za-z0-9._-], got ${JSON.stringify(o.topicPrefix)}`);
  }
}

/**
 * Resolves, validates and freezes the server options.
 *
 * @throws FetchbackError `FB_ERR_CONFIG_INVALID` naming the field (`details.field`).
 */
export function resolveConfig(sources: ConfigSources = {}): ServerOptions {
  const env = sources.env ?? process.env;
  const fileName = sources.configFile ?? env.FETCHBACK_CONFIG;
  const file = fileName ? readConfigFile(fileName) : undefined;
  const resolved: Record<string, Value> = {};
  for (const spec of OPTION_SPECS)
    resolved[spec.key] = resolveOne(spec, file, fileName, sources, env);
  const options = resolved as unknown as ServerOptions;
  checkTogether(options);
  return Object.freeze(options);
}

/** The options with secrets hidden, for logs and `--print-config`. */
export function describeConfig(options: ServerOptions): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const spec of OPTION_SPECS) {
    const value = options[spec.key];
    shown[spec.key] = spec.secret && value !== undefined ? '(hidden)' : value;
  }
  return shown;
}
