/**
 * Every server option, once: its default, unit, environment variable, CLI flag and bounds. The
 * loader (`config.ts`), the `fetchback server` flags and `docs/operations.md` all follow this
 * table.
 */
import { LIMITS } from '@fetchback/shared';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The resolved, validated, frozen server options. */
export interface ServerOptions {
  readonly dataDir: string;
  readonly host: string;
  readonly mqttPort: number;
  readonly httpPort: number;
  readonly wsPort: number | undefined;
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  readonly tlsCaFile: string | undefined;
  readonly tlsRequireClientCert: boolean;
  readonly brokerUrl: string | undefined;
  readonly brokerUsername: string;
  readonly brokerPassword: string | undefined;
  readonly advertisedBrokerUrl: string | undefined;
  readonly topicPrefix: string;
  readonly maxImageBytes: number;
  readonly chunkBytes: number;
  readonly maxPacketBytes: number;
  readonly maxQueuedPerClient: number;
  readonly drainTimeoutMs: number;
  readonly maxInFlightPerDevice: number;
  readonly globalBudgetBytes: number;
  readonly maxWaitingChunks: number;
  readonly cacheBytes: number;
  readonly assignmentTtlS: number;
  readonly requireSignedAcks: boolean;
  readonly apiBodyLimitBytes: number;
  readonly certValidityDays: number;
  readonly logLevel: LogLevel;
}

export type OptionKind = 'string' | 'port' | 'optionalPort' | 'int' | 'bytes' | 'bool' | 'level';

export interface OptionSpec {
  readonly key: keyof ServerOptions;
  readonly kind: OptionKind;
  /** `undefined` for options that are off unless set. */
  readonly default: string | number | boolean | undefined;
  readonly unit?: string;
  readonly min?: number;
  readonly max?: number;
  /** Long CLI flag, without the dashes. */
  readonly flag: string;
  readonly env: string;
  readonly describe: string;
  /** Never printed (passwords). */
  readonly secret?: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const DAY_S = 86_400;

function spec(
  key: keyof ServerOptions,
  kind: OptionKind,
  defaultValue: OptionSpec['default'],
  describe: string,
  extra: Partial<OptionSpec> = {},
): OptionSpec {
  const snake = key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
  const kebab = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return {
    key,
    kind,
    default: defaultValue,
    describe,
    env: `FETCHBACK_${snake}`,
    flag: kebab,
    ...extra,
  };
}

export const OPTION_SPECS: readonly OptionSpec[] = [
  spec('dataDir', 'string', './data', 'directory of the database, images and keys'),
  spec('host', 'string', '0.0.0.0', 'interface the MQTT and HTTP listeners bind to'),
  spec(
    'mqttPort',
    'port',
    1883,
    'embedded broker TCP port (MQTT over TLS with --tls-cert); 0 = any free port',
  ),
  spec('httpPort', 'port', 8080, 'HTTP API port; 0 = any free port'),
  spec(
    'wsPort',
    'optionalPort',
    undefined,
    'MQTT over WebSocket port; off unless set; 0 = any free port',
  ),
  spec(
    'tlsCertFile',
    'string',
    undefined,
    'PEM server certificate: the embedded broker speaks TLS',
    { flag: 'tls-cert' },
  ),
  spec('tlsKeyFile', 'string', undefined, 'PEM private key of --tls-cert', { flag: 'tls-key' }),
  spec('tlsCaFile', 'string', undefined, 'PEM CA bundle that signs device client certificates', {
    flag: 'tls-ca',
  }),
  spec(
    'tlsRequireClientCert',
    'bool',
    false,
    'require a client certificate (CN = device id) on MQTT',
    { flag: 'tls-require-client-cert' },
  ),
  spec(
    'brokerUrl',
    'string',
    undefined,
    'mqtt(s):// URL of an external broker; unset = embedded aedes',
    { flag: 'broker' },
  ),
  spec(
    'brokerUsername',
    'string',
    'fetchback-server',
    'username of the server at the external broker',
  ),
  spec('brokerPassword', 'string', undefined, 'password of the server at the external broker', {
    secret: true,
  }),
  spec(
    'advertisedBrokerUrl',
    'string',
    undefined,
    'broker URL written into agent configs; default derived from the request host and mqttPort',
  ),
  spec('topicPrefix', 'string', 'fb/v1', 'MQTT topic prefix'),
  spec('maxImageBytes', 'bytes', 2 * GiB, 'largest accepted release image', {
    unit: 'bytes',
    min: 1,
    max: LIMITS.maxImageBytes,
  }),
  spec('chunkBytes', 'bytes', 256 * KiB, 'chunk size of new releases', {
    unit: 'bytes',
    min: LIMITS.minChunkBytes,
    max: LIMITS.maxChunkBytes,
  }),
  spec(
    'maxPacketBytes',
    'bytes',
    64 * KiB,
    'largest MQTT packet a client may send to the embedded broker',
    { unit: 'bytes', min: 1 * KiB, max: 256 * MiB },
  ),
  spec('maxQueuedPerClient', 'int', 100, 'most QoS 1 messages queued for one offline client', {
    unit: 'messages',
    min: 1,
    max: 1_000_000,
  }),
  spec(
    'drainTimeoutMs',
    'int',
    10_000,
    'how long the broker waits for a slow client socket to drain',
    { unit: 'ms', min: 100, max: 600_000 },
  ),
  spec('maxInFlightPerDevice', 'int', 64, 'most chunk fetches served at once for one device', {
    unit: 'chunks',
    min: 1,
    max: LIMITS.maxWindow,
  }),
  spec('globalBudgetBytes', 'bytes', 64 * MiB, 'most chunk bytes in flight across all devices', {
    unit: 'bytes',
    min: 1 * MiB,
    max: 64 * GiB,
  }),
  spec(
    'maxWaitingChunks',
    'int',
    65_536,
    'chunk requests queued, oldest first, while the global byte budget is spent; 0 = none',
    { unit: 'chunks', min: 0, max: 10_000_000 },
  ),
  spec('cacheBytes', 'bytes', 32 * MiB, 'chunk cache over the image store; 0 = no cache', {
    unit: 'bytes',
    min: 0,
    max: 64 * GiB,
  }),
  spec(
    'requireSignedAcks',
    'bool',
    false,
    'refuse unsigned ACKs even from devices that never signed one ' +
      '(the first signed ACK pins a device key either way)',
  ),
  spec('assignmentTtlS', 'int', 30 * DAY_S, 'validity of a signed assignment', {
    unit: 's',
    min: 60,
    max: 3650 * DAY_S,
  }),
  spec(
    'apiBodyLimitBytes',
    'bytes',
    1 * MiB,
    'largest JSON request body (uploads use maxImageBytes)',
    { unit: 'bytes', min: 1 * KiB, max: 64 * MiB },
  ),
  spec('certValidityDays', 'int', 365, 'validity of key certificates created at the first start', {
    unit: 'days',
    min: 1,
    max: 36_500,
  }),
  spec('logLevel', 'level', 'info', `log level: ${LOG_LEVELS.join(', ')}`),
];
