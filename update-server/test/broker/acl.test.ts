import { Topics } from '@fetchback/shared';
import { describe, expect, it } from 'vitest';

import { checkConnect, checkPublish, checkSubscribe, mayForward } from '../../src/broker/acl.js';
import { topicMatches } from '../../src/broker/topic-match.js';

const topics = new Topics();
const devices = {
  authenticate: async (id: string, secret: string) => id === 'dev-a' && secret === 's3',
};
const pw = (s: string) => Buffer.from(s);

describe('broker ACL', () => {
  it('accepts a device whose client id equals its username and whose secret matches', async () => {
    expect(await checkConnect('dev-a', 'dev-a', pw('s3'), devices)).toBeUndefined();
  });

  it('refuses no credentials, a wrong secret and a non-device username', async () => {
    expect((await checkConnect('dev-a', undefined, undefined, devices))?.code).toBe(
      'FB_ERR_BROKER_AUTH',
    );
    expect((await checkConnect('dev-a', 'dev-a', pw('nope'), devices))?.code).toBe(
      'FB_ERR_BROKER_AUTH',
    );
    expect((await checkConnect('a/#', 'a/#', pw('s3'), devices))?.code).toBe('FB_ERR_BROKER_AUTH');
    expect((await checkConnect('dev-a', 'dev-a', Buffer.alloc(1000), devices))?.code).toBe(
      'FB_ERR_BROKER_AUTH',
    );
  });

  it('refuses a client id that differs from the username', async () => {
    const refusal = await checkConnect('other', 'dev-a', pw('s3'), devices);
    expect(refusal?.code).toBe('FB_ERR_CLIENT_ID_MISMATCH');
    expect(refusal?.returnCode).toBe(2);
  });

  it('lets a device publish only on its own out/ topics', () => {
    for (const leaf of ['fetch', 'ack', 'status', 'presence']) {
      expect(checkPublish(topics, 'dev-a', `fb/v1/d/dev-a/out/${leaf}`, false)).toBeUndefined();
    }
    expect(checkPublish(topics, 'dev-a', 'fb/v1/d/dev-b/out/ack', false)?.code).toBe(
      'FB_ERR_TOPIC_FORBIDDEN',
    );
    expect(checkPublish(topics, 'dev-a', 'fb/v1/d/dev-a/in/manifest', false)?.code).toBe(
      'FB_ERR_TOPIC_FORBIDDEN',
    );
    expect(checkPublish(topics, 'dev-a', 'fb/v1/d/dev-a/out/other', false)?.code).toBe(
      'FB_ERR_TOPIC_FORBIDDEN',
    );
    expect(checkPublish(topics, 'dev-a', 'anything', false)?.code).toBe('FB_ERR_TOPIC_FORBIDDEN');
  });

  it('refuses every $-prefixed topic [MQTT-4.7.2-1]', () => {
    expect(checkPublish(topics, 'dev-a', '$SYS/x', false)?.code).toBe('FB_ERR_TOPIC_FORBIDDEN');
    expect(checkSubscribe(topics, 'dev-a', '$SYS/#')?.code).toBe('FB_ERR_TOPIC_FORBIDDEN');
    expect(checkSubscribe(topics, 'dev-a', '$share/g/fb/v1/d/dev-a/in/#')?.code).toBe(
      'FB_ERR_TOPIC_FORBIDDEN',
    );
  });

  it('allows a retained publish only on out/presence', () => {
    expect(checkPublish(topics, 'dev-a', 'fb/v1/d/dev-a/out/presence', true)).toBeUndefined();
    expect(checkPublish(topics, 'dev-a', 'fb/v1/d/dev-a/out/status', true)?.code).toBe(
      'FB_ERR_RETAIN_FORBIDDEN',
    );
  });

  it('accepts an orphan last will only on the presence topic it names', () => {
    expect(checkPublish(topics, undefined, 'fb/v1/d/dev-a/out/presence', true)).toBeUndefined();
    expect(checkPublish(topics, undefined, 'fb/v1/d/dev-a/out/ack', false)?.code).toBe(
      'FB_ERR_TOPIC_FORBIDDEN',
    );
  });

  it('lets a device subscribe only to its own in/ filters', () => {
    for (const f of ['#', '+', 'manifest', 'chunk', 'ack']) {
      expect(checkSubscribe(topics, 'dev-a', `fb/v1/d/dev-a/in/${f}`)).toBeUndefined();
    }
    for (const f of [
      '#',
      'fb/#',
      'fb/v1/d/+/in/#',
      'fb/v1/d/dev-b/in/#',
      'fb/v1/d/dev-a/#',
      'fb/v1/d/dev-a/out/#',
      'fb/v1/d/dev-a/+/ack',
    ]) {
      expect(checkSubscribe(topics, 'dev-a', f)?.code).toBe('FB_ERR_TOPIC_FORBIDDEN');
    }
  });

  it('forwards to a device only its own in/ topics', () => {
    expect(mayForward(topics, 'dev-a', 'fb/v1/d/dev-a/in/chunk')).toBe(true);
    expect(mayForward(topics, 'dev-a', 'fb/v1/d/dev-b/in/chunk')).toBe(false);
    expect(mayForward(topics, 'dev-a', 'fb/v1/d/dev-a/out/ack')).toBe(false);
    expect(mayForward(topics, 'dev-a', '$SYS/broker/heartbeat')).toBe(false);
  });
});

describe('topic filter matching', () => {
  it('matches + as one level and # as the rest [MQTT-4.7.1-2]', () => {
    expect(topicMatches('fb/v1/d/+/out/fetch', 'fb/v1/d/x/out/fetch')).toBe(true);
    expect(topicMatches('fb/v1/d/+/out/fetch', 'fb/v1/d/x/out/ack')).toBe(false);
    expect(topicMatches('fb/#', 'fb/v1/d/x')).toBe(true);
    expect(topicMatches('fb/v1/+', 'fb/v1/d/x')).toBe(false);
    expect(topicMatches('#', '$SYS/x')).toBe(false);
  });
});
