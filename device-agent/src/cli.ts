#!/usr/bin/env node
/**
 * `fetchback-agent --config agent.json`: runs the device agent until SIGTERM or SIGINT, which
 * stop it cleanly (presence offline, connection closed; state stays on disk).
 *
 * `fetchback-agent --device-key [--data-dir DIR]`: makes the device key if there is none yet
 * and prints its public key, for `fetchback device add --device-key` at provisioning.
 */
import { join } from 'node:path';

import { isFetchbackError, toHex } from '@fetchback/shared';
import { pino } from 'pino';

import { DEFAULT_DATA_DIR, loadConfig } from './config.js';
import { loadOrCreateDeviceKey } from './device-key.js';
import { AGENT_NAME, createNodeAgent } from './node-agent.js';
import { FileStateStore } from './storage/state-store.js';

const USAGE = `Usage: fetchback-agent --config <agent.json>
       fetchback-agent --device-key [--data-dir <dir>]

Runs the Fetchback device agent. The config file is the JSON that
\`fetchback device add --out agent.json\` prints, plus optional agent fields
(dataDir, slots, installer, healthCheck, hooks, limits, currentVersion, logLevel).

--device-key makes the device's signing key in <dir>/state if it has none
(default dir: ${DEFAULT_DATA_DIR}, the agent's default dataDir) and prints its
public key in hex, to register the device with
\`fetchback device add <id> --class <hw> --device-key <hex>\`.
See docs/device.md.`;

function flagValue(argv: readonly string[], long: string, short?: string): string | undefined {
  const i = argv.findIndex((a) => a === long || (short !== undefined && a === short));
  if (i >= 0) return argv[i + 1];
  return argv.find((a) => a.startsWith(`${long}=`))?.slice(long.length + 1);
}

/** Prints the public half of the device key, made first if missing. */
async function printDeviceKey(dataDir: string): Promise<number> {
  const key = await loadOrCreateDeviceKey(new FileStateStore(join(dataDir, 'state')));
  console.log(toHex(key.publicKey));
  return 0;
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
  if (argv.includes('--device-key')) {
    return printDeviceKey(flagValue(argv, '--data-dir') ?? DEFAULT_DATA_DIR);
  }
  const file = flagValue(argv, '--config', '-c');
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
