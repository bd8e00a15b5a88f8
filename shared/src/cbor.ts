/**
 * CBOR for Fetchback: a deterministic encoder (RFC 8949 §4.2.1 core deterministic encoding)
 * and a bounded decoder for untrusted bytes.
 *
 * Decoding happens in two steps. A structural scan checks well-formedness, nesting depth,
 * item counts and that every declared length fits in the bytes that remain, so that no
 * declared size can make the decoder allocate more than the payload itself. Only then does
 * cbor-x build the JavaScript value.
 */
import { Decoder } from 'cbor-x';

import { fbError } from './errors.js';

/** A value that the deterministic encoder accepts. */
export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | Uint8Array
  | readonly CborValue[]
  | { readonly [key: string]: CborValue | undefined };

/** Limits applied while decoding untrusted CBOR. */
export interface CborLimits {
  /** Largest accepted payload, in bytes. */
  readonly maxBytes: number;
  /** Deepest accepted nesting of arrays and maps; the top-level item is depth 1. */
  readonly maxDepth: number;
  /** Most data items accepted in the whole payload. */
  readonly maxItems: number;
}

/** Defaults for messages other than chunk data: 1 MiB, depth 16, 65,536 items. */
export const DEFAULT_CBOR_LIMITS: CborLimits = Object.freeze({
  maxBytes: 1024 * 1024,
  maxDepth: 16,
  maxItems: 65_536,
});

const MAJOR_UINT = 0;
const MAJOR_NEGINT = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_SIMPLE = 7;

const textEncoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Encoding

/** Writes the head of a data item in its shortest form (RFC 8949 §4.2.1, rule 1). */
function head(major: number, value: number | bigint): Uint8Array {
  const m = major << 5;
  // Lengths and most integers fit 32 bits: no bigint for them (the hot path of every message).
  if (typeof value === 'number' && value >= 0 && value < 0x100000000) {
    if (value < 24) return Uint8Array.of(m | value);
    if (value < 0x100) return Uint8Array.of(m | 24, value);
    if (value < 0x10000) return Uint8Array.of(m | 25, value >> 8, value & 0xff);
    const out = new Uint8Array(5);
    out[0] = m | 26;
    new DataView(out.buffer).setUint32(1, value);
    return out;
  }
  const v = BigInt(value);
  if (v < 24n) return Uint8Array.of(m | Number(v));
  if (v < 0x100n) return Uint8Array.of(m | 24, Number(v));
  if (v < 0x10000n) {
    const n = Number(v);
    return Uint8Array.of(m | 25, n >> 8, n & 0xff);
  }
  if (v < 0x100000000n) {
    const out = new Uint8Array(5);
    out[0] = m | 26;
    new DataView(out.buffer).setUint32(1, Number(v));
    return out;
  }
  if (v <= 0xffffffffffffffffn) {
    const out = new Uint8Array(9);
    out[0] = m | 27;
    new DataView(out.buffer).setBigUint64(1, v);
    return out;
  }
  throw fbError('FB_ERR_ARGUMENT', 'integer does not fit in 64 bits');
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function encodeInto(value: CborValue, out: Uint8Array[]): void {
  if (value === null) {
    out.push(Uint8Array.of(0xf6));
  } else if (value === true || value === false) {
    out.push(Uint8Array.of(value ? 0xf5 : 0xf4));
  } else if (typeof value === 'number' || typeof value === 'bigint') {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw fbError('FB_ERR_ARGUMENT', `"number" expected a safe integer, got ${value}`);
    }
    if (typeof value === 'number' && value >= 0) out.push(head(MAJOR_UINT, value));
    else {
      const v = BigInt(value);
      out.push(v >= 0n ? head(MAJOR_UINT, v) : head(MAJOR_NEGINT, -1n - v));
    }
  } else if (typeof value === 'string') {
    const bytes = textEncoder.encode(value);
    out.push(head(MAJOR_TEXT, bytes.length), bytes);
  } else if (value instanceof Uint8Array) {
    out.push(head(MAJOR_BYTES, value.length), value);
  } else if (Array.isArray(value)) {
    out.push(head(MAJOR_ARRAY, value.length));
    for (const item of value as readonly CborValue[]) encodeInto(item, out);
  } else if (typeof value === 'object') {
    encodeMap(value as { readonly [key: string]: CborValue | undefined }, out);
  } else {
    throw fbError('FB_ERR_ARGUMENT', `"value" expected a CBOR value, got ${typeof value}`);
  }
}

function encodeMap(map: { readonly [key: string]: CborValue | undefined }, out: Uint8Array[]) {
  // Keys are ordered by the bytewise order of their encodings (RFC 8949 §4.2.1, rule 3).
  // Entries whose value is `undefined` are left out.
  const entries: { key: Uint8Array; value: Uint8Array[] }[] = [];
  for (const [k, v] of Object.entries(map)) {
    if (v === undefined) continue;
    const valueParts: Uint8Array[] = [];
    encodeInto(v, valueParts);
    entries.push({ key: encodedKey(k), value: valueParts });
  }
  entries.sort((a, b) => compareBytes(a.key, b.key));
  out.push(head(MAJOR_MAP, entries.length));
  for (const e of entries) out.push(e.key, ...e.value);
}

