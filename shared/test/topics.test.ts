import { describe, expect, it } from 'vitest';

import {
  DEFAULT_TOPIC_PREFIX,
  IN_LEAVES,
  MAX_DEVICE_ID_LENGTH,
  OUT_LEAVES,
  Topics,
  assertDeviceId,
  isValidDeviceId,
} from '@fetchback/shared';

const code = (code: string) => expect.objectContaining({ code });

describe('topic builders (docs/protocol.md §2)', () => {
  const topics = new Topics();

  it('uses the default prefix fb/v1', () => {
    expect(DEFAULT_TOPIC_PREFIX).toBe('fb/v1');
    expect(topics.prefix).toBe('fb/v1');
  });

  it('builds every server-to-device topic as {prefix}/d/{id}/in/{leaf}', () => {
    expect(IN_LEAVES.map((leaf) => topics.in('dev-1', leaf))).toEqual([
      'fb/v1/d/dev-1/in/manifest',
      'fb/v1/d/dev-1/in/chunk',
      'fb/v1/d/dev-1/in/ack',
    ]);
  });

  it('builds every device-to-server topic as {prefix}/d/{id}/out/{leaf}', () => {
    expect(OUT_LEAVES.map((leaf) => topics.out('dev-1', leaf))).toEqual([
      'fb/v1/d/dev-1/out/fetch',
      'fb/v1/d/dev-1/out/ack',
      'fb/v1/d/dev-1/out/status',
      'fb/v1/d/dev-1/out/presence',
    ]);
  });

  it('builds the device subscription and the server wildcard subscriptions', () => {
    expect(topics.deviceInFilter('dev-1')).toBe('fb/v1/d/dev-1/in/#');
    expect(topics.allOut('ack')).toBe('fb/v1/d/+/out/ack');
  });

  it('honours a configured prefix', () => {
    const custom = new Topics('acme/ota/v1');
    expect(custom.in('a', 'manifest')).toBe('acme/ota/v1/d/a/in/manifest');
    expect(custom.parse('acme/ota/v1/d/a/out/status')).toEqual({
      deviceId: 'a',
      direction: 'out',
      leaf: 'status',
    });
    expect(custom.parse('fb/v1/d/a/out/status')).toBeUndefined();
  });

  const badPrefixes = ['', '/', 'fb/', '/fb', 'fb//v1', 'fb/+', 'fb/#', '$SYS', 'f b', 'fb/v1/'];
  for (const prefix of badPrefixes) {
    it(`refuses the prefix ${JSON.stringify(prefix)} with FB_ERR_ARGUMENT`, () => {
      expect(() => new Topics(prefix)).toThrow(code('FB_ERR_ARGUMENT'));
    });
  }
});

describe('topic parsers', () => {
  const topics = new Topics();

  it('parses every topic it builds back to the same parts', () => {
    for (const leaf of IN_LEAVES) {
      expect(topics.parse(topics.in('dev.1_a-B', leaf))).toEqual({
        deviceId: 'dev.1_a-B',
        direction: 'in',
        leaf,
      });
    }
    for (const leaf of OUT_LEAVES) {
      expect(topics.parseStrict(topics.out('X9', leaf))).toEqual({
        deviceId: 'X9',
        direction: 'out',
        leaf,
      });
    }
  });

  const foreign = [
    'fb/v1/d/dev-1/in/fetch',
    'fb/v1/d/dev-1/out/manifest',
    'fb/v1/d/dev-1/out/ack/extra',
    'fb/v1/d/dev-1/out',
    'fb/v1/d//out/ack',
    'fb/v1/d/+/out/ack',
    'fb/v1/d/#',
    'fb/v1/x/dev-1/out/ack',
    'fb/v2/d/dev-1/out/ack',
    'fb/v1/d/dev-1/sideways/ack',
    'fb/v1/d/$dev/out/ack',
    'fb/v1',
    '',
  ];
  for (const topic of foreign) {
    it(`does not take ${JSON.stringify(topic)} for a device topic (FB_ERR_TOPIC_INVALID)`, () => {
      expect(topics.parse(topic)).toBeUndefined();
      expect(() => topics.parseStrict(topic)).toThrow(code('FB_ERR_TOPIC_INVALID'));
    });
  }
});

describe('device ids [MQTT-4.7.1-1] [MQTT-4.7.2-1]', () => {
  const good = ['a', 'A', '0', 'dev-0001', 'rpi4.kitchen_2', 'x'.repeat(MAX_DEVICE_ID_LENGTH)];
  for (const id of good) {
    it(`accepts ${JSON.stringify(id.length > 20 ? `${id.length} characters` : id)}`, () => {
      expect(isValidDeviceId(id)).toBe(true);
      expect(assertDeviceId(id)).toBe(id);
    });
  }

  const bad: [string, unknown][] = [
    ['the wildcard +', 'dev+1'],
    ['only +', '+'],
    ['the wildcard #', 'dev#'],
    ['only #', '#'],
    ['a level separator /', 'dev/1'],
    ['a leading $', '$SYS'],
    ['a $ inside', 'a$b'],
    ['a leading -', '-dev'],
    ['a leading .', '.dev'],
    ['a leading _', '_dev'],
    ['too many characters', 'x'.repeat(MAX_DEVICE_ID_LENGTH + 1)],
    ['the empty string', ''],
    ['a space', 'dev 1'],
    ['a NUL character', 'dev\u0000'],
    ['a trailing newline', 'dev\n'],
    ['unicode letters', 'gerät'],
    ['an emoji', 'dev-🚀'],
    ['a fullwidth plus', 'dev＋1'],
    ['a number, not text', 42],
    ['undefined', undefined],
  ];
  for (const [what, id] of bad) {
    it(`refuses a device id with ${what} with FB_ERR_DEVICE_ID_INVALID`, () => {
      expect(isValidDeviceId(id)).toBe(false);
      expect(() => assertDeviceId(id)).toThrow(code('FB_ERR_DEVICE_ID_INVALID'));
    });
  }

  it('refuses to build a topic for an invalid device id', () => {
    const topics = new Topics();
    expect(() => topics.in('dev+', 'manifest')).toThrow(code('FB_ERR_DEVICE_ID_INVALID'));
    expect(() => topics.out('a/b', 'ack')).toThrow(code('FB_ERR_DEVICE_ID_INVALID'));
    expect(() => topics.deviceInFilter('#')).toThrow(code('FB_ERR_DEVICE_ID_INVALID'));
  });
});
