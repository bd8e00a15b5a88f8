/**
 * The common path of every device message: parse the topic, check the device, decode, handle,
 * each message in its own promise chain so that no handler holds back the broker (or the
 * PUBACK of the device's QoS 1 publish) and no failure escapes. Refusals are logged once with
 * their code and counted.
 */
import { type OutLeaf, type Topics, isFetchbackError } from '@fetchback/shared';
import type { Logger } from 'pino';

import type { MessageHandler } from '../broker/message-bus.js';
import type { Rejections } from '../broker/rejections.js';
import type { DevicePort, DeviceRecord } from './ports.js';

export interface InboundDeps {
  readonly topics: Topics;
  readonly devices: DevicePort;
  readonly rejections: Rejections;
  readonly log: Logger;
}

/** Builds the bus handler for one `out/` leaf. */
export function deviceMessageHandler<T>(
  deps: InboundDeps,
  leaf: OutLeaf,
  decode: (payload: Uint8Array) => T,
  handle: (device: DeviceRecord, message: T) => Promise<void> | void,
): MessageHandler {
  return (topic, payload) => {
    let deviceId: string | undefined;
    Promise.resolve()
      .then(() => {
        const parsed = deps.topics.parseStrict(topic);
        deviceId = parsed.deviceId;
        if (parsed.direction !== 'out' || parsed.leaf !== leaf) return;
        const device = deps.devices.get(parsed.deviceId);
        if (!device) return reject(deps, 'FB_ERR_DEVICE_UNKNOWN', parsed.deviceId, leaf);
        if (device.status !== 'active') {
          return reject(deps, 'FB_ERR_DEVICE_DECOMMISSIONED', parsed.deviceId, leaf);
        }
        return handle(device, decode(payload));
      })
      .catch((err: unknown) => {
        if (isFetchbackError(err) && err.fault === 'remote') {
          deps.rejections.record(
            err.code,
            { deviceId, leaf, bytes: payload.length, detail: err.message },
            'device message refused',
          );
          return;
        }
        deps.rejections.record(
          'FB_ERR_INTERNAL',
          { deviceId, leaf, err: (err as Error)?.message },
          'device message handling failed',
        );
      });
  };
}

function reject(deps: InboundDeps, code: string, deviceId: string, leaf: OutLeaf): void {
  deps.rejections.record(code, { deviceId, leaf }, 'message from an inactive or unknown device');
}