/** Encoded map keys: messages use a few dozen keys, encoded once each (read only, shared). */
const KEY_CACHE_ENTRIES = 512;
const KEY_CACHE_LENGTH = 64;
const encodedKeys = new Map<string, Uint8Array>();

/** The encoding of a text-string map key. */
function encodedKey(key: string): Uint8Array {
  const known = encodedKeys.get(key);
  if (known) return known;
  const parts: Uint8Array[] = [];
  encodeInto(key, parts);
  const encoded = concatBytes(parts);
  if (key.length <= KEY_CACHE_LENGTH && encodedKeys.size < KEY_CACHE_ENTRIES) {
    encodedKeys.set(key, encoded);
  }
  return encoded;
}

/** Concatenates byte arrays into one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * Encodes a value in the core deterministic encoding of RFC 8949 §4.2.1: shortest heads,
 * definite lengths, map keys sorted bytewise by their encodings. Map keys are text strings;
 * numbers must be safe integers (floating point never appears in Fetchback messages).
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for a value that has no deterministic encoding here.
 * @example
 * encodeDeterministic({ b: 1, a: 2 }); // a2 61 61 02 61 62 01
 */
export function encodeDeterministic(value: CborValue): Uint8Array {
  const parts: Uint8Array[] = [];
  encodeInto(value, parts);
  return concatBytes(parts);
}

/**
 * The head of a byte string of `length` bytes (major type 2, shortest form): what precedes
 * the bytes themselves. Lets a caller place large bytes after an encoding without copying
 * them twice.
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for a length that is not a non-negative safe integer.
 * @example
 * byteStringHead(65536); // 5a 00 01 00 00
 */
export function byteStringHead(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw fbError(
      'FB_ERR_ARGUMENT',
      `"length" expected a non-negative safe integer, got ${length}`,
    );
  }
  return head(MAJOR_BYTES, length);
}

// ---------------------------------------------------------------------------------------------
// Structural scan of untrusted bytes

interface ScanState {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  offset: number;
  items: number;
  readonly limits: CborLimits;
}

function need(s: ScanState, n: number): void {
  if (n > s.bytes.length - s.offset) {
    throw fbError('FB_ERR_CBOR_MALFORMED', `truncated at byte ${s.offset}`);
  }
}

/** Reads a head's argument; returns it as a number (lengths above 2^53 are refused). */
function readArgument(s: ScanState, info: number): number {
  if (info < 24) return info;
  if (info === 24) {
    need(s, 1);
    return s.view.getUint8(s.offset++);
  }
  if (info === 25) {
    need(s, 2);
    const v = s.view.getUint16(s.offset);
    s.offset += 2;
    return v;
  }
  if (info === 26) {
    need(s, 4);
    const v = s.view.getUint32(s.offset);
    s.offset += 4;
    return v;
  }
  if (info === 27) {
    need(s, 8);
    const v = s.view.getBigUint64(s.offset);
    s.offset += 8;
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }
  if (info === 31) throw fbError('FB_ERR_CBOR_UNSUPPORTED', 'indefinite lengths are not used');
  throw fbError('FB_ERR_CBOR_MALFORMED', `reserved additional information ${info}`);
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function utf8(bytes: Uint8Array): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw fbError('FB_ERR_CBOR_MALFORMED', 'text string is not valid UTF-8');
  }
}

/**
 * A map key must be unique (RFC 8949 §5.6): decoders that keep the first of two equal keys and
 * decoders that keep the last would disagree about what was signed. `__proto__` is refused
 * because it would set an object's prototype instead of a field.
 */
function checkKey(keys: Set<string>, key: string | undefined): void {
  if (key === undefined) return;
  if (key === '__proto__') throw fbError('FB_ERR_CBOR_UNSUPPORTED', 'key "__proto__"');
  if (keys.has(key)) {
    throw fbError('FB_ERR_CBOR_MALFORMED', `duplicate map key ${JSON.stringify(key.slice(0, 32))}`);
  }
  keys.add(key);
}

