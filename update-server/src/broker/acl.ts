/**
 * The broker's access rules as pure functions, so that each rule is tested on its own and the
 * aedes hooks (`embedded-broker.ts`) only translate their answers. The rules
 * (docs/external-broker.md, "What the embedded broker enforces"):
 *
 * - a client authenticates with username = device id and password = device secret, and its
 *   client id must equal the username;
 * - a device writes only `{prefix}/d/{its id}/out/{fetch|ack|status|presence}`, and retains only
 *   on `out/presence` (its presence and last will); nobody but the server writes `in/` topics;
 * - a device subscribes only to its own `in/#`, `in/+` or `in/{leaf}`; no other filter, so no
 *   wildcard can reach another device;
 * - a packet is forwarded to a device only when its topic is that device's own `in/` topic;
 * - every `$`-prefixed topic is refused [MQTT-4.7.2-1].
 */
import { type ErrorCode, IN_LEAVES, type Topics, isValidDeviceId } from '@fetchback/shared';

import type { DevicePort } from './ports.js';

/** Longest password accepted before it reaches the scrypt check, in bytes. */
export const MAX_PASSWORD_BYTES = 256;

/** A refusal: the code to log and count. */
export interface Refusal {
  readonly code: ErrorCode;
  readonly reason: string;
}

/** CONNACK return codes of MQTT 3.1.1 §3.2.2.3 used for refusals. */
export const CONNACK_IDENTIFIER_REJECTED = 2;
export const CONNACK_BAD_CREDENTIALS = 4;

/** A refused CONNECT, with the CONNACK return code to answer. */
export interface ConnectRefusal extends Refusal {
  readonly returnCode: number;
}

/** Checks the credentials of a CONNECT; undefined when the client may connect. */
export async function checkConnect(
  clientId: string | undefined,
  username: string | undefined,
  password: Buffer | undefined,
  devices: Pick<DevicePort, 'authenticate'>,
): Promise<ConnectRefusal | undefined> {
  if (username === undefined || password === undefined) {
    return refuseConnect('FB_ERR_BROKER_AUTH', 'no username or password', CONNACK_BAD_CREDENTIALS);
  }
  if (!isValidDeviceId(username)) {
    return refuseConnect(
      'FB_ERR_BROKER_AUTH',
      'username is not a device id',
      CONNACK_BAD_CREDENTIALS,
    );
  }
  if (clientId !== username) {
    return refuseConnect(
      'FB_ERR_CLIENT_ID_MISMATCH',
      'client id differs from username',
      CONNACK_IDENTIFIER_REJECTED,
    );
  }
  if (password.length > MAX_PASSWORD_BYTES) {
    return refuseConnect('FB_ERR_BROKER_AUTH', 'password too long', CONNACK_BAD_CREDENTIALS);
  }
  if (!(await devices.authenticate(username, password.toString('utf8')))) {
    return refuseConnect('FB_ERR_BROKER_AUTH', 'credentials refused', CONNACK_BAD_CREDENTIALS);
  }
  return undefined;
}

function refuseConnect(code: ErrorCode, reason: string, returnCode: number): ConnectRefusal {
  return { code, reason, returnCode };
}

/**
 * Checks a PUBLISH from a device (or its last will). `clientId` is undefined for a will
 * published after its client is gone; the will's own topic then names the device.
 */
export function checkPublish(
  topics: Topics,
  clientId: string | undefined,
  topic: string,
  retain: boolean,
): Refusal | undefined {
  if (topic.startsWith('$')) return { code: 'FB_ERR_TOPIC_FORBIDDEN', reason: '$ topic' };
  const parsed = topics.parse(topic);
  if (!parsed || parsed.direction !== 'out') {
    return { code: 'FB_ERR_TOPIC_FORBIDDEN', reason: 'not an out/ topic' };
  }
  if (clientId !== undefined && parsed.deviceId !== clientId) {
    return { code: 'FB_ERR_TOPIC_FORBIDDEN', reason: 'out/ topic of another device' };
  }
  if (clientId === undefined && parsed.leaf !== 'presence') {
    return { code: 'FB_ERR_TOPIC_FORBIDDEN', reason: 'orphan will outside out/presence' };
  }
  // Only presence is retained (the device's online flag and its last will); anything else
  // retained would grow the broker's unbounded retained store.
  if (retain && parsed.leaf !== 'presence') {
    return { code: 'FB_ERR_RETAIN_FORBIDDEN', reason: `retained ${parsed.leaf}` };
  }
  return undefined;
}

/** The exact filters a device may subscribe to: nothing with a wildcard above its own `in/`. */
export function allowedFilters(topics: Topics, deviceId: string): ReadonlySet<string> {
  const base = `${topics.prefix}/d/${deviceId}/in`;
  return new Set([`${base}/#`, `${base}/+`, ...IN_LEAVES.map((leaf) => `${base}/${leaf}`)]);
}

/** Checks one filter of a SUBSCRIBE. */
export function checkSubscribe(
  topics: Topics,
  clientId: string,
  filter: string,
): Refusal | undefined {
  if (filter.startsWith('$')) return { code: 'FB_ERR_TOPIC_FORBIDDEN', reason: '$ filter' };
  if (!isValidDeviceId(clientId) || !allowedFilters(topics, clientId).has(filter)) {
    return { code: 'FB_ERR_TOPIC_FORBIDDEN', reason: 'filter outside own in/' };
  }
  return undefined;
}

/**
 * True when a packet may be delivered to a device client: only its own `in/` topics. This is
 * checked on every delivery, independently of the subscription that matched, because an aedes
 * persistent session can hold a filter that `authorizeSubscribe` refused in a mixed SUBSCRIBE.
 */
export function mayForward(topics: Topics, clientId: string, topic: string): boolean {
  const parsed = topics.parse(topic);
  return parsed !== undefined && parsed.direction === 'in' && parsed.deviceId === clientId;
}
