/**
 * FETCH_RESP payloads that carry chunk data, laid out so that the chunk's bytes are written
 * once, straight into the payload, instead of being read into one buffer and copied by the
 * encoder into another: per 64 KiB chunk that second buffer was garbage which, at hundreds of
 * MB/s, kept the server's garbage collector marking several times a second.
 *
 * The deterministic encoding sorts map keys by their encoded bytes, shorter first
 * (`docs/protocol.md` §3.3); `data` is the longest key of a FETCH_RESP, so its entry is the
 * last one. The payload is therefore the encoding of the same response with an empty `data`,
 * without that empty byte string, then the head of the real one and its bytes: byte for byte
 * what `encodeFetchResponse` writes.
 */
import { byteStringHead, encodeFetchResponse, fbError } from '@fetchback/shared';

const EMPTY = new Uint8Array(0);
/** The text string "data" followed by an empty byte string. */
const EMPTY_DATA_ENTRY = Uint8Array.of(0x64, 0x64, 0x61, 0x74, 0x61, 0x40);

export interface ChunkFrame {
  /** The whole FETCH_RESP; its last `data.length` bytes are still to be filled. */
  readonly payload: Uint8Array;
  /** The view of `payload` where the chunk's bytes go. */
  readonly data: Uint8Array;
}

/**
 * A FETCH_RESP for chunk `idx` of `dataBytes` bytes, with room for the bytes at its end.
 *
 * @throws FetchbackError `FB_ERR_INTERNAL` if the `data` entry were not encoded last.
 */
export function chunkFrame(rid: number, obj: Uint8Array, idx: number, dataBytes: number) {
  const empty = encodeFetchResponse({ rid, obj, idx, data: EMPTY });
  const prefixBytes = empty.length - 1;
  if (!endsWith(empty, EMPTY_DATA_ENTRY)) {
    throw fbError('FB_ERR_INTERNAL', 'the data entry of a FETCH_RESP is not encoded last');
  }
  const head = byteStringHead(dataBytes);
  const buffer = Buffer.allocUnsafe(prefixBytes + head.length + dataBytes);
  const payload = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
  payload.set(empty.subarray(0, prefixBytes));
  payload.set(head, prefixBytes);
  return { payload, data: payload.subarray(prefixBytes + head.length) } satisfies ChunkFrame;
}

function endsWith(bytes: Uint8Array, tail: Uint8Array): boolean {
  const start = bytes.length - tail.length;
  return start >= 0 && tail.every((b, i) => bytes[start + i] === b);
}
