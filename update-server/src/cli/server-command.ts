/**
 * `fetchback server`: every option of `config-spec.ts` as a flag, then `startServer`. SIGINT or
 * SIGTERM closes the API, delivery, bus and database in that order; a second signal exits at
 * once.
 */
import { type Command, Option } from 'commander';

import { OPTION_SPECS, resolveConfig } from '../config.js';
import { reportError } from './common.js';

/** Commander's attribute name for a kebab-case flag. */
function attributeOf(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function describe(spec: (typeof OPTION_SPECS)[number]): string {
  const unit = spec.unit ? ` (${spec.unit})` : '';
  const fallback = spec.default === undefined ? 'off' : String(spec.default);
  return `${spec.describe}${unit}; default ${fallback}; env ${spec.env}`;
}

export function registerServerCommand(program: Command): void {
  const command = program
    .command('server')
    .description('run the update server (embedded MQTT broker, HTTP API, SQLite in --data-dir)')
    .option('--config <file>', 'JSON config file; env FETCHBACK_CONFIG');
  for (const spec of OPTION_SPECS) {
    const flag = spec.kind === 'bool' ? `--${spec.flag}` : `--${spec.flag} <value>`;
    command.addOption(new Option(flag, describe(spec)));
  }
  command.action(async (flags: Record<string, unknown>) => {
    try {
      const overrides = Object.fromEntries(
        OPTION_SPECS.map((spec) => [spec.key, flags[attributeOf(spec.flag)]]),
      );
      const options = resolveConfig({ configFile: flags.config as string | undefined, overrides });
      // Loaded on demand: the client commands start faster without the server's modules.
      const { startServer } = await import('../server.js');
      const running = await startServer(options);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) process.exit(130);
        stopping = true;
        running.ctx.log.info({ signal }, 'shutting down');
        running.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    } catch (err) {
      reportError(err);
      process.exit(1);
    }
  });
}
