/**
 * Builds an `Agent` with the real parts from a validated config: MQTT, files under the data
 * directory, the configured installer, reboot hook, health check and state hooks. The CLI uses
 * it; so can an end-to-end test that wants the real agent in-process.
 *
 *     <dataDir>/state/state.json     lifecycle state, trust, firmware version, job
 *     <dataDir>/state/outbox.json    ACKs and STATUS reports waiting for their ACK_RESP
 *     <dataDir>/state/ctab-<seq>.bin the verified chunk table of the job
 *     <dataDir>/state/held-<seq>.bin bitmap of the chunks held
 *     <dataDir>/state/device-key.bin the device's ed25519 key, which signs every ACK_REQ
 *     <slots.dir>/a.img, b.img, current -> a.img
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { fbError } from '@fetchback/shared';

import type { Logger } from 'pino';

import { Agent } from './agent.js';
import type { AgentConfig, AgentTlsFiles } from './config.js';
import { CommandInstaller } from './install/command-installer.js';
import { CommandHealthCheck, type HealthCheck, alwaysHealthy } from './install/health-check.js';
import { AbDirInstaller, type Installer, hookEnvironment } from './install/installer.js';
import { CommandRebooter, ExitRebooter, type Rebooter } from './install/rebooter.js';
import { runCommand } from './install/run-command.js';
import { installContextOf } from './lifecycle/install-steps.js';
import type { LifecycleState } from './lifecycle/transitions.js';
import type { Job } from './lifecycle/agent-state.js';
import { DirSlots } from './storage/dir-slots.js';
import { FileStateStore } from './storage/state-store.js';
import { MqttTransport } from './transport/mqtt-transport.js';

export const AGENT_NAME = 'fetchback-agent/0.1.0';

export function createNodeAgent(config: AgentConfig, logger: Logger): Agent {
  const slots = new DirSlots(config.slots.dir);
  return new Agent({
    deviceId: config.deviceId,
    hardwareClass: config.hardwareClass,
    rootPublicKey: config.rootPublicKey,
    currentVersion: config.currentVersion,
    topicPrefix: config.topicPrefix,
    transport: new MqttTransport({
      brokerUrl: config.brokerUrl,
      clientId: config.deviceId,
      ...(config.username !== undefined ? { username: config.username } : {}),
      ...(config.password !== undefined ? { password: config.password } : {}),
      ...(config.tls !== undefined ? { tls: readTlsFiles(config.tls) } : {}),
      keepaliveSeconds: config.keepaliveSeconds,
      reconnectPeriodMs: config.reconnectPeriodMs,
      logger,
    }),
    stateStore: new FileStateStore(join(config.dataDir, 'state')),
    slots,
    installer: installerOf(config, slots),
    rebooter: rebooterOf(config),
    healthCheck: healthCheckOf(config),
    limits: config.limits,
    logger,
    stateHook: stateHookOf(config, slots, logger),
    agentName: AGENT_NAME,
  });
}

function installerOf(config: AgentConfig, slots: DirSlots): Installer {
  const c = config.installer;
  if (c.type === 'ab-dir') return new AbDirInstaller(slots);
  return new CommandInstaller({
    install: c.install,
    ...(c.markGood !== undefined ? { markGood: c.markGood } : {}),
    ...(c.rollback !== undefined ? { rollback: c.rollback } : {}),
    timeoutMs: c.timeoutMs,
  });
}

function rebooterOf(config: AgentConfig): Rebooter {
  const { reboot, timeoutMs } = config.installer;
  return reboot === 'exit' ? new ExitRebooter(0) : new CommandRebooter(reboot, timeoutMs);
}

function healthCheckOf(config: AgentConfig): HealthCheck {
  const { command, timeoutMs } = config.healthCheck;
  return command ? new CommandHealthCheck(command, timeoutMs) : alwaysHealthy;
}

function stateHookOf(config: AgentConfig, slots: DirSlots, logger: Logger) {
  if (Object.keys(config.hooks).length === 0) return undefined;
  return async (state: LifecycleState, job: Job | undefined): Promise<void> => {
    const command = config.hooks[state];
    if (!command) return;
    const env = {
      FETCHBACK_STATE: state,
      ...(job ? hookEnvironment(installContextOf(job, slots)) : {}),
    };
    const result = await runCommand(command, { timeoutMs: config.hookTimeoutMs, env });
    // A state hook observes the update; its failure is logged and does not change the outcome.
    if (result.exitCode !== 0) {
      logger.warn(
        { state, exitCode: result.exitCode, timedOut: result.timedOut },
        'state hook failed',
      );
    }
  };
}

/**
 * Reads the PEM files named in the config.
 *
 * @throws FetchbackError `FB_ERR_CONFIG_INVALID` naming the file that cannot be read.
 */
function readTlsFiles(files: AgentTlsFiles): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const read = (field: string, file: string | undefined) => {
    if (file === undefined) return {};
    try {
      return { [field]: readFileSync(file) };
    } catch (err) {
      throw fbError(
        'FB_ERR_CONFIG_INVALID',
        `cannot read tls file ${file}: ${(err as Error).message}`,
        {
          field: `tls.${field}`,
        },
      );
    }
  };
  return {
    ...read('ca', files.caFile),
    ...read('cert', files.certFile),
    ...read('key', files.keyFile),
  };
}
