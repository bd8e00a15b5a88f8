/** `fetchback device add|list|show|remove|reset-key`. */
import { writeFileSync } from 'node:fs';

import type { Command } from 'commander';

import { parseTagPair } from '../store/validate.js';
import type { Device } from './api-types.js';
import { action, clientFor, collect, integer, print, table } from './common.js';

function deviceRows(devices: Device[]) {
  return devices.map((d) => [
    d.id,
    d.hardwareClass,
    d.status,
    d.state,
    d.currentVersion,
    d.online ? 'online' : 'offline',
    d.lastSeen,
  ]);
}

const DEVICE_HEADERS = ['ID', 'CLASS', 'STATUS', 'STATE', 'VERSION', 'PRESENCE', 'LAST SEEN'];

function tagsOf(pairs: string[] = []): Record<string, string> {
  return Object.fromEntries(pairs.map(parseTagPair));
}

export function registerDeviceCommands(program: Command): void {
  const device = program.command('device').description('register and manage devices');

  device
    .command('add <id>')
    .description('register a device; prints its agent config (with its secret, shown once)')
    .requiredOption('--class <hw>', 'hardware class')
    .option('--tag <k=v>', 'tag (repeatable)', collect)
    .option('--out <file>', 'write the agent config to this file (mode 0600)')
    .option(
      '--device-key <hex>',
      "the device's public key (`fetchback-agent --device-key` prints it): " +
        'only ACKs it signs are accepted',
    )
    .action(
      action(
        async (
          id: string,
          flags: { class: string; tag?: string[]; out?: string; deviceKey?: string },
          command: Command,
        ) => {
          const result = await clientFor(command).registerDevice({
            id,
            hardwareClass: flags.class,
            tags: tagsOf(flags.tag),
            ...(flags.deviceKey ? { deviceKey: flags.deviceKey } : {}),
          });
          const config = `${JSON.stringify(result.agentConfig, null, 2)}\n`;
          if (flags.out) writeFileSync(flags.out, config, { mode: 0o600 });
          print(command, result, () =>
            flags.out ? `registered ${id}; agent config written to ${flags.out}` : config.trimEnd(),
          );
        },
      ),
    );

  device
    .command('list')
    .description('list devices')
    .option('--class <hw>', 'only this hardware class')
    .option('--tag <k=v>', 'only devices with this tag (repeatable)', collect)
    .option('--state <state>', 'only devices that last reported this state')
    .option('--status <status>', 'active or decommissioned')
    .option('--limit <n>', 'page size (max 1000)', integer)
    .option('--offset <n>', 'skip this many', integer)
    .action(
      action(
        async (
          flags: {
            class?: string;
            tag?: string[];
            state?: string;
            status?: 'active';
            limit?: number;
            offset?: number;
          },
          command: Command,
        ) => {
          const page = await clientFor(command).listDevices({
            class: flags.class,
            tags: tagsOf(flags.tag),
            state: flags.state,
            status: flags.status,
            limit: flags.limit,
            offset: flags.offset,
          });
          print(command, page, () =>
            [
              table(DEVICE_HEADERS, deviceRows(page.items)),
              `${page.items.length} of ${page.total}`,
            ].join('\n'),
          );
        },
      ),
    );

  device
    .command('show <id>')
    .description('show a device with its assignments, ACKs and status history')
    .action(
      action(async (id: string, _flags: object, command: Command) => {
        const detail = await clientFor(command).getDevice(id);
        const { device: d, history } = detail;
        print(command, detail, () =>
          [
            table(DEVICE_HEADERS, deviceRows([d])),
            `tags: ${JSON.stringify(d.tags)}`,
            `device key: ${detail.deviceKey ? detail.deviceKey.keyId : 'none pinned yet'}`,
            '',
            'assignments:',
            table(
              ['SEQ', 'RELEASE', 'ROLLOUT', 'ISSUED', 'EXPIRES'],
              history.assignments.map((a) => [
                a.seq,
                a.releaseId,
                a.rolloutId,
                a.issuedAt,
                a.expiresAt,
              ]),
            ),
            '',
            'acks:',
            table(
              ['SEQ', 'STEP', 'CODE', 'VERSION', 'SIGNED', 'AT'],
              history.acks.map((a) => [
                a.seq,
                a.step,
                a.code,
                a.version,
                a.signed ? 'yes' : 'no',
                a.at,
              ]),
            ),
            '',
            'status:',
            table(
              ['STATE', 'CODE', 'VERSION', 'PROGRESS', 'AT'],
              history.status.map((s) => [
                s.state,
                s.code,
                s.version,
                s.total ? `${s.have}/${s.total}` : null,
                s.at,
              ]),
            ),
          ].join('\n'),
        );
      }),
    );

  device
    .command('remove <id>')
    .description('decommission a device: revoke its credentials and drop its connection')
    .action(
      action(async (id: string, _flags: object, command: Command) => {
        const result = await clientFor(command).decommissionDevice(id);
        print(command, result, () => `decommissioned ${id}`);
      }),
    );

  device
    .command('reset-key <id>')
    .description(
      "forget the device's pinned key (its data directory was wiped); " +
        'its next signed ACK pins a new one',
    )
    .action(
      action(async (id: string, _flags: object, command: Command) => {
        const result = await clientFor(command).resetDeviceKey(id);
        print(command, result, () =>
          result.forgotten ? `forgot the key of ${id}` : `${id} had no pinned key`,
        );
      }),
    );
}
