// The requesting side of the raw-fetch baseline (bench/lib/baselines.mjs, rawFetchTransfer), in
// a process of its own as Fetchback's agent is: asks for `window` chunks by index on
// `bench/req`, one more for each that arrives on `bench/resp`, and hashes each with SHA-256 as
// the agent verifies it. No CBOR, no chunk table, no slot, no state: the fetch pattern alone.
//
//   node raw-fetch-client.mjs <port> <chunks> <window>      (started by rawFetchTransfer)
import { createHash } from 'node:crypto';

import mqtt from 'mqtt';

const [port, chunks, window] = process.argv.slice(2).map(Number);
const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'raw-fetch' });
client.stream.setNoDelay(true);
await client.subscribeAsync('bench/resp', { qos: 0 });

let next = 0;
let received = 0;
const ask = (n) => {
  const indices = [];
  while (indices.length < n && next < chunks) indices.push(next++);
  if (indices.length > 0) client.publish('bench/req', Buffer.from(JSON.stringify(indices)));
};
client.on('message', (_topic, payload) => {
  createHash('sha256').update(payload).digest();
  received++;
  if (received === chunks) process.send?.('done');
  else ask(1);
});
process.on('message', () => ask(window));
process.send?.('ready');
