/** `fetchback release create|list|show` and `fetchback assign`. */
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';

import type { Release } from './api-types.js';
import { action, clientFor, integer, isJson, print, table } from './common.js';

const RELEASE_HEADERS = ['ID', 'NAME', 'VERSION', 'CLASS', 'SECV', 'SIZE', 'CREATED'];

function releaseRows(releases: Release[]) {
  return releases.map((r) => [
    r.id,
    r.name,
    r.version,
    r.hardwareClass,
    r.securityVersion,
    r.size,
    r.createdAt,
  ]);
}

interface CreateFlags {
  image: string;
  version: string;
  class: string;
  name?: string;
  securityVersion?: number;
}

/** A progress bar on an interactive stderr; nothing when piped or with --json. */
function progressBar(command: Command): {
  update: (sent: number, total: number) => void;
  stop: () => void;
} {
  if (!process.stderr.isTTY || isJson(command))
    return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar({
    stream: process.stderr,
    format: 'uploading [{bar}] {percentage}% {value}/{total} bytes',
  });
  let started = false;
  return {
    update: (sent, total) => {
      if (!started) bar.start(total, 0);
      started = true;
      bar.update(sent);
    },
    stop: () => started && bar.stop(),
  };
}

export function registerReleaseCommands(program: Command): void {
  const release = program.command('release').description('create and list releases');

  release
    .command('create')
    .description('upload an image (streamed) and create a signed release')
    .requiredOption('--image <file>', 'firmware image file')
    .requiredOption('--version <version>', 'release version, e.g. 1.2.0')
    .requiredOption('--class <hw>', 'hardware class')
    .option('--name <name>', 'release name (default firmware)')
    .option('--security-version <n>', 'security version (default 0)', integer)
    .action(
      action(async (flags: CreateFlags, command: Command) => {
        const bar = progressBar(command);
        const created = await clientFor(command)
          .createReleaseFromFile(
            {
              version: flags.version,
              hardwareClass: flags.class,
              name: flags.name,
              securityVersion: flags.securityVersion,
            },
            flags.image,
            bar.update,
          )
          .finally(bar.stop);
        print(
          command,
          created,
          () =>
            `created release ${created.id} (${created.name} ${created.version} for ${created.hardwareClass}, ` +
            `${created.size} bytes, ${created.chunkCount} chunks)`,
        );
      }),
    );

  release
    .command('list')
    .description('list releases, newest first')
    .option('--name <name>', 'only this release name')
    .option('--class <hw>', 'only this hardware class')
    .option('--limit <n>', 'page size (max 1000)', integer)
    .option('--offset <n>', 'skip this many', integer)
    .action(
      action(
        async (
          flags: { name?: string; class?: string; limit?: number; offset?: number },
          command: Command,
        ) => {
          const page = await clientFor(command).listReleases(flags);
          print(command, page, () =>
            [
              table(RELEASE_HEADERS, releaseRows(page.items)),
              `${page.items.length} of ${page.total}`,
            ].join('\n'),
          );
        },
      ),
    );

  release
    .command('show <id>')
    .description('show a release')
    .action(
      action(async (id: string, _flags: object, command: Command) => {
        const r = await clientFor(command).getRelease(id);
        print(command, r, () =>
          [
            table(RELEASE_HEADERS, releaseRows([r])),
            `image digest      ${r.imageDigest}`,
            `chunk table       ${r.tableDigest} (${r.chunkCount} x ${r.chunkBytes} bytes)`,
            `statement digest  ${r.statementDigest}`,
          ].join('\n'),
        );
      }),
    );

  program
    .command('assign <devices...>')
    .description('assign a release to devices (signed manifest, published retained)')
    .requiredOption('--release <id>', 'release id')
    .option('--ttl <seconds>', 'assignment validity, seconds', integer)
    .action(
      action(
        async (devices: string[], flags: { release: string; ttl?: number }, command: Command) => {
          const result = await clientFor(command).assign(flags.release, devices, {
            ttlS: flags.ttl,
          });
          print(command, result, () =>
            result.assignments
              .map((a) => `assigned ${result.releaseId} to ${a.deviceId} (seq ${a.seq})`)
              .join('\n'),
          );
        },
      ),
    );
}
