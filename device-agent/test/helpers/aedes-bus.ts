/**
 * A real aedes broker on a real socket (port 0), and a `Bus` that publishes and subscribes
 * in-process on it, so the responder is a peer on the same broker, not a mock of it.
 */
import { type AddressInfo, type Server, createServer } from 'node:net';

import { Aedes } from 'aedes';

import type { Bus } from './responder.js';

export interface RunningBroker {
  readonly url: string;
  readonly bus: Bus;
  close(): Promise<void>;
}

export async function startAedes(): Promise<RunningBroker> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const bus: Bus = {
    publish: (topic, payload, retain) =>
      broker.publish(
        {
          cmd: 'publish',
          topic,
          payload: Buffer.from(payload),
          // FETCH_RESP goes at QoS 0, as the server sends it: a lost chunk is re-requested.
          qos: topic.endsWith('/in/chunk') ? 0 : 1,
          retain,
          dup: false,
        },
        () => undefined,
      ),
    subscribe: (filter, handler) =>
      broker.subscribe(
        filter,
        (packet, done) => {
          handler(packet.topic, new Uint8Array(packet.payload as Buffer));
          done();
        },
        () => undefined,
      ),
  };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    bus,
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
