/** `fetchback token create|revoke|list` (admin tokens only). */
import type { Command } from 'commander';

import type { Role } from './api-types.js';
import { action, clientFor, print, table } from './common.js';

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('API tokens (needs an admin token)');

  token
    .command('create')
    .description('create a token; its secret is printed once')
    .requiredOption('--name <name>', 'token name (the actor in the audit log)')
    .requiredOption('--role <role>', 'admin, operator or viewer')
    .action(
      action(async (flags: { name: string; role: Role }, command: Command) => {
        const created = await clientFor(command).createToken(flags.name, flags.role);
        print(
          command,
          created,
          () => `${created.token}\n(token ${created.id}, ${created.role}; shown only now)`,
        );
      }),
    );

  token
    .command('revoke <idOrName>')
    .description('revoke a token by id or name')
    .action(
      action(async (idOrName: string, _flags: object, command: Command) => {
        const revoked = await clientFor(command).revokeToken(idOrName);
        print(command, revoked, () => `revoked ${revoked.id} (${revoked.name})`);
      }),
    );

  token
    .command('list')
    .description('list tokens (never their secrets)')
    .action(
      action(async (_flags: object, command: Command) => {
        const { items } = await clientFor(command).listTokens();
        print(command, { items }, () =>
          table(
            ['ID', 'NAME', 'ROLE', 'CREATED', 'REVOKED'],
            items.map((t) => [t.id, t.name, t.role, t.createdAt, t.revokedAt]),
          ),
        );
      }),
    );
}
