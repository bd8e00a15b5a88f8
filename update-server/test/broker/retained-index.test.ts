import { Readable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { RetainedIndex, indexRetained } from '../../src/broker/retained-index.js';
import { topicMatches } from '../../src/broker/topic-match.js';

const TOPICS = [
  'fb/v1/d/dev-1/in/manifest',
  'fb/v1/d/dev-1/out/presence',
  'fb/v1/d/dev-2/in/manifest',
  'fb/v1/d/dev-2/in',
  'fb/v1/d/dev-10/in/manifest',
  'fb/v2/d/dev-1/in/manifest',
  'other',
  '$SYS/broker/uptime',
];

const FILTERS = [
  'fb/v1/d/dev-1/in/#',
  'fb/v1/d/dev-2/in/#',
  'fb/v1/d/dev-1/in/manifest',
  'fb/v1/d/+/in/manifest',
  'fb/v1/d/dev-1/+/presence',
  'fb/v1/d/dev-1',
  'fb/+/d/dev-1/in/manifest',
  '#',
  '+',
  '+/broker/uptime',
  '$SYS/#',
  'nothing/here',
];

function filled(): RetainedIndex {
  const index = new RetainedIndex();
  for (const topic of TOPICS) index.store({ topic, payload: Buffer.from(topic) });
  return index;
}

const topicsOf = (index: RetainedIndex, filters: string[]) =>
  [...index.matching(filters)].map((p) => p.topic).sort();

describe('retained message index', () => {
  it('finds for every filter exactly the topics a full scan finds', () => {
    const index = filled();
    for (const filter of FILTERS) {
      const scanned = TOPICS.filter((t) => topicMatches(filter, t)).sort();
      expect(topicsOf(index, [filter]), filter).toEqual(scanned);
    }
  });

  it('gives each topic once when several filters match it', () => {
    const index = filled();
    expect(topicsOf(index, ['fb/v1/d/dev-1/in/#', 'fb/v1/d/+/in/manifest'])).toEqual([
      'fb/v1/d/dev-1/in/manifest',
      'fb/v1/d/dev-10/in/manifest',
      'fb/v1/d/dev-2/in/manifest',
    ]);
  });

  it('forgets a topic whose retained payload is cleared, and keeps the newest payload', () => {
    const index = filled();
    index.store({ topic: 'fb/v1/d/dev-1/in/manifest', payload: Buffer.alloc(0) });
    index.store({ topic: 'fb/v1/d/dev-2/in/manifest', payload: Buffer.from('new') });
    expect(topicsOf(index, ['fb/v1/d/dev-1/in/#'])).toEqual([]);
    const [latest] = index.matching(['fb/v1/d/dev-2/in/manifest']);
    expect(Buffer.from(latest!.payload).toString()).toBe('new');
    expect(index.size).toBe(TOPICS.length - 1);
  });

  it('replaces the lookups of a persistence and still stores through it', async () => {
    const stored: string[] = [];
    const persistence = {
      storeRetained: async (p: { topic: string }) => void stored.push(p.topic),
      createRetainedStream: () => Readable.from([]),
      createRetainedStreamCombi: () => Readable.from([]),
    };
    indexRetained(persistence);
    await persistence.storeRetained({ topic: 'a/b', payload: Buffer.from('x') });
    const got = await persistence.createRetainedStreamCombi(['a/#', 'a/b']).toArray();
    expect(stored).toEqual(['a/b']);
    expect(got.map((p: { topic: string }) => p.topic)).toEqual(['a/b']);
  });
});
