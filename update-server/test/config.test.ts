import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { isFetchbackError } from '@fetchback/shared';
import { afterEach, describe, expect, it } from 'vitest';

import { OPTION_SPECS, resolveConfig } from '../src/config.js';
import { tempDir } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function configFile(content: unknown): string {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const file = join(dir, 'config.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(isFetchbackError(err, 'FB_ERR_CONFIG_INVALID')).toBe(true);
    return (err as { details: { field?: string } }).details.field;
  }
  throw new Error('expected FB_ERR_CONFIG_INVALID');
}

describe('config', () => {
  it('defaults every option, with the documented values', () => {
    const o = resolveConfig({ env: {} });
    expect(o).toMatchObject({
      dataDir: './data',
      mqttPort: 1883,
      httpPort: 8080,
      wsPort: undefined,
      topicPrefix: 'fb/v1',
      maxImageBytes: 2 * 1024 ** 3,
      chunkBytes: 256 * 1024,
      logLevel: 'info',
    });
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('takes file < environment < flags, each overriding the one before', () => {
    const file = configFile({
      mqttPort: 1000,
      httpPort: 2000,
      chunkBytes: '128KiB',
      host: '127.0.0.1',
    });
    const env = { FETCHBACK_HTTP_PORT: '3000', FETCHBACK_CHUNK_BYTES: '256KiB' };
    const o = resolveConfig({ configFile: file, env, overrides: { chunkBytes: '32768' } });
    expect(o.host).toBe('127.0.0.1');
    expect(o.mqttPort).toBe(1000);
    expect(o.httpPort).toBe(3000);
    expect(o.chunkBytes).toBe(32768);
  });

  it('reads the config file named by FETCHBACK_CONFIG', () => {
    const file = configFile({ topicPrefix: 'acme/ota' });
    expect(resolveConfig({ env: { FETCHBACK_CONFIG: file } }).topicPrefix).toBe('acme/ota');
  });

  it('names the field of every invalid value', () => {
    expect(fieldOf(() => resolveConfig({ env: { FETCHBACK_MQTT_PORT: 'abc' } }))).toBe('mqttPort');
    expect(fieldOf(() => resolveConfig({ env: { FETCHBACK_HTTP_PORT: '70000' } }))).toBe(
      'httpPort',
    );
    expect(fieldOf(() => resolveConfig({ env: {}, overrides: { chunkBytes: 512 } }))).toBe(
      'chunkBytes',
    );
    expect(fieldOf(() => resolveConfig({ env: {}, overrides: { chunkBytes: '2MiB' } }))).toBe(
      'chunkBytes',
    );
    expect(fieldOf(() => resolveConfig({ env: { FETCHBACK_LOG_LEVEL: 'loud' } }))).toBe('logLevel');
    expect(fieldOf(() => resolveConfig({ env: { FETCHBACK_TOPIC_PREFIX: 'a/#' } }))).toBe(
      'topicPrefix',
    );
    expect(fieldOf(() => resolveConfig({ env: { FETCHBACK_BROKER_URL: 'http://x' } }))).toBe(
      'brokerUrl',
    );
    expect(
      fieldOf(() => resolveConfig({ env: { FETCHBACK_TLS_CERT_FILE: '/etc/hostname' } })),
    ).toBe('tlsKeyFile');
    expect(
      fieldOf(() => resolveConfig({ env: { FETCHBACK_TLS_REQUIRE_CLIENT_CERT: 'true' } })),
    ).toBe('tlsCaFile');
    expect(fieldOf(() => resolveConfig({ configFile: configFile({ mqttPot: 1 }), env: {} }))).toBe(
      'mqttPot',
    );
    expect(fieldOf(() => resolveConfig({ configFile: configFile('{oops'), env: {} }))).toBe(
      'config',
    );
  });

  it('never echoes a secret in an error', () => {
    try {
      resolveConfig({ env: {}, overrides: { brokerPassword: 12345 } });
      throw new Error('expected an error');
    } catch (err) {
      expect((err as Error).message).not.toContain('12345');
      expect((err as Error).message).toContain('brokerPassword');
    }
  });

  it('turns the WebSocket listener on only when a port is given', () => {
    expect(resolveConfig({ env: { FETCHBACK_WS_PORT: '8883' } }).wsPort).toBe(8883);
    expect(resolveConfig({ env: { FETCHBACK_WS_PORT: 'off' } }).wsPort).toBeUndefined();
  });

  it('derives each environment variable and flag from the option name', () => {
    const spec = OPTION_SPECS.find((s) => s.key === 'maxInFlightPerDevice');
    expect(spec).toMatchObject({
      env: 'FETCHBACK_MAX_IN_FLIGHT_PER_DEVICE',
      flag: 'max-in-flight-per-device',
    });
  });
});
