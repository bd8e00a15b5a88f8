/**
 * The server's key material (`docs/operations.md`, "Keys"): the root key that certifies the
 * others, the release key that signs release statements, and the online assignment key that
 * signs per-device assignments. `fetchback keys init` (or the first server start) creates them.
 *
 * After init the root private key (`root.key`) should be moved offline: the server never needs
 * it to run. Only `root.pub`, `certificates.json`, `release.key` and `assignment.key` are read at
 * start. The root key is needed again only to renew the certificates before they expire
 * (`fetchback keys renew`) or to replace a compromised release or assignment key.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import {
  type KeyCertificate,
  type KeyPair,
  type KeyRole,
  bytesEqual,
  fbError,
  generateKeyPair,
  issueCertificate,
  keyId,
  verifyBody,
} from '@fetchback/shared';

import {
  readCertificates,
  readPrivateKey,
  readPublicKey,
  writeCertificates,
  writePrivateKey,
  writePublicKey,
} from './key-files.js';

/** What the server signs with and hands to devices. */
export interface ServerKeys {
  rootPublicKey: Uint8Array;
  assignmentKey: KeyPair;
  releaseKey: KeyPair;
  /** Root-signed certificates of the release and assignment keys, sent in every manifest. */
  certificates: KeyCertificate[];
}

export interface CertifyOptions {
  /** Validity of the certificates, in days. */
  certValidityDays?: number;
  /** Unix ms; injectable for tests. */
  now?: number;
}

export const DEFAULT_CERT_VALIDITY_DAYS = 365;
const DAY_S = 86_400;

/** File names inside the keys directory. */
export const KEY_FILES = {
  rootKey: 'root.key',
  rootPub: 'root.pub',
  releaseKey: 'release.key',
  releasePub: 'release.pub',
  assignmentKey: 'assignment.key',
  assignmentPub: 'assignment.pub',
  certificates: 'certificates.json',
} as const;

/** True when the keys directory holds a root public key (keys were initialised). */
export function keysExist(dir: string): boolean {
  return existsSync(join(dir, KEY_FILES.rootPub));
}

function certify(root: KeyPair, keys: Record<KeyRole, KeyPair>, opts: CertifyOptions) {
  const issuedAtS = Math.floor((opts.now ?? Date.now()) / 1000);
  const expiresAtS = issuedAtS + (opts.certValidityDays ?? DEFAULT_CERT_VALIDITY_DAYS) * DAY_S;
  return (Object.keys(keys) as KeyRole[]).map((role) =>
    issueCertificate(root, keys[role].publicKey, role, issuedAtS, expiresAtS),
  );
}

/**
 * Creates the root, release and assignment keys and the root-signed certificates.
 *
 * @throws FetchbackError `FB_ERR_STATE` when keys already exist in `dir`.
 */
export function initKeys(dir: string, opts: CertifyOptions = {}): ServerKeys {
  if (keysExist(dir)) throw fbError('FB_ERR_STATE', `keys already exist in ${dir}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const root = generateKeyPair();
  const keys = { release: generateKeyPair(), assignment: generateKeyPair() };
  writePrivateKey(join(dir, KEY_FILES.releaseKey), 'release', keys.release);
  writePublicKey(join(dir, KEY_FILES.releasePub), keys.release.publicKey);
  writePrivateKey(join(dir, KEY_FILES.assignmentKey), 'assignment', keys.assignment);
  writePublicKey(join(dir, KEY_FILES.assignmentPub), keys.assignment.publicKey);
  writeCertificates(join(dir, KEY_FILES.certificates), certify(root, keys, opts));
  writePrivateKey(join(dir, KEY_FILES.rootKey), 'root', root);
  // root.pub last: its presence is what marks the directory as initialised.
  writePublicKey(join(dir, KEY_FILES.rootPub), root.publicKey);
  return loadServerKeys(dir);
}

/**
 * Issues fresh certificates for the existing release and assignment keys. Needs the root
 * private key back in `dir` (or at `rootKeyFile`).
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID` when the root key is absent or not the pinned one.
 */
export function renewCertificates(
  dir: string,
  opts: CertifyOptions & { rootKeyFile?: string } = {},
): ServerKeys {
  const rootFile = opts.rootKeyFile ?? join(dir, KEY_FILES.rootKey);
  if (!existsSync(rootFile)) {
    throw fbError('FB_ERR_KEY_INVALID', `root private key not found at ${rootFile}`);
  }
  const root = readPrivateKey(rootFile);
  if (!bytesEqual(root.publicKey, readPublicKey(join(dir, KEY_FILES.rootPub)))) {
    throw fbError('FB_ERR_KEY_INVALID', `${rootFile} is not the root key devices pin`);
  }
  const keys = {
    release: readPrivateKey(join(dir, KEY_FILES.releaseKey)),
    assignment: readPrivateKey(join(dir, KEY_FILES.assignmentKey)),
  };
  writeCertificates(join(dir, KEY_FILES.certificates), certify(root, keys, opts));
  return loadServerKeys(dir);
}

/**
 * Loads the keys the server runs with and checks that each certificate is signed by the root
 * and certifies the key on disk. The root private key is not read.
 *
 * @throws FetchbackError `FB_ERR_KEY_INVALID` for missing or inconsistent material.
 */
export function loadServerKeys(dir: string): ServerKeys {
  if (!keysExist(dir)) throw fbError('FB_ERR_KEY_INVALID', `no keys in ${dir}; run keys init`);
  const rootPublicKey = readPublicKey(join(dir, KEY_FILES.rootPub));
  const releaseKey = readPrivateKey(join(dir, KEY_FILES.releaseKey));
  const assignmentKey = readPrivateKey(join(dir, KEY_FILES.assignmentKey));
  const certificates = readCertificates(join(dir, KEY_FILES.certificates));

  for (const [role, key] of [
    ['release', releaseKey],
    ['assignment', assignmentKey],
  ] as const) {
    const cert = certificates.find((c) => c.body.role === role);
    if (!cert) throw fbError('FB_ERR_KEY_INVALID', `no ${role} certificate in ${dir}`);
    checkCertificate(cert, rootPublicKey, key.publicKey);
  }
  return { rootPublicKey, releaseKey, assignmentKey, certificates };
}

function checkCertificate(cert: KeyCertificate, rootPublicKey: Uint8Array, pub: Uint8Array) {
  const role = cert.body.role;
  if (!verifyBody('cert', cert.body, cert.sig, rootPublicKey)) {
    throw fbError('FB_ERR_KEY_INVALID', `${role} certificate is not signed by the root key`);
  }
  if (!bytesEqual(cert.body.iss, keyId(rootPublicKey))) {
    throw fbError('FB_ERR_KEY_INVALID', `${role} certificate names another issuer`);
  }
  if (!bytesEqual(cert.body.pub, pub) || !bytesEqual(cert.body.kid, keyId(pub))) {
    throw fbError('FB_ERR_KEY_INVALID', `${role} certificate certifies another key`);
  }
}

/** Unix ms at which the first certificate expires (for start-up warnings). */
export function certificatesExpireAt(keys: ServerKeys): number {
  return Math.min(...keys.certificates.map((c) => c.body.exp * 1000));
}
