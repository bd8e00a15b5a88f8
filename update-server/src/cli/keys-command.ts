/**
 * `fetchback keys init|renew`: create the root, release and assignment keys and the root-signed
 * certificates in `<data>/keys/`, or renew the certificates with the root key.
 */
import { join } from 'node:path';

import { toHex } from '@fetchback/shared';
import type { Command } from 'commander';

import { resolveConfig } from '../config.js';
import { type ServerKeys, initKeys, renewCertificates } from '../keys/index.js';
import { action, integer, print } from './common.js';

interface KeysFlags {
  dataDir?: string;
  certValidityDays?: number;
  config?: string;
  rootKey?: string;
}

function keysDir(flags: KeysFlags): { dir: string; certValidityDays: number } {
  const options = resolveConfig({
    configFile: flags.config,
    overrides: { dataDir: flags.dataDir, certValidityDays: flags.certValidityDays },
  });
  return { dir: join(options.dataDir, 'keys'), certValidityDays: options.certValidityDays };
}

function summary(dir: string, keys: ServerKeys) {
  return {
    dir,
    rootPublicKey: toHex(keys.rootPublicKey),
    certificates: keys.certificates.map((c) => ({
      role: c.body.role,
      expiresAt: new Date(c.body.exp * 1000).toISOString(),
    })),
  };
}

export function registerKeysCommands(program: Command): void {
  const keys = program.command('keys').description('server key material');
  const common = (c: Command) =>
    c
      .option('--data-dir <dir>', 'data directory (keys go in <dir>/keys); env FETCHBACK_DATA_DIR')
      .option('--config <file>', 'server JSON config file')
      .option('--cert-validity-days <days>', 'certificate validity, days (default 365)', integer);

  common(keys.command('init').description('create root, release and assignment keys')).action(
    action(async (flags: KeysFlags, command: Command) => {
      const { dir, certValidityDays } = keysDir(flags);
      const created = summary(dir, initKeys(dir, { certValidityDays }));
      print(command, created, () =>
        [
          `created keys in ${dir}`,
          `root public key (devices pin this): ${created.rootPublicKey}`,
          ...created.certificates.map((c) => `${c.role} certificate expires ${c.expiresAt}`),
          `Move ${join(dir, 'root.key')} offline now: the server runs without it; it is`,
          'needed only to renew certificates (fetchback keys renew --root-key FILE).',
        ].join('\n'),
      );
    }),
  );

  common(keys.command('renew').description('re-issue the certificates with the root key'))
    .option('--root-key <file>', 'root private key (default <data>/keys/root.key)')
    .action(
      action(async (flags: KeysFlags, command: Command) => {
        const { dir, certValidityDays } = keysDir(flags);
        const renewed = summary(
          dir,
          renewCertificates(dir, { certValidityDays, rootKeyFile: flags.rootKey }),
        );
        print(command, renewed, () =>
          [
            `renewed certificates in ${dir}; restart the server to use them`,
            ...renewed.certificates.map((c) => `${c.role} certificate expires ${c.expiresAt}`),
          ].join('\n'),
        );
      }),
    );
}
