/**
 * A bound on each client's queue of QoS 1 messages in aedes' persistence. aedes keeps every
 * QoS 1 message for an offline persistent session without limit; with this bound a message
 * beyond `maxQueuedPerClient` is not queued for that client (the newest is dropped). What the
 * server sends at QoS 1 is either retained (the manifest, which a resubscribing device gets
 * again) or an ACK_RESP that the device obtains again by re-sending its idempotent ACK_REQ.
 */
import type { Readable } from 'node:stream';

/** A subscription as aedes hands it to the persistence. */
interface QueuedSub {
  readonly clientId: string;
}

/** The part of an aedes persistence that the bound wraps. */
export interface OutgoingQueues {
  outgoingEnqueue(sub: QueuedSub, packet: { topic: string }): Promise<unknown>;
  outgoingEnqueueCombi(subs: QueuedSub[], packet: { topic: string }): Promise<unknown>;
  outgoingStream(client: { id: string }): Readable;
}

/** Wraps the persistence's enqueue methods in place; `onDrop` is told of each message dropped. */
export function boundOutgoingQueues(
  persistence: OutgoingQueues,
  maxQueuedPerClient: number,
  onDrop: (clientId: string, topic: string) => void,
): void {
  const enqueueOne = persistence.outgoingEnqueue.bind(persistence);
  const enqueueMany = persistence.outgoingEnqueueCombi.bind(persistence);

  // The queue is bounded, so counting it on each enqueue costs at most the bound.
  const queued = async (clientId: string): Promise<number> => {
    let n = 0;
    for await (const _packet of persistence.outgoingStream({ id: clientId })) n++;
    return n;
  };
  const admit = async (subs: readonly QueuedSub[], topic: string): Promise<QueuedSub[]> => {
    const kept: QueuedSub[] = [];
    for (const sub of subs) {
      if ((await queued(sub.clientId)) < maxQueuedPerClient) kept.push(sub);
      else onDrop(sub.clientId, topic);
    }
    return kept;
  };

  persistence.outgoingEnqueue = async (sub, packet) => {
    const kept = await admit([sub], packet.topic);
    if (kept.length > 0) await enqueueOne(sub, packet);
  };
  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    const kept = await admit(subs, packet.topic);
    if (kept.length > 0) await enqueueMany(kept, packet);
  };
}
