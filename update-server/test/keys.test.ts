import { renameSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { isFetchbackError, keyId, verifyBody } from '@fetchback/shared';
import { afterEach, describe, expect, it } from 'vitest';

import { KEY_FILES, initKeys, loadServerKeys, renewCertificates } from '../src/keys/index.js';
import { tempDir } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function keysDir(): string {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  return join(dir, 'keys');
}

const mode = (file: string) => statSync(file).mode & 0o777;

describe('keys init', () => {
  it('writes private keys with mode 0600 and public files readable by all', () => {
    const dir = keysDir();
    initKeys(dir);
    for (const f of [KEY_FILES.rootKey, KEY_FILES.releaseKey, KEY_FILES.assignmentKey]) {
      expect(mode(join(dir, f))).toBe(0o600);
    }
    for (const f of [KEY_FILES.rootPub, KEY_FILES.releasePub, KEY_FILES.certificates]) {
      expect(mode(join(dir, f)) & 0o044).toBe(0o044);
    }
  });

  it('issues release and assignment certificates that verify against the root key', () => {
    const dir = keysDir();
    const now = Date.UTC(2030, 0, 1);
    const keys = initKeys(dir, { now, certValidityDays: 10 });
    expect(keys.certificates.map((c) => c.body.role).sort()).toEqual(['assignment', 'release']);
    for (const cert of keys.certificates) {
      expect(verifyBody('cert', cert.body, cert.sig, keys.rootPublicKey)).toBe(true);
      expect(cert.body.iss).toEqual(keyId(keys.rootPublicKey));
      expect(cert.body.exp - cert.body.iat).toBe(10 * 86_400);
    }
    const release = keys.certificates.find((c) => c.body.role === 'release');
    expect(release?.body.pub).toEqual(keys.releaseKey.publicKey);
  });

  it('refuses to overwrite existing keys', () => {
    const dir = keysDir();
    initKeys(dir);
    expect(() => initKeys(dir)).toThrow(expect.objectContaining({ code: 'FB_ERR_STATE' }));
  });

  it('loads without the root private key, which may live offline', () => {
    const dir = keysDir();
    const created = initKeys(dir);
    const { dir: offline, cleanup } = tempDir();
    cleanups.push(cleanup);
    renameSync(join(dir, KEY_FILES.rootKey), join(offline, 'root.key'));
    const loaded = loadServerKeys(dir);
    expect(loaded.rootPublicKey).toEqual(created.rootPublicKey);
    expect(loaded.assignmentKey.secretKey).toEqual(created.assignmentKey.secretKey);

    const renewed = renewCertificates(dir, {
      rootKeyFile: join(offline, 'root.key'),
      now: Date.UTC(2031, 0, 1),
    });
    expect(renewed.certificates[0]?.body.iat).toBe(Date.UTC(2031, 0, 1) / 1000);
    try {
      renewCertificates(dir);
      throw new Error('renew without the root key should fail');
    } catch (err) {
      expect(isFetchbackError(err, 'FB_ERR_KEY_INVALID')).toBe(true);
    }
  });

  it('refuses certificates that another root signed', () => {
    const a = keysDir();
    const b = keysDir();
    initKeys(a);
    initKeys(b);
    renameSync(join(b, KEY_FILES.certificates), join(a, KEY_FILES.certificates));
    expect(() => loadServerKeys(a)).toThrow(
      expect.objectContaining({ code: 'FB_ERR_KEY_INVALID' }),
    );
  });
});
