// The requesting side of the plain-TCP baseline (bench/lib/baselines.mjs, tcpFetchTransfer), in
// a process of its own as Fetchback's agent is. It does the agent's own work on every byte
// with none of MQTT, CBOR or the protocol around it: keeps `window` requests in flight (a
// 4-byte chunk index each), hashes every chunk with SHA-256 on arrival, writes it to a slot
// file at its offset, reads the slot back in 512 KiB pieces as soon as they are written and
// hashes them into the whole-image SHA-256, which it compares with the expected digest at the
// end. Everything runs on the main thread, as the agent's does. Sends 'done' or an error.
//
// `work` stops short of all that, to show what each step costs: `receive` (the chunks only),
// `hash` (each chunk hashed), `write` (hashed and written); `verify`, the default, is all of
// it, and the only one that checks the image digest.
//
//   node tcp-fetch-client.mjs <port> <totalBytes> <chunkBytes> <window> <slotFile> <digestHex>
//                             [receive|hash|write|verify]
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { connect } from 'node:net';

const [portArg, totalArg, chunkArg, windowArg, slotFile, digestHex, work = 'verify'] =
  process.argv.slice(2);
const STEPS = ['receive', 'hash', 'write', 'verify'];
if (!STEPS.includes(work)) throw new Error(`work: one of ${STEPS.join(', ')}, got ${work}`);
const [hashing, writing, verifying] = STEPS.slice(1).map(
  (step) => STEPS.indexOf(work) >= STEPS.indexOf(step),
);
const [port, total, chunkBytes, window] = [portArg, totalArg, chunkArg, windowArg].map(Number);
const chunks = Math.ceil(total / chunkBytes);
const PIECE = 512 * 1024;

const fd = openSync(slotFile, 'w+');
const socket = connect(port, '127.0.0.1');
socket.setNoDelay(true);
await new Promise((resolve) => socket.once('connect', resolve));

let next = 0;
let received = 0;
/** The chunk being received, and how many of its bytes have arrived. */
const chunk = Buffer.allocUnsafe(chunkBytes);
let filled = 0;
/** Chunks written, by index, and the length of the slot written without a gap from its start. */
const written = new Uint8Array(chunks);
let contiguous = 0;
const whole = createHash('sha256');
let hashedBytes = 0;
const piece = Buffer.allocUnsafe(PIECE);

const ask = () => {
  if (next >= chunks) return;
  const request = Buffer.allocUnsafe(4);
  request.writeUInt32BE(next++);
  socket.write(request);
};
const lengthOf = (index) => Math.min(chunkBytes, total - index * chunkBytes);

/** Reads back and hashes every whole piece of the slot written so far (all of it at the end). */
function readBack() {
  const end = contiguous * chunkBytes >= total ? total : contiguous * chunkBytes;
  while (end - hashedBytes >= PIECE || (end === total && hashedBytes < total)) {
    const length = Math.min(PIECE, end - hashedBytes);
    readSync(fd, piece, 0, length, hashedBytes);
    whole.update(piece.subarray(0, length));
    hashedBytes += length;
  }
}

function onChunk(index, bytes) {
  if (hashing) createHash('sha256').update(bytes).digest();
  if (writing) writeSync(fd, bytes, 0, bytes.length, index * chunkBytes);
  if (verifying) {
    written[index] = 1;
    while (contiguous < chunks && written[contiguous]) contiguous++;
    readBack();
  }
  received++;
  if (received < chunks) return ask();
  closeSync(fd);
  socket.end();
  if (!verifying) return process.send?.('done');
  const digest = whole.digest('hex');
  process.send?.(digest === digestHex ? 'done' : `digest ${digest}, expected ${digestHex}`);
}

// Responses arrive in request order on the one connection: chunk `received` is the next.
socket.on('data', (data) => {
  let offset = 0;
  while (offset < data.length) {
    const want = lengthOf(received) - filled;
    const take = Math.min(want, data.length - offset);
    data.copy(chunk, filled, offset, offset + take);
    filled += take;
    offset += take;
    if (filled === lengthOf(received)) {
      const index = received;
      filled = 0;
      // Hashed and written before this returns: the one buffer serves every chunk.
      onChunk(index, chunk.subarray(0, lengthOf(index)));
    }
  }
});
process.on('message', () => {
  for (let i = 0; i < window; i++) ask();
});
process.send?.('ready');
