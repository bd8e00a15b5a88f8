/**
 * Certificates for TLS tests, made by openssl in a directory of the test's: a CA, a server
 * certificate for 127.0.0.1 and localhost, and one client certificate per device whose subject
 * CN is the device id.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCertificates {
  readonly caFile: string;
  readonly server: { readonly certFile: string; readonly keyFile: string };
  /** Client certificate and key per device id. */
  readonly devices: Record<string, { readonly certFile: string; readonly keyFile: string }>;
}

const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });

export function makeTestCertificates(dir: string, deviceIds: readonly string[]): TestCertificates {
  const file = (name: string) => join(dir, name);
  const caFile = file('ca.crt');
  openssl('genrsa', '-out', file('ca.key'), '2048');
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    file('ca.key'),
    '-subj',
    '/CN=fetchback-test-ca',
    '-days',
    '2',
    '-out',
    caFile,
  );

  const issue = (name: string, cn: string, extensions?: string) => {
    const pair = { certFile: file(`${name}.crt`), keyFile: file(`${name}.key`) };
    openssl('genrsa', '-out', pair.keyFile, '2048');
    openssl('req', '-new', '-key', pair.keyFile, '-subj', `/CN=${cn}`, '-out', file(`${name}.csr`));
    const ext: string[] = [];
    if (extensions) {
      writeFileSync(file(`${name}.ext`), `${extensions}\n`);
      ext.push('-extfile', file(`${name}.ext`));
    }
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      caFile,
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      pair.certFile,
      ...ext,
    );
    return pair;
  };

  return {
    caFile,
    server: issue('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost'),
    devices: Object.fromEntries(deviceIds.map((id) => [id, issue(`device-${id}`, id)])),
  };
}
