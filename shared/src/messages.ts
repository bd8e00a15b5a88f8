/**
 * Codecs for every Fetchback message (`docs/protocol.md` §3-§4). Messages are CBOR maps with
 * text keys; `v` is the major protocol version and `t` the message type. Decoders check every
 * type, length and bound, keep unknown fields, and refuse an unknown major version.
 */
import { type CborLimits, type CborValue, decodeCbor, encodeDeterministic } from './cbor.js';
import { DIGEST_BYTES } from './digest.js';
import { fbError } from './errors.js';
import {
  type Fields,
  arrayField,
  asMap,
  boolField,
  bytesField,
  checkUint,
  enumField,
  mapField,
  optBytesField,
  optTextField,
  optUintField,
  textField,
  uintField,
} from './fields.js';
import { isValidDeviceId } from './topics.js';

/** The major protocol version this package speaks. */
export const PROTOCOL_VERSION = 1;

/** Bounds that are part of the protocol (`docs/protocol.md` §9). */
export const LIMITS = Object.freeze({
  /** Largest manifest message, in bytes. */
  maxManifestBytes: 64 * 1024,
  /** Largest control message (FETCH_REQ, ACK_REQ, ACK_RESP, STATUS, PRESENCE), in bytes. */
  maxControlBytes: 16 * 1024,
  /** Smallest and largest chunk size, in bytes. */
  minChunkBytes: 1024,
  maxChunkBytes: 1024 * 1024,
  /** Largest FETCH_RESP: one chunk plus room for the other fields. */
  maxFetchRespBytes: 1024 * 1024 + 4096,
  /** Largest image a release statement may declare (1 TiB). */
  maxImageBytes: 2 ** 40,
  /** Most chunk indices listed in one FETCH_REQ. */
  maxWindow: 256,
  /** Longest bitmap of missing chunks in one FETCH_REQ, in bytes (65,536 chunks). */
  maxBitmapBytes: 8192,
  /** Most key certificates in one manifest, and most signatures on a release statement. */
  maxCertificates: 16,
  maxSignatures: 8,
  /** Text bounds, in characters. */
  maxNameLength: 64,
  maxVersionLength: 64,
  maxClassLength: 64,
  maxRequestIdLength: 64,
  maxCodeLength: 64,
  maxStateLength: 32,
  maxDetailLength: 256,
});

/** ed25519 signature length, in bytes. */
export const SIGNATURE_BYTES = 64;
/** ed25519 public key length, in bytes. */
export const PUBLIC_KEY_BYTES = 32;

const TOKEN_PATTERN = /^[A-Za-z0-9._:-]+$/;
const CLASS_PATTERN = /^[A-Za-z0-9._-]+$/;

/** Roles a key certificate can grant. */
export const KEY_ROLES = ['release', 'assignment'] as const;
export type KeyRole = (typeof KEY_ROLES)[number];

/** Steps a device acknowledges in ACK_REQ. */
export const ACK_STEPS = [
  'downloaded',
  'installed',
  'committed',
  'rolled_back',
  'rejected',
  'failed',
] as const;
export type AckStep = (typeof ACK_STEPS)[number];

