#!/usr/bin/env node
/**
 * `fetchback-agent --config agent.json`: runs the device agent until SIGTERM or SIGINT, which
 * stop it cleanly (presence offline, connection closed; state stays on disk).
 */
import { isFetchbackError } from '@fetchback/shared';
import { pino } from 'pino';

import { loadConfig } from './config.js';
import { AGENT_NAME, createNodeAgent } from './node-agent.js';

const USAGE = `Usage: fetchback-agent --config <agent.json>

Runs the Fetchback device agent. The config file is the JSON that
\`fetchback device add --out agent.json\` prints, plus optional agent fields
(dataDir, slots, installer, healthCheck, hooks, limits, currentVersion, logLevel).
See docs/device.md.`;

function configPath(argv: readonly string[]): string | undefined {
  const i = argv.findIndex((a) => a === '--config' || a === '-c');
  if (i >= 0) return argv[i + 1];
  return argv.find((a) => a.startsWith('--config='))?.slice('--config='.length);
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  if (argv.includes('--version')) {
    console.log(AGENT_NAME);
    return 0;
  }
  const file = configPath(argv);
  if (!file) {
    console.error(USAGE);
    return 2;
  }

  const config = await loadConfig(file);
  const logger = pino({ level: config.logLevel, base: { component: 'agent' } });
  const agent = createNodeAgent(config, logger);
  agent.on('fault', () => undefined);

  const stop = (signal: string) => {
    logger.info({ signal }, 'stopping');
    agent.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));

  await agent.start();
  logger.info({ deviceId: config.deviceId, version: agent.version }, 'agent connected');
  // Stay alive: timers are unref'd, so hold the event loop open until a signal arrives.
  setInterval(() => undefined, 1 << 30);
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (isFetchbackError(err)) console.error(`fetchback-agent: ${err.code}: ${err.message}`);
    else console.error('fetchback-agent:', err);
    process.exit(isFetchbackError(err, 'FB_ERR_CONFIG_INVALID') ? 78 : 1);
  },
);
