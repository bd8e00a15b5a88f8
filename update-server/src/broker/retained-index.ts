/**
 * An index over aedes' retained messages. Its in-memory persistence answers every SUBSCRIBE by
 * testing the filter against every retained topic: one manifest and one presence message are
 * retained per device, and every device subscribes, so a fleet's connects cost a number of
 * tests that grows with the square of the fleet (two seconds of the server's CPU at 1,000
 * devices, a quarter of its whole update). Here each retained topic is also filed under every
 * prefix of its levels, and a filter is tested only against the topics under its literal
 * prefix, the levels before its first wildcard: one device's own `in/` topics.
 */
import { Readable } from 'node:stream';

import { topicMatches } from './topic-match.js';

/** A retained packet as aedes stores it. */
interface RetainedPacket {
  readonly topic: string;
  readonly payload: Buffer | Uint8Array;
}

/** The part of an aedes persistence that the index wraps. */
export interface RetainedStore {
  storeRetained(packet: RetainedPacket): Promise<unknown>;
  createRetainedStream(pattern: string): Readable;
  createRetainedStreamCombi(patterns: string[]): Readable;
}

/**
 * Replaces the persistence's retained lookups in place with indexed ones. The persistence still
 * stores every retained packet as before (the index keeps a shallow copy beside it, the payload
 * shared), so anything else of aedes that reads its store is unchanged.
 */
export function indexRetained(persistence: RetainedStore): void {
  const index = new RetainedIndex();
  const store = persistence.storeRetained.bind(persistence);

  persistence.storeRetained = async (packet) => {
    await store(packet);
    index.store(packet);
  };
  persistence.createRetainedStream = (pattern) => Readable.from(index.matching([pattern]));
  persistence.createRetainedStreamCombi = (patterns) => Readable.from(index.matching(patterns));
}

export class RetainedIndex {
  private readonly retained = new Map<string, RetainedPacket>();
  /** Topic prefix (its first k levels, k from 1 to all) to the retained topics under it. */
  private readonly byPrefix = new Map<string, Set<string>>();

  /** Stores a copy of `packet`, or forgets its topic when the payload is empty [MQTT-3.3.1-10]. */
  store(packet: RetainedPacket): void {
    const { topic } = packet;
    if (packet.payload.length === 0) {
      if (this.retained.delete(topic)) this.unfile(topic);
      return;
    }
    if (!this.retained.has(topic)) this.file(topic);
    this.retained.set(topic, { ...packet });
  }

  /** The retained packets matching any of `filters`, each once, as aedes' own lookup gives. */
  *matching(filters: readonly string[]): Generator<RetainedPacket> {
    const seen = new Set<string>();
    for (const filter of filters) {
      for (const topic of this.candidates(filter)) {
        if (seen.has(topic) || !topicMatches(filter, topic)) continue;
        const packet = this.retained.get(topic);
        if (!packet) continue;
        seen.add(topic);
        yield packet;
      }
    }
  }

  get size(): number {
    return this.retained.size;
  }

  /** Every topic the filter could match: those under its levels before the first wildcard. */
  private candidates(filter: string): Iterable<string> {
    const levels = filter.split('/');
    const wild = levels.findIndex((level) => level === '+' || level === '#');
    if (wild === 0) return [...this.retained.keys()];
    const prefix = (wild === -1 ? levels : levels.slice(0, wild)).join('/');
    return [...(this.byPrefix.get(prefix) ?? [])];
  }

  private file(topic: string): void {
    for (const prefix of prefixesOf(topic)) {
      let topics = this.byPrefix.get(prefix);
      if (!topics) this.byPrefix.set(prefix, (topics = new Set()));
      topics.add(topic);
    }
  }

  private unfile(topic: string): void {
    for (const prefix of prefixesOf(topic)) {
      const topics = this.byPrefix.get(prefix);
      topics?.delete(topic);
      if (topics?.size === 0) this.byPrefix.delete(prefix);
    }
  }
}

/** `a`, `a/b`, `a/b/c` for `a/b/c`. */
function prefixesOf(topic: string): string[] {
  const levels = topic.split('/');
  return levels.map((_, i) => levels.slice(0, i + 1).join('/'));
}