/** Message types (`t`). */
export const MESSAGE_TYPES = [
  'manifest',
  'fetch_req',
  'fetch_resp',
  'ack_req',
  'ack_resp',
  'status',
  'presence',
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** Object kinds a FETCH_REQ can name: the image itself or its chunk table. */
export type UnknownFields = { readonly [key: string]: unknown };

// ---------------------------------------------------------------------------------------------
// Types

/** A signature and the id of the key that made it. */
export interface Signature {
  /** Key id: SHA-256 of the signer's public key. */
  readonly kid: Uint8Array;
  readonly sig: Uint8Array;
}

export interface KeyCertificateBody extends UnknownFields {
  /** Key id of the certified key. */
  readonly kid: Uint8Array;
  /** The certified ed25519 public key. */
  readonly pub: Uint8Array;
  readonly role: KeyRole;
  /** Key id of the issuing root key. */
  readonly iss: Uint8Array;
  /** Issued at and expires at, Unix seconds. */
  readonly iat: number;
  readonly exp: number;
}

export interface KeyCertificate {
  readonly body: KeyCertificateBody;
  readonly sig: Signature;
}

export interface ReleaseBody extends UnknownFields {
  readonly name: string;
  readonly ver: string;
  /** Security version: devices refuse releases below the highest they installed. */
  readonly secv: number;
  /** Hardware class. */
  readonly hw: string;
  /** Image length, in bytes. */
  readonly size: number;
  /** SHA-256 of the whole image. */
  readonly digest: Uint8Array;
  /** Chunk size, in bytes. */
  readonly cbytes: number;
  /** SHA-256 of the chunk table. */
  readonly ctab: Uint8Array;
  /** Issued at, Unix seconds. */
  readonly iat: number;
}

export interface SignedRelease {
  readonly body: ReleaseBody;
  readonly sigs: readonly Signature[];
}

export interface AssignmentBody extends UnknownFields {
  /** Device id. */
  readonly dev: string;
  /** Sequence number, strictly increasing per device. */
  readonly seq: number;
  /** SHA-256 of the deterministic encoding of the release statement body. */
  readonly rel: Uint8Array;
  /** Rollout id, or the empty string for a direct assignment. */
  readonly ro: string;
  /** Issued at and expires at, Unix seconds. */
  readonly iat: number;
  readonly exp: number;
  /** Acknowledgement deadline for the final ACK, Unix seconds; absent for none. */
  readonly ackby?: number;
}

export interface SignedAssignment {
  readonly body: AssignmentBody;
  readonly sig: Signature;
}

export interface ManifestMessage extends UnknownFields {
  readonly asg: SignedAssignment;
  readonly rel: SignedRelease;
  readonly certs: readonly KeyCertificate[];
}

export interface FetchRequest extends UnknownFields {
  /** Request id, chosen by the device; echoed in every FETCH_RESP it causes. */
  readonly rid: number;
  /** Digest of the object: the image digest or the chunk table digest. */
  readonly obj: Uint8Array;
  /** Chunk indices wanted. */
  readonly idx?: readonly number[];
  /** Bitmap of wanted chunks: bit i (LSB first in each byte) of `bits` is chunk `base + i`. */
  readonly bm?: { readonly base: number; readonly bits: Uint8Array };
}

export interface FetchResponse extends UnknownFields {
  readonly rid: number;
  readonly obj: Uint8Array;
  /** Chunk index; absent on a refusal of the whole request. */
  readonly idx?: number;
  /** Chunk bytes; present unless `err` is. */
  readonly data?: Uint8Array;
  /** Error code of a refusal. */
  readonly err?: string;
  readonly msg?: string;
}

export interface AckRequest extends UnknownFields {
  /** Request id: the same id on a retry; the server records it once. */
  readonly rid: string;
  /** Sequence number of the assignment acknowledged. */
  readonly seq: number;
  /** Digest of the release statement body. */
  readonly rel: Uint8Array;
  readonly step: AckStep;
  /** `OK` or an error code. */
  readonly code: string;
  /** When the step happened, Unix milliseconds. */
  readonly at: number;
  /** Firmware version running now. */
  readonly ver?: string;
  readonly detail?: string;
  /** The device's ed25519 public key; present together with `sig`. */
  readonly dk?: Uint8Array;
  /** ed25519 signature (purpose `ack`) by `dk` over every other field (`ackSigningBody`). */
  readonly sig?: Uint8Array;
}

export interface AckResponse extends UnknownFields {
  readonly rid: string;
  readonly ok: boolean;
  /** `OK` or the error code for which the request was refused. */
  readonly code: string;
  /** True when the request id had been recorded before. */
  readonly dup?: boolean;
}

export interface StatusReport extends UnknownFields {
  readonly rid: string;
  /** Lifecycle state. */
  readonly state: string;
  /** When, Unix milliseconds. */
  readonly at: number;
  readonly ver?: string;
  readonly seq?: number;
  readonly rel?: Uint8Array;
  /** Chunks held and chunks in all, while downloading. */
  readonly have?: number;
  readonly total?: number;
  readonly code?: string;
  readonly detail?: string;
}

export interface PresenceMessage extends UnknownFields {
  readonly online: boolean;
  /** When, Unix milliseconds. */
  readonly at: number;
  readonly ver?: string;
  readonly agent?: string;
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

function header(type: MessageType): { v: number; t: MessageType } {
  return { v: PROTOCOL_VERSION, t: type };
}

function decodeEnvelope(bytes: Uint8Array, type: MessageType, maxBytes: number): Fields {
  const limits: CborLimits = { maxBytes, maxDepth: 8, maxItems: 4096 + LIMITS.maxWindow };
  const map = asMap(decodeCbor(bytes, limits));
  checkHeader(map, type);
  return map;
}

function checkHeader(map: Fields, type: MessageType): void {
  const v = map.v;
  if (v === undefined) throw fbError('FB_ERR_MSG_FIELD_MISSING', '"v"', { field: 'v' });
  const major = checkUint(v, 'v', Number.MAX_SAFE_INTEGER);
  if (major !== PROTOCOL_VERSION) {
    throw fbError('FB_ERR_MSG_VERSION', `got ${major}, speak ${PROTOCOL_VERSION}`);
  }
  if (map.t !== type) {
    throw fbError('FB_ERR_MSG_TYPE', `"t" expected ${type}, got ${String(map.t).slice(0, 32)}`);
  }
}

function encode(type: MessageType, message: object): Uint8Array {
  return encodeDeterministic({ ...(message as Record<string, CborValue>), ...header(type) });
}

function codeText(map: Fields, key: string): string {
  return textField(map, key, LIMITS.maxCodeLength, TOKEN_PATTERN);
}

function requestId(map: Fields): string {
  return textField(map, 'rid', LIMITS.maxRequestIdLength, TOKEN_PATTERN);
}

function parseSignature(value: unknown, field: string): Signature {
  if (value === undefined) throw fbError('FB_ERR_MSG_FIELD_MISSING', `"${field}"`, { field });
  const map = asMap(value, field);
  bytesField(map, 'kid', DIGEST_BYTES);
  bytesField(map, 'sig', SIGNATURE_BYTES);
  return map as unknown as Signature;
}

// ---------------------------------------------------------------------------------------------
// Signed bodies

/**
 * Checks a key certificate body.
 *
 * @throws FetchbackError `FB_ERR_MSG_*` for a missing or malformed field.
 */
export function parseKeyCertificateBody(value: unknown): KeyCertificateBody {
  const map = asMap(value, 'cert.body');
  bytesField(map, 'kid', DIGEST_BYTES);
  bytesField(map, 'pub', PUBLIC_KEY_BYTES);
  enumField(map, 'role', KEY_ROLES);
  bytesField(map, 'iss', DIGEST_BYTES);
  uintField(map, 'iat');
  uintField(map, 'exp');
  return map as KeyCertificateBody;
}

/**
 * Checks a release statement body.
 *
 * @throws FetchbackError `FB_ERR_MSG_*` for a missing or malformed field.
 */
export function parseReleaseBody(value: unknown): ReleaseBody {
  const map = asMap(value, 'rel.body');
  textField(map, 'name', LIMITS.maxNameLength, CLASS_PATTERN);
  textField(map, 'ver', LIMITS.maxVersionLength, /^[0-9A-Za-z.+_-]+$/);
  uintField(map, 'secv', 2 ** 32 - 1);
  textField(map, 'hw', LIMITS.maxClassLength, CLASS_PATTERN);
  uintField(map, 'size', LIMITS.maxImageBytes);
  bytesField(map, 'digest', DIGEST_BYTES);
  uintField(map, 'cbytes', LIMITS.maxChunkBytes, LIMITS.minChunkBytes);
  bytesField(map, 'ctab', DIGEST_BYTES);
  uintField(map, 'iat');
  return map as ReleaseBody;
}

/**
 * Checks an assignment body.
 *
 * @throws FetchbackError `FB_ERR_MSG_*` for a missing or malformed field.
 */
export function parseAssignmentBody(value: unknown): AssignmentBody {
  const map = asMap(value, 'asg.body');
  const dev = textField(map, 'dev', 64);
  if (!isValidDeviceId(dev)) throw fbError('FB_ERR_MSG_FIELD_RANGE', '"dev" is not a device id');
  uintField(map, 'seq', Number.MAX_SAFE_INTEGER, 1);
  bytesField(map, 'rel', DIGEST_BYTES);
  optTextField(map, 'ro', 64, TOKEN_PATTERN);
  if (map.ro === undefined) throw fbError('FB_ERR_MSG_FIELD_MISSING', '"ro"', { field: 'ro' });
  uintField(map, 'iat');
  uintField(map, 'exp');
  optUintField(map, 'ackby');
  return map as AssignmentBody;
}

// ---------------------------------------------------------------------------------------------
// MANIFEST

/**
 * Encodes a manifest (the retained message on `in/manifest`). Keys are written in
 * deterministic order (`docs/protocol.md` §3.3).
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for a value with no deterministic encoding (a
 *   float, an integer beyond 64 bits).
 */
export function encodeManifest(message: ManifestMessage): Uint8Array {
  return encode('manifest', message);
}

/**
 * Decodes a manifest. This checks structure only; trust comes from `ManifestVerifier`.
 *
 * @throws FetchbackError `FB_ERR_CBOR_*` or `FB_ERR_MSG_*`.
 */
export function decodeManifest(bytes: Uint8Array): ManifestMessage {
  const map = decodeEnvelope(bytes, 'manifest', LIMITS.maxManifestBytes);
  const asg = mapField(map, 'asg');
  parseAssignmentBody(mapField(asg, 'body'));
  parseSignature(asg.sig, 'asg.sig');
  const rel = mapField(map, 'rel');
  parseReleaseBody(mapField(rel, 'body'));
  arrayField(rel, 'sigs', 1, LIMITS.maxSignatures).forEach((s) => parseSignature(s, 'rel.sigs'));
  for (const cert of arrayField(map, 'certs', 1, LIMITS.maxCertificates)) {
    const c = asMap(cert, 'certs');
    parseKeyCertificateBody(mapField(c, 'body'));
    parseSignature(c.sig, 'certs.sig');
  }
  return map as unknown as ManifestMessage;
}

// ---------------------------------------------------------------------------------------------
// FETCH_REQ / FETCH_RESP

/**
 * Encodes a FETCH_REQ. Keys are written in deterministic order (`docs/protocol.md` §3.3).
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for a value with no deterministic encoding (a
 *   float, an integer beyond 64 bits).
 */
export function encodeFetchRequest(message: FetchRequest): Uint8Array {
  return encode('fetch_req', message);
}

/**
 * Decodes a FETCH_REQ: at least one of `idx` (1 to 256 indices) and `bm` (a bitmap of 1 to
 * 8192 bytes) must be present.
 *
 * @throws FetchbackError `FB_ERR_CBOR_*` or `FB_ERR_MSG_*`.
 */
export function decodeFetchRequest(bytes: Uint8Array): FetchRequest {
  const map = decodeEnvelope(bytes, 'fetch_req', LIMITS.maxControlBytes);
  uintField(map, 'rid');
  bytesField(map, 'obj', DIGEST_BYTES);
  if (map.idx === undefined && map.bm === undefined) {
    throw fbError('FB_ERR_MSG_FIELD_MISSING', '"idx" or "bm"', { field: 'idx' });
  }
  if (map.idx !== undefined) {
    const idx = arrayField(map, 'idx', 1, LIMITS.maxWindow);
    idx.forEach((i) => checkUint(i, 'idx', LIMITS.maxImageBytes / LIMITS.minChunkBytes));
  }
  if (map.bm !== undefined) {
    const bm = mapField(map, 'bm');
    uintField(bm, 'base', LIMITS.maxImageBytes / LIMITS.minChunkBytes);
    bytesField(bm, 'bits', 1, LIMITS.maxBitmapBytes);
  }
  return map as unknown as FetchRequest;
}

/**
 * The chunk indices a FETCH_REQ asks for (the union of `idx` and `bm`), in ascending order
 * without repeats, at most `limit` of them.
 */
export function requestedChunks(request: FetchRequest, limit = Infinity): number[] {
  const wanted = new Set<number>(request.idx ?? []);
  if (request.bm) {
    const { base, bits } = request.bm;
    for (let byte = 0; byte < bits.length; byte++) {
      const b = bits[byte] as number;
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) wanted.add(base + byte * 8 + bit);
    }
  }
  return [...wanted].sort((a, b) => a - b).slice(0, limit);
}

/**
 * Builds the bitmap form of a set of chunk indices, starting at the lowest (`docs/protocol.md`
 * §4.2). A FETCH_REQ bitmap holds at most 8,192 bytes, so the set must span fewer than 65,536
 * chunks; split wider sets over several requests.
 */
export function chunkBitmap(indices: Iterable<number>): { base: number; bits: Uint8Array } {
  const sorted = [...indices].sort((a, b) => a - b);
  const base = sorted[0] ?? 0;
  const last = sorted[sorted.length - 1] ?? 0;
  const bits = new Uint8Array(Math.floor((last - base) / 8) + 1);
  for (const i of sorted) {
    const o = i - base;
    bits[o >> 3] = (bits[o >> 3] as number) | (1 << (o & 7));
  }
  return { base, bits };
}

/**
 * Encodes a FETCH_RESP. Keys are written in deterministic order (`docs/protocol.md` §3.3).
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for a value with no deterministic encoding (a
 *   float, an integer beyond 64 bits).
 */
export function encodeFetchResponse(message: FetchResponse): Uint8Array {
  return encode('fetch_resp', message);
}

/**
 * Decodes a FETCH_RESP: exactly one of `data` and `err`.
 *
 * @throws FetchbackError `FB_ERR_CBOR_*` or `FB_ERR_MSG_*`.
 */
export function decodeFetchResponse(bytes: Uint8Array): FetchResponse {
  const map = decodeEnvelope(bytes, 'fetch_resp', LIMITS.maxFetchRespBytes);
  uintField(map, 'rid');
  bytesField(map, 'obj', DIGEST_BYTES);
  optUintField(map, 'idx', LIMITS.maxImageBytes / LIMITS.minChunkBytes);
  if ((map.data === undefined) === (map.err === undefined)) {
    throw fbError('FB_ERR_MSG_FIELD_MISSING', 'exactly one of "data" and "err"', { field: 'data' });
  }
  if (map.data !== undefined) bytesField(map, 'data', 1, LIMITS.maxChunkBytes);
  else codeText(map, 'err');
  optTextField(map, 'msg', LIMITS.maxDetailLength);
  return map as unknown as FetchResponse;
}

// ---------------------------------------------------------------------------------------------
// ACK_REQ / ACK_RESP

/**
 * Encodes an ACK_REQ. Keys are written in deterministic order (`docs/protocol.md` §3.3).
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for a value with no deterministic encoding (a
 *   float, an integer beyond 64 bits).
 */
export function encodeAckRequest(message: AckRequest): Uint8Array {
  return encode('ack_req', message);
}

/**
 * Decodes an ACK_REQ.
 *
 * @throws FetchbackError `FB_ERR_CBOR_*` or `FB_ERR_MSG_*`.
 */
export function decodeAckRequest(bytes: Uint8Array): AckRequest {
  const map = decodeEnvelope(bytes, 'ack_req', LIMITS.maxControlBytes);
  requestId(map);
  uintField(map, 'seq', Number.MAX_SAFE_INTEGER, 1);
  bytesField(map, 'rel', DIGEST_BYTES);
  enumField(map, 'step', ACK_STEPS);
  codeText(map, 'code');
  uintField(map, 'at');
  optTextField(map, 'ver', LIMITS.maxVersionLength);
  optTextField(map, 'detail', LIMITS.maxDetailLength);
  optBytesField(map, 'dk', PUBLIC_KEY_BYTES);
  optBytesField(map, 'sig', SIGNATURE_BYTES);
  if ((map.dk === undefined) !== (map.sig === undefined)) {
    const missing = map.dk === undefined ? 'dk' : 'sig';
    throw fbError('FB_ERR_MSG_FIELD_MISSING', `"dk" and "sig" go together: no "${missing}"`, {
      field: missing,
    });
  }
  return map as unknown as AckRequest;
}

/**
 * What an ACK_REQ's signature covers (`docs/protocol.md` §8.5): the message as sent, `v`, `t`,
 * `dk` and unknown fields included, without `sig`.
 */
export function ackSigningBody(message: AckRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { ...message, ...header('ack_req') };
  delete body.sig;
  return body;
}

/**
 * Encodes an ACK_RESP. Keys are written in deterministic order (`docs/protocol.md` §3.3).
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for a value with no deterministic encoding (a
 *   float, an integer beyond 64 bits).
 */
export function encodeAckResponse(message: AckResponse): Uint8Array {
  return encode('ack_resp', message);
}

/**
 * Decodes an ACK_RESP.
 *
 * @throws FetchbackError `FB_ERR_CBOR_*` or `FB_ERR_MSG_*`.
 */
export function decodeAckResponse(bytes: Uint8Array): AckResponse {
  const map = decodeEnvelope(bytes, 'ack_resp', LIMITS.maxControlBytes);
  requestId(map);
  boolField(map, 'ok');
  codeText(map, 'code');
  if (map.dup !== undefined) boolField(map, 'dup');
  return map as unknown as AckResponse;
}

// ---------------------------------------------------------------------------------------------
// STATUS / PRESENCE

/**
 * Encodes a STATUS report. Keys are written in deterministic order (`docs/protocol.md` §3.3).
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for a value with no deterministic encoding (a
 *   float, an integer beyond 64 bits).
 */
export function encodeStatus(message: StatusReport): Uint8Array {
  return encode('status', message);
}

/**
 * Decodes a STATUS report.
 *
 * @throws FetchbackError `FB_ERR_CBOR_*` or `FB_ERR_MSG_*`.
 */
export function decodeStatus(bytes: Uint8Array): StatusReport {
  const map = decodeEnvelope(bytes, 'status', LIMITS.maxControlBytes);
  requestId(map);
  textField(map, 'state', LIMITS.maxStateLength, /^[a-z_]+$/);
  uintField(map, 'at');
  optTextField(map, 'ver', LIMITS.maxVersionLength);
  optUintField(map, 'seq');
  optBytesField(map, 'rel', DIGEST_BYTES);
  optUintField(map, 'have');
  optUintField(map, 'total');
  if (map.code !== undefined) codeText(map, 'code');
  optTextField(map, 'detail', LIMITS.maxDetailLength);
  return map as unknown as StatusReport;
}

/**
 * Encodes a PRESENCE message. Keys are written in deterministic order (`docs/protocol.md` §3.3).
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for a value with no deterministic encoding (a
 *   float, an integer beyond 64 bits).
 */
export function encodePresence(message: PresenceMessage): Uint8Array {
  return encode('presence', message);
}

/**
 * Decodes a PRESENCE message.
 *
 * @throws FetchbackError `FB_ERR_CBOR_*` or `FB_ERR_MSG_*`.
 */
export function decodePresence(bytes: Uint8Array): PresenceMessage {
  const map = decodeEnvelope(bytes, 'presence', LIMITS.maxControlBytes);
  boolField(map, 'online');
  uintField(map, 'at');
  optTextField(map, 'ver', LIMITS.maxVersionLength);
  optTextField(map, 'agent', LIMITS.maxDetailLength);
  return map as unknown as PresenceMessage;
}
