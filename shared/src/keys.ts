/**
 * ed25519 keys, signatures and key certificates (`docs/protocol.md` §6), on @noble/ed25519.
 *
 * Every signature over a structured body signs `"fetchback/v1/" + purpose + 0x00` followed by
 * the body's deterministic CBOR encoding, so a signature made for one purpose can never be
 * replayed as another, and any conforming re-encoding of the body still verifies.
 */
import {
  type KeyObject,
  createPrivateKey,
  createPublicKey,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';

import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';

import { type CborValue, concatBytes, encodeDeterministic } from './cbor.js';
import { fromHex, sha256 } from './digest.js';
import { fbError } from './errors.js';
import {
  type AckRequest,
  type AssignmentBody,
  type KeyCertificate,
  type KeyCertificateBody,
  type KeyRole,
  type ReleaseBody,
  type Signature,
  type SignedAssignment,
  type SignedRelease,
  ackSigningBody,
} from './messages.js';

// RFC 8032 §5.1 needs SHA-512; noble leaves the choice to the host to stay dependency-free.
ed.hashes.sha512 = sha512;

/** An ed25519 key pair. `secretKey` is the 32-byte seed of RFC 8032 §5.1.5. */
export interface KeyPair {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** What a signature is for; part of the signed bytes (domain separation). */
export type SignaturePurpose = 'cert' | 'release' | 'assignment' | 'ack';

const textEncoder = new TextEncoder();

/** Generates a new key pair from the platform's secure random source. */
export function generateKeyPair(): KeyPair {
  const secretKey = ed.utils.randomSecretKey();
  return { secretKey, publicKey: publicKeyOf(secretKey) };
}

/**
 * The public key of a 32-byte secret key (RFC 8032 §5.1.5), through `node:crypto` unless
 * `noble` is asked for; both give the same bytes.
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID` for a key of the wrong length.
 */
export function publicKeyOf(secretKey: Uint8Array, impl: SignatureImpl = 'node'): Uint8Array {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) {
    throw fbError('FB_ERR_KEY_INVALID', '"secretKey" expected 32 bytes');
  }
  if (impl === 'noble') return ed.getPublicKey(secretKey);
  const spki = createPublicKey(nodeSecretKey(secretKey)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

/** A key id: SHA-256 of the 32-byte public key. */
export function keyId(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey);
}

/**
 * Signs raw bytes (RFC 8032 §5.1.6). ed25519 signatures are deterministic, so both
 * implementations give the same bytes (a test holds them to it); `node` is the faster.
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID` for a key of the wrong length.
 */
export function signBytes(
  secretKey: Uint8Array,
  message: Uint8Array,
  impl: SignatureImpl = 'node',
): Uint8Array {
  if (secretKey.length !== 32) throw fbError('FB_ERR_KEY_INVALID', '"secretKey" expected 32 bytes');
  if (impl === 'noble') return ed.sign(message, secretKey);
  return new Uint8Array(nodeSign(null, message, nodeSecretKey(secretKey)));
}

/**
 * Which ed25519 verifier to use. Both apply RFC 8032 §5.1.7 strictly (a non-canonical `S` or
 * point encoding is refused; ZIP-215's looser rules are not used), so they agree on every
 * input; a test holds them to that. `node` (OpenSSL through `node:crypto`) verifies about ten
 * times faster on this project's machines (0.14 ms against 1.6 ms), which matters to a
 * simulator checking thousands of manifests and to a Pi checking four signatures per manifest;
 * `noble` (@noble/ed25519) is pure JavaScript, for platforms without it.
 */
export type SignatureImpl = 'node' | 'noble';

/** DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410 §4) before the 32 key bytes. */
const ED25519_SPKI_PREFIX = fromHex('302a300506032b6570032100');
/** DER prefix of an ed25519 PKCS #8 private key (RFC 8410 §7) before the 32-byte seed. */
const ED25519_PKCS8_PREFIX = fromHex('302e020100300506032b657004220420');
/**
 * Public keys kept imported for `node` verification: the root, release and assignment keys,
 * and on a server one key per device checking signed ACKs. Importing costs more than verifying.
 */
const KEY_OBJECT_CACHE = 16_384;
const keyObjects = new Map<string, KeyObject>();
/** Secret keys imported for `node` signing, by the identity of their bytes (never by value). */
const secretKeyObjects = new WeakMap<Uint8Array, KeyObject>();

/** The DER document of a raw ed25519 key: its fixed prefix, then the 32 key bytes. */
function der(prefix: Uint8Array, raw: Uint8Array): Buffer {
  return Buffer.from(concatBytes([prefix, raw]));
}

function nodeSecretKey(secretKey: Uint8Array): KeyObject {
  let key = secretKeyObjects.get(secretKey);
  if (!key) {
    key = createPrivateKey({
      key: der(ED25519_PKCS8_PREFIX, secretKey),
      format: 'der',
      type: 'pkcs8',
    });
    secretKeyObjects.set(secretKey, key);
  }
  return key;
}

function nodePublicKey(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey).toString('hex');
  let key = keyObjects.get(id);
  if (!key) {
    key = createPublicKey({
      key: der(ED25519_SPKI_PREFIX, publicKey),
      format: 'der',
      type: 'spki',
    });
    keyObjects.set(id, key);
    if (keyObjects.size > KEY_OBJECT_CACHE) {
      keyObjects.delete(keyObjects.keys().next().value as string);
    }
  }
  return key;
}

/** Verifies a signature over raw bytes (RFC 8032 §5.1.7); false for any malformed input. */
export function verifyBytes(
  publicKey: Uint8Array,
  message: Uint8Array,
  sig: Uint8Array,
  impl: SignatureImpl = 'node',
): boolean {
  if (publicKey.length !== 32 || sig.length !== 64) return false;
  try {
    if (impl === 'noble') return ed.verify(sig, message, publicKey, { zip215: false });
    return nodeVerify(null, message, nodePublicKey(publicKey), sig);
  } catch {
    return false;
  }
}

/**
 * The exact bytes signed for a body with a purpose (`docs/protocol.md` §6.1):
 * `"fetchback/v1/" + purpose + 0x00 + deterministic CBOR(body)`.
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for a body with no deterministic encoding.
 */
export function signingInput(purpose: SignaturePurpose, body: CborValue): Uint8Array {
  const label = textEncoder.encode(`fetchback/v1/${purpose}`);
  return concatBytes([label, Uint8Array.of(0), encodeDeterministic(body)]);
}

/**
 * Signs a body for a purpose.
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID` for a bad key, `FB_ERR_ARGUMENT` for a body with
 *   no deterministic encoding.
 */
export function signBody(purpose: SignaturePurpose, body: object, key: KeyPair): Signature {
  const sig = signBytes(key.secretKey, signingInput(purpose, body as CborValue));
  return { kid: keyId(key.publicKey), sig };
}

/**
 * Verifies a signature over a body for a purpose. False for a bad signature and for a body that
 * has no deterministic encoding (floating point, for instance).
 */
export function verifyBody(
  purpose: SignaturePurpose,
  body: object,
  sig: Signature,
  publicKey: Uint8Array,
): boolean {
  let input: Uint8Array;
  try {
    input = signingInput(purpose, body as CborValue);
  } catch {
    return false;
  }
  return verifyBytes(publicKey, input, sig.sig);
}

/**
 * SHA-256 of a release statement body's deterministic encoding: what an assignment names.
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for a body with no deterministic encoding.
 */
export function releaseDigest(body: ReleaseBody): Uint8Array {
  return sha256(encodeDeterministic(body as unknown as CborValue));
}

/**
 * Issues a key certificate: the root certifies `publicKey` for `role` until `expiresAt` (Unix
 * seconds).
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID` for a bad root key.
 */
export function issueCertificate(
  root: KeyPair,
  publicKey: Uint8Array,
  role: KeyRole,
  issuedAt: number,
  expiresAt: number,
): KeyCertificate {
  const body: KeyCertificateBody = {
    kid: keyId(publicKey),
    pub: publicKey,
    role,
    iss: keyId(root.publicKey),
    iat: issuedAt,
    exp: expiresAt,
  };
  return { body, sig: signBody('cert', body, root) };
}

/**
 * Signs a release statement with one or more release keys.
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID`, or `FB_ERR_ARGUMENT` for a body with no
 *   deterministic encoding.
 */
export function signRelease(body: ReleaseBody, keys: readonly KeyPair[]): SignedRelease {
  return { body, sigs: keys.map((k) => signBody('release', body, k)) };
}

/**
 * Signs an assignment with the server's assignment key.
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID`, or `FB_ERR_ARGUMENT` for a body with no
 *   deterministic encoding.
 */
export function signAssignment(body: AssignmentBody, key: KeyPair): SignedAssignment {
  return { body, sig: signBody('assignment', body, key) };
}

/**
 * Signs an ACK_REQ with the device's key (`docs/protocol.md` §8.5): returns it with `dk` (the
 * public key) and `sig` (purpose `ack`, over `ackSigningBody`). Any `dk` or `sig` it had is
 * replaced.
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID` for a bad key, `FB_ERR_ARGUMENT` for a field with
 *   no deterministic encoding.
 */
export function signAckRequest(message: AckRequest, key: KeyPair): AckRequest {
  const { sig: _sig, ...unsigned } = message;
  const body = ackSigningBody({ ...unsigned, dk: key.publicKey });
  const sig = signBytes(key.secretKey, signingInput('ack', body as CborValue));
  return { ...unsigned, dk: key.publicKey, sig };
}

/**
 * True when the ACK_REQ carries a signature that verifies with `publicKey` (the key the server
 * pinned for the device, or `dk` itself when none is pinned yet). False when unsigned.
 */
export function verifyAckRequest(message: AckRequest, publicKey: Uint8Array): boolean {
  if (message.sig === undefined) return false;
  let input: Uint8Array;
  try {
    input = signingInput('ack', ackSigningBody(message) as CborValue);
  } catch {
    return false;
  }
  return verifyBytes(publicKey, input, message.sig);
}
