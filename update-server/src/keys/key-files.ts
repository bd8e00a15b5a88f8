/**
 * The on-disk form of key material in `<data>/keys/`. Private keys are JSON files of mode 0600
 * (`{"algorithm":"ed25519","role":…,"secretKey":hex,"publicKey":hex}`); public keys are one line
 * of hex; certificates are one JSON file holding each certificate's deterministic CBOR in hex.
 * Every file is written to a temporary name, synced and renamed, so a crash leaves either the
 * old file or the new one.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';

import {
  type CborValue,
  type KeyCertificate,
  type KeyPair,
  decodeCbor,
  encodeDeterministic,
  fbError,
  fromHex,
  parseKeyCertificateBody,
  publicKeyOf,
  toHex,
} from '@fetchback/shared';

/** Mode of private key files: owner read/write only. */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode of public files: readable by everyone. */
export const PUBLIC_FILE_MODE = 0o644;

interface PrivateKeyFile {
  algorithm: 'ed25519';
  role: string;
  secretKey: string;
  publicKey: string;
}

/** Writes `text` to `file` atomically with `mode`. */
export function writeFileAtomic(file: string, text: string, mode: number): void {
  const temp = `${file}.tmp-${process.pid}`;
  const fd = openSync(temp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
}

export function writePrivateKey(file: string, role: string, key: KeyPair): void {
  const body: PrivateKeyFile = {
    algorithm: 'ed25519',
    role,
    secretKey: toHex(key.secretKey),
    publicKey: toHex(key.publicKey),
  };
  writeFileAtomic(file, `${JSON.stringify(body, null, 2)}\n`, PRIVATE_FILE_MODE);
}

export function writePublicKey(file: string, publicKey: Uint8Array): void {
  writeFileAtomic(file, `${toHex(publicKey)}\n`, PUBLIC_FILE_MODE);
}

/**
 * Reads a private key file (JSON as written above, or a bare 64-digit hex seed).
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID` when the file is malformed or its public key does
 *   not belong to its secret key.
 */
export function readPrivateKey(file: string): KeyPair {
  const text = readFileSync(file, 'utf8').trim();
  try {
    if (/^[0-9a-fA-F]{64}$/.test(text)) {
      const secretKey = fromHex(text);
      return { secretKey, publicKey: publicKeyOf(secretKey) };
    }
    const parsed = JSON.parse(text) as Partial<PrivateKeyFile>;
    const secretKey = fromHex(String(parsed.secretKey));
    const publicKey = publicKeyOf(secretKey);
    if (parsed.publicKey !== undefined && parsed.publicKey.toLowerCase() !== toHex(publicKey)) {
      throw new Error('public key does not match the secret key');
    }
    return { secretKey, publicKey };
  } catch (err) {
    throw fbError('FB_ERR_KEY_INVALID', `${file}: ${(err as Error).message}`);
  }
}

/** @throws FetchbackError `FB_ERR_KEY_INVALID` */
export function readPublicKey(file: string): Uint8Array {
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-fA-F]{64}$/.test(text)) {
    throw fbError('FB_ERR_KEY_INVALID', `${file}: expected 64 hex digits`);
  }
  return fromHex(text);
}

export function writeCertificates(file: string, certificates: readonly KeyCertificate[]): void {
  const entries = certificates.map((cert) => ({
    role: cert.body.role,
    keyId: toHex(cert.body.kid),
    expiresAt: new Date(cert.body.exp * 1000).toISOString(),
    cbor: toHex(encodeDeterministic(cert as unknown as CborValue)),
  }));
  writeFileAtomic(
    file,
    `${JSON.stringify({ certificates: entries }, null, 2)}\n`,
    PUBLIC_FILE_MODE,
  );
}

/** @throws FetchbackError `FB_ERR_KEY_INVALID` for a malformed file or certificate. */
export function readCertificates(file: string): KeyCertificate[] {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { certificates: { cbor: string }[] };
    return parsed.certificates.map((entry) => {
      const cert = decodeCbor(fromHex(entry.cbor)) as { body: unknown; sig: unknown };
      const body = parseKeyCertificateBody(cert.body);
      const sig = cert.sig as KeyCertificate['sig'];
      if (!(sig?.kid instanceof Uint8Array) || !(sig.sig instanceof Uint8Array)) {
        throw new Error('certificate signature is malformed');
      }
      return { body, sig };
    });
  } catch (err) {
    throw fbError('FB_ERR_KEY_INVALID', `${file}: ${(err as Error).message}`);
  }
}