/** Scans one data item; returns its text when it is a text string (map keys need it). */
function scanItem(s: ScanState, depth: number, isMapKey: boolean): string | undefined {
  if (++s.items > s.limits.maxItems) {
    throw fbError('FB_ERR_CBOR_TOO_MANY_ITEMS', `more than ${s.limits.maxItems} items`);
  }
  need(s, 1);
  const initial = s.view.getUint8(s.offset++);
  const major = initial >> 5;
  const info = initial & 0x1f;
  if (isMapKey && major !== MAJOR_TEXT) {
    throw fbError('FB_ERR_CBOR_UNSUPPORTED', 'map keys must be text strings');
  }
  switch (major) {
    case MAJOR_UINT:
    case MAJOR_NEGINT:
      readArgument(s, info);
      return undefined;
    case MAJOR_BYTES:
    case MAJOR_TEXT: {
      const length = readArgument(s, info);
      need(s, length);
      const start = s.offset;
      s.offset += length;
      // RFC 8949 §5.3.1: a text string must be valid UTF-8. Decoders that replace bad bytes
      // would disagree with decoders that refuse them about what was signed.
      if (major === MAJOR_TEXT) return utf8(s.bytes.subarray(start, s.offset));
      return undefined;
    }
    case MAJOR_ARRAY:
    case MAJOR_MAP: {
      if (depth >= s.limits.maxDepth) {
        throw fbError('FB_ERR_CBOR_TOO_DEEP', `deeper than ${s.limits.maxDepth}`);
      }
      const count = readArgument(s, info);
      const perEntry = major === MAJOR_MAP ? 2 : 1;
      // Every item takes at least one byte, so a count above what remains is a lie.
      if (count * perEntry > s.bytes.length - s.offset) {
        if (count > s.limits.maxItems) {
          throw fbError('FB_ERR_CBOR_TOO_MANY_ITEMS', `declares ${count} items`);
        }
        throw fbError('FB_ERR_CBOR_MALFORMED', `declares ${count} items, too few bytes follow`);
      }
      const keys = major === MAJOR_MAP ? new Set<string>() : undefined;
      for (let i = 0; i < count; i++) {
        if (keys) checkKey(keys, scanItem(s, depth + 1, true));
        scanItem(s, depth + 1, false);
      }
      return undefined;
    }
    case MAJOR_SIMPLE:
      if (info >= 20 && info <= 22) return undefined; // false, true, null
      if (info >= 25 && info <= 27) {
        need(s, 1 << (info - 24));
        s.offset += 1 << (info - 24);
        return undefined;
      }
      throw fbError('FB_ERR_CBOR_UNSUPPORTED', `simple value ${info}`);
    default:
      throw fbError('FB_ERR_CBOR_UNSUPPORTED', 'tags are not used');
  }
}

/**
 * Checks that `bytes` hold exactly one well-formed CBOR item within `limits`, without
 * building it.
 *
 * @throws FetchbackError `FB_ERR_CBOR_*` naming the first fault found.
 */
export function scanCbor(bytes: Uint8Array, limits: CborLimits = DEFAULT_CBOR_LIMITS): void {
  if (bytes.length > limits.maxBytes) {
    throw fbError('FB_ERR_CBOR_TOO_LARGE', `${bytes.length} bytes, limit ${limits.maxBytes}`);
  }
  if (bytes.length === 0) throw fbError('FB_ERR_CBOR_MALFORMED', 'empty payload');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const state: ScanState = { bytes, view, offset: 0, items: 0, limits };
  scanItem(state, 0, false);
  if (state.offset !== bytes.length) {
    throw fbError('FB_ERR_CBOR_MALFORMED', `${bytes.length - state.offset} trailing bytes`);
  }
}

// `int64AsType` is a decoder option that cbor-x's typings do not list.
const decoder = new Decoder({
  mapsAsObjects: true,
  useRecords: false,
  int64AsType: 'bigint',
} as ConstructorParameters<typeof Decoder>[0]);

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * cbor-x returns a bigint for every integer written with an 8-byte head, even a small one
 * (Unix milliseconds need that head). Callers expect numbers, so bigints that fit a safe
 * integer become numbers; larger ones stay bigints, which field checks refuse as out of range
 * and unknown fields keep exactly.
 */
function safeIntegers(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= -MAX_SAFE && value <= MAX_SAFE ? Number(value) : value;
  }
  if (value instanceof Uint8Array || typeof value !== 'object' || value === null) return value;
  const container = value as Record<string, unknown>;
  for (const key of Object.keys(container)) container[key] = safeIntegers(container[key]);
  return value;
}

/**
 * Decodes untrusted CBOR after a structural scan. Maps become plain objects, byte strings
 * become `Uint8Array` views that share memory with `bytes` (copy them before reusing `bytes`),
 * integers become numbers, or bigints beyond ±(2^53 - 1).
 *
 * @throws FetchbackError `FB_ERR_CBOR_*` for anything that is not one well-formed item
 *   within `limits`.
 */
export function decodeCbor(bytes: Uint8Array, limits: CborLimits = DEFAULT_CBOR_LIMITS): unknown {
  scanCbor(bytes, limits);
  try {
    return safeIntegers(decoder.decode(bytes));
  } catch (err) {
    throw fbError('FB_ERR_CBOR_MALFORMED', err instanceof Error ? err.message : String(err));
  }
}
