/**
 * Deterministic test fixtures: keys from fixed seeds, fixed times, and a builder for signed
 * manifests that tests can bend one field at a time. Ed25519 signing is deterministic
 * (RFC 8032 §5.1.6), so everything built here is the same on every run.
 */
import {
  type AssignmentBody,
  type KeyCertificate,
  type KeyPair,
  type ManifestMessage,
  type ReleaseBody,
  ChunkTableBuilder,
  issueCertificate,
  publicKeyOf,
  releaseDigest,
  signAssignment,
  signRelease,
} from '@fetchback/shared';

/** A key pair whose 32-byte seed is `fill` repeated. */
export function seededKey(fill: number): KeyPair {
  const secretKey = new Uint8Array(32).fill(fill);
  return { secretKey, publicKey: publicKeyOf(secretKey) };
}

export const ROOT = seededKey(0x01);
export const RELEASE_KEY = seededKey(0x02);
export const ASSIGNMENT_KEY = seededKey(0x03);
/** A key the device does not pin: used to forge certificates. */
export const ROGUE_KEY = seededKey(0x04);

/** 2026-01-01T00:00:00Z, Unix seconds. */
export const T0 = 1_767_225_600;
export const DAY_S = 86_400;
/** The verifier's clock in the fixtures: two hours after T0, Unix milliseconds. */
export const NOW_MS = (T0 + 7200) * 1000;

export const DEVICE_ID = 'dev-0001';
export const HW_CLASS = 'rpi4';
export const CHUNK_BYTES = 65_536;

/** A deterministic image of `length` bytes. */
export function testImage(length: number): Uint8Array {
  const image = new Uint8Array(length);
  for (let i = 0; i < length; i++) image[i] = (i * 31 + (i >> 8)) & 0xff;
  return image;
}

export const IMAGE = testImage(200_000);
export const IMAGE_TABLE = new ChunkTableBuilder(CHUNK_BYTES).update(IMAGE).finish();

export function releaseBody(overrides: Partial<ReleaseBody> = {}): ReleaseBody {
  return {
    name: 'demo-fw',
    ver: '1.2.3',
    secv: 3,
    hw: HW_CLASS,
    size: IMAGE_TABLE.totalBytes,
    digest: IMAGE_TABLE.imageDigest,
    cbytes: CHUNK_BYTES,
    ctab: IMAGE_TABLE.table.digest(),
    iat: T0,
    ...overrides,
  };
}

export function assignmentBody(
  release: ReleaseBody,
  overrides: Partial<AssignmentBody> = {},
): AssignmentBody {
  return {
    dev: DEVICE_ID,
    seq: 7,
    rel: releaseDigest(release),
    ro: 'ro-42',
    iat: T0 + 3600,
    exp: T0 + 30 * DAY_S,
    ackby: T0 + 7 * DAY_S,
    ...overrides,
  };
}

export function standardCertificates(): KeyCertificate[] {
  return [
    issueCertificate(ROOT, RELEASE_KEY.publicKey, 'release', T0, T0 + 365 * DAY_S),
    issueCertificate(ROOT, ASSIGNMENT_KEY.publicKey, 'assignment', T0, T0 + 365 * DAY_S),
  ];
}

export interface ManifestParts {
  release?: Partial<ReleaseBody>;
  assignment?: Partial<AssignmentBody>;
  releaseKeys?: readonly KeyPair[];
  assignmentKey?: KeyPair;
  certs?: KeyCertificate[];
}

/** A manifest signed properly unless `parts` say otherwise. */
export function buildManifest(parts: ManifestParts = {}): ManifestMessage {
  const rel = releaseBody(parts.release);
  const asg = assignmentBody(rel, parts.assignment);
  return {
    asg: signAssignment(asg, parts.assignmentKey ?? ASSIGNMENT_KEY),
    rel: signRelease(rel, parts.releaseKeys ?? [RELEASE_KEY]),
    certs: parts.certs ?? standardCertificates(),
  };
}

/** Replaces every `Uint8Array` (including Node `Buffer`s) by a plain copy, for deep equality. */
export function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Uint8Array.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** A message as tests bend it: any field at any depth, before it is encoded again. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests rewrite arbitrary fields
export type Loose = Record<string, any>;
