/**
 * ed25519 keys, signatures and key certificates (`docs/protocol.md` §6), on @noble/ed25519.
 *
 * Every signature over a structured body signs `"fetchback/v1/" + purpose + 0x00` followed by
 * the body's deterministic CBOR encoding, so a signature made for one purpose can never be
 * replayed as another, and any conforming re-encoding of the body still verifies.
 */
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';

import { type CborValue, concatBytes, encodeDeterministic } from './cbor.js';
import { sha256 } from './digest.js';
import { fbError } from './errors.js';
import type {
  AssignmentBody,
  KeyCertificate,
  KeyCertificateBody,
  KeyRole,
  ReleaseBody,
  Signature,
  SignedAssignment,
  SignedRelease,
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
  const { secretKey, publicKey } = ed.keygen();
  return { secretKey, publicKey };
}

/**
 * The public key of a 32-byte secret key.
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID` for a key of the wrong length.
 */
export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) {
    throw fbError('FB_ERR_KEY_INVALID', '"secretKey" expected 32 bytes');
  }
  return ed.getPublicKey(secretKey);
}

/** A key id: SHA-256 of the 32-byte public key. */
export function keyId(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey);
}

/**
 * Signs raw bytes (RFC 8032 §5.1.6).
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID` for a key of the wrong length.
 */
export function signBytes(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  if (secretKey.length !== 32) throw fbError('FB_ERR_KEY_INVALID', '"secretKey" expected 32 bytes');
  return ed.sign(message, secretKey);
}

/** Verifies a signature over raw bytes (RFC 8032 §5.1.7); false for any malformed input. */
export function verifyBytes(publicKey: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  if (publicKey.length !== 32 || sig.length !== 64) return false;
  try {
    return ed.verify(sig, message, publicKey);
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
