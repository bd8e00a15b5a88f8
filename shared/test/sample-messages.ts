/**
 * One codec table for every message type, and deterministic sample messages of every type
 * (the source of `vectors/messages.json`).
 */
import {
  type MessageType,
  chunkBitmap,
  decodeAckRequest,
  decodeAckResponse,
  decodeFetchRequest,
  decodeFetchResponse,
  decodeManifest,
  decodePresence,
  decodeStatus,
  encodeAckRequest,
  encodeAckResponse,
  encodeFetchRequest,
  encodeFetchResponse,
  encodeManifest,
  encodePresence,
  encodeStatus,
  releaseDigest,
  signAckRequest,
} from '@fetchback/shared';

import { IMAGE_TABLE, NOW_MS, buildManifest, releaseBody, seededKey } from './fixtures.js';

/** The device key of the signed ACK_REQ sample (a fixed seed: the vector is fixed too). */
const DEVICE_KEY = seededKey(0x05);

export interface Codec {
  readonly encode: (message: never) => Uint8Array;
  readonly decode: (bytes: Uint8Array) => unknown;
}

export const CODECS: Record<MessageType, Codec> = {
  manifest: { encode: encodeManifest, decode: decodeManifest },
  fetch_req: { encode: encodeFetchRequest, decode: decodeFetchRequest },
  fetch_resp: { encode: encodeFetchResponse, decode: decodeFetchResponse },
  ack_req: { encode: encodeAckRequest, decode: decodeAckRequest },
  ack_resp: { encode: encodeAckResponse, decode: decodeAckResponse },
  status: { encode: encodeStatus, decode: decodeStatus },
  presence: { encode: encodePresence, decode: decodePresence },
};

/** Encodes any message with the codec of its type. */
export function encodeAs(type: MessageType, message: object): Uint8Array {
  return (CODECS[type].encode as (m: object) => Uint8Array)(message);
}

export interface Sample {
  readonly name: string;
  readonly type: MessageType;
  readonly value: Record<string, unknown>;
}

/** Deterministic samples: fixed seeds, fixed times, fixed image. */
export function sampleMessages(): Sample[] {
  const rel = releaseDigest(releaseBody());
  const imageDigest = IMAGE_TABLE.imageDigest;
  const tableDigest = IMAGE_TABLE.table.digest();
  const ackRid = 'dev-0001:7:downloaded';
  return [
    { name: 'manifest', type: 'manifest', value: { ...buildManifest() } },
    {
      name: 'fetch_req with a window of indices',
      type: 'fetch_req',
      value: { rid: 17, obj: imageDigest, idx: [0, 1, 2, 3] },
    },
    {
      name: 'fetch_req with a bitmap of missing chunks',
      type: 'fetch_req',
      value: { rid: 18, obj: imageDigest, bm: chunkBitmap([1, 3, 4, 12]) },
    },
    {
      name: 'fetch_resp carrying chunk 0 of the chunk table',
      type: 'fetch_resp',
      value: { rid: 16, obj: tableDigest, idx: 0, data: IMAGE_TABLE.table.bytes },
    },
    {
      name: 'fetch_resp refusing a request',
      type: 'fetch_resp',
      value: { rid: 19, obj: imageDigest, err: 'FB_ERR_BUSY', msg: 'retry later' },
    },
    {
      name: 'ack_req for a download',
      type: 'ack_req',
      value: {
        rid: ackRid,
        seq: 7,
        rel,
        step: 'downloaded',
        code: 'OK',
        at: NOW_MS,
        ver: '1.2.2',
      },
    },
    {
      name: 'ack_req for a commit, signed by the device key (protocol.md §8.5)',
      type: 'ack_req',
      value: signAckRequest(
        {
          rid: 'dev-0001:7:committed',
          seq: 7,
          rel,
          step: 'committed',
          code: 'OK',
          at: NOW_MS,
          ver: '1.2.3',
        },
        DEVICE_KEY,
      ) as unknown as Record<string, unknown>,
    },
    {
      name: 'ack_resp accepting an ack',
      type: 'ack_resp',
      value: { rid: ackRid, ok: true, code: 'OK' },
    },
    {
      name: 'ack_resp answering a duplicate',
      type: 'ack_resp',
      value: { rid: ackRid, ok: true, code: 'OK', dup: true },
    },
    {
      name: 'status while downloading, with an unknown field',
      type: 'status',
      value: {
        rid: 'st-000042',
        state: 'downloading',
        at: NOW_MS + 1,
        ver: '1.2.2',
        seq: 7,
        rel,
        have: 2,
        total: 4,
        ext: 'kept',
      },
    },
    {
      name: 'presence online',
      type: 'presence',
      value: { online: true, at: NOW_MS, ver: '1.2.2', agent: 'fetchback-agent/0.1.0' },
    },
    {
      name: 'presence offline (last will)',
      type: 'presence',
      value: { online: false, at: NOW_MS },
    },
  ];
}
