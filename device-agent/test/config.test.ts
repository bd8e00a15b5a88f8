/** agent.json validation: the server's `device add` output is accepted as is; errors name the field. */
import { describe, expect, it } from 'vitest';

import { isFetchbackError } from '@fetchback/shared';

import { DEFAULT_LIMITS, parseConfig } from '../src/index.js';

const DEVICE_ADD_OUTPUT = {
  brokerUrl: 'mqtt://127.0.0.1:1883',
  deviceId: 'pi-0001',
  username: 'pi-0001',
  password: 's3cret-value',
  rootPublicKey: 'ab'.repeat(32),
  hardwareClass: 'pi4',
  topicPrefix: 'fb/v1',
};

function errorOf(input: unknown): string {
  try {
    parseConfig(input, '/etc/fetchback');
  } catch (err) {
    if (isFetchbackError(err, 'FB_ERR_CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('no error');
}

describe('parseConfig', () => {
  it('accepts exactly what device add prints, with defaults for the agent-only fields', () => {
    const config = parseConfig(DEVICE_ADD_OUTPUT, '/etc/fetchback');
    expect(config.deviceId).toBe('pi-0001');
    expect(config.rootPublicKey).toHaveLength(32);
    expect(config.dataDir).toBe('/var/lib/fetchback-agent');
    expect(config.slots.dir).toBe('/var/lib/fetchback-agent/slots');
    expect(config.installer).toEqual({ type: 'ab-dir', reboot: 'exit', timeoutMs: 600_000 });
    expect(config.limits.window).toBe(DEFAULT_LIMITS.window);
    expect(config.limits.healthCheckTimeoutMs).toBe(config.healthCheck.timeoutMs);
  });

  it('reads TLS files relative to the config file; a certificate needs its key', () => {
    const config = parseConfig(
      {
        ...DEVICE_ADD_OUTPUT,
        tls: { caFile: 'ca.crt', certFile: '/k/dev.crt', keyFile: 'dev.key' },
      },
      '/etc/fetchback',
    );
    expect(config.tls).toEqual({
      caFile: '/etc/fetchback/ca.crt',
      certFile: '/k/dev.crt',
      keyFile: '/etc/fetchback/dev.key',
    });
    expect(parseConfig(DEVICE_ADD_OUTPUT, '/etc/fetchback').tls).toBeUndefined();
    expect(errorOf({ ...DEVICE_ADD_OUTPUT, tls: { certFile: 'dev.crt' } })).toMatch(
      /"tls" expected certFile and keyFile together/,
    );
    expect(errorOf({ ...DEVICE_ADD_OUTPUT, tls: { caFile: 7 } })).toMatch(/"tls.caFile"/);
    expect(errorOf({ ...DEVICE_ADD_OUTPUT, tls: 'yes' })).toMatch(/"tls" expected an object/);
  });

  it('takes relative paths relative to the config file', () => {
    const config = parseConfig({ ...DEVICE_ADD_OUTPUT, dataDir: './data' }, '/home/pi');
    expect(config.dataDir).toBe('/home/pi/data');
  });

  it('names the field and the rule of a bad value', () => {
    expect(errorOf({ ...DEVICE_ADD_OUTPUT, limits: { window: 1000 } })).toContain(
      '"limits.window" expected an integer in [0, 256], got 1000',
    );
    expect(errorOf({ ...DEVICE_ADD_OUTPUT, rootPublicKey: 'xyz' })).toContain('"rootPublicKey"');
    expect(errorOf({ ...DEVICE_ADD_OUTPUT, deviceId: 'a/b' })).toContain('"deviceId"');
    expect(errorOf({ ...DEVICE_ADD_OUTPUT, installer: { type: 'rauc' } })).toContain(
      '"installer.type"',
    );
    expect(errorOf({ ...DEVICE_ADD_OUTPUT, hooks: { nap: 'true' } })).toContain('"hooks.nap"');
  });

  it('never echoes the password', () => {
    expect(errorOf({ ...DEVICE_ADD_OUTPUT, password: '' })).not.toContain('s3cret');
    expect(errorOf({ ...DEVICE_ADD_OUTPUT, password: 42 })).toContain('(hidden)');
  });

  it('requires a command installer to name its install command', () => {
    expect(errorOf({ ...DEVICE_ADD_OUTPUT, installer: { type: 'command' } })).toContain(
      '"installer.install"',
    );
  });
});
