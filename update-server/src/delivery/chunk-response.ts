/**
 * FETCH_RESP payloads that carry chunk data, as two parts: a head, then the chunk's bytes
 * exactly as the chunk cache holds them. The bytes are never copied into a payload of their
 * own: per 256 KiB chunk that copy was a fresh buffer which, at hundreds of MB/s, kept the
 * server's garbage collector marking several times a second, and a fleet fetching one release
 * shares each cached chunk instead of copying it once per device.
 *
 * The deterministic encoding sorts map keys by their encoded bytes, shorter first
 * (`docs/protocol.md` §3.3); `data` is the longest key of a FETCH_RESP, so its entry is the
 * last one. The head is therefore the encoding of the same response with an empty `data`,
 * without that empty byte string, followed by the head of the real one: head and bytes
 * together are byte for byte what `encodeFetchResponse` writes.
 */
import { byteStringHead, encodeFetchResponse, fbError } from '@fetchback/shared';

const EMPTY = new Uint8Array(0);
/** The text string "data" followed by an empty byte string. */
const EMPTY_DATA_ENTRY = Uint8Array.of(0x64, 0x64, 0x61, 0x74, 0x61, 0x40);

/**
 * The bytes of a FETCH_RESP for chunk `idx` that come before its `dataBytes` bytes of data.
 *
 * @throws FetchbackError `FB_ERR_INTERNAL` if the `data` entry were not encoded last.
 */
export function chunkResponseHead(
  rid: number,
  obj: Uint8Array,
  idx: number,
  dataBytes: number,
): Uint8Array {
  const empty = encodeFetchResponse({ rid, obj, idx, data: EMPTY });
  const prefixBytes = empty.length - 1;
  if (!endsWith(empty, EMPTY_DATA_ENTRY)) {
    throw fbError('FB_ERR_INTERNAL', 'the data entry of a FETCH_RESP is not encoded last');
  }
  const lengthHead = byteStringHead(dataBytes);
  const out = new Uint8Array(prefixBytes + lengthHead.length);
  out.set(empty.subarray(0, prefixBytes));
  out.set(lengthHead, prefixBytes);
  return out;
}

function endsWith(bytes: Uint8Array, tail: Uint8Array): boolean {
  const start = bytes.length - tail.length;
  return start >= 0 && tail.every((b, i) => bytes[start + i] === b);
}
