/** The server's MQTT side: the embedded aedes broker or a client of an external broker. */
import { startEmbeddedBus } from './embedded-broker.js';
import { startExternalBus } from './external.js';
import type { BusDeps, BusOptions, MessageBus } from './message-bus.js';

export { allowedFilters, checkConnect, checkPublish, checkSubscribe, mayForward } from './acl.js';
export { GuardedConnection, MqttFrameScanner, type FrameViolation } from './frame-guard.js';
export {
  BUS_DEFAULTS,
  EXTERNAL_SERVER_USERNAME,
  type BusDeps,
  type BusOptions,
  type BusTlsOptions,
  type MessageBus,
  type MessageHandler,
  type PublishOptions,
} from './message-bus.js';
export type { DevicePort, DeviceRecord, DeviceTouch } from './ports.js';
export { Rejections } from './rejections.js';
export { topicMatches } from './topic-match.js';

/** Starts the embedded broker, or connects to `options.externalUrl` when it is set. */
export function startMessageBus(options: BusOptions, deps: BusDeps): Promise<MessageBus> {
  return options.externalUrl ? startExternalBus(options, deps) : startEmbeddedBus(options, deps);
}
