/**
 * The topic scheme (`docs/protocol.md` §2). Every device topic is
 * `{prefix}/d/{deviceId}/{in|out}/{leaf}`; the default prefix is `fb/v1`.
 */
import { fbError } from './errors.js';

/** Default topic prefix. */
export const DEFAULT_TOPIC_PREFIX = 'fb/v1';

/** Longest device id, in characters. */
export const MAX_DEVICE_ID_LENGTH = 64;

const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const PREFIX_PATTERN = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** Leaves of topics the server writes and the device reads. */
export const IN_LEAVES = ['manifest', 'chunk', 'ack'] as const;
/** Leaves of topics the device writes and the server reads. */
export const OUT_LEAVES = ['fetch', 'ack', 'status', 'presence'] as const;

export type InLeaf = (typeof IN_LEAVES)[number];
export type OutLeaf = (typeof OUT_LEAVES)[number];

/** A parsed device topic. */
export type ParsedTopic =
  | { readonly deviceId: string; readonly direction: 'in'; readonly leaf: InLeaf }
  | { readonly deviceId: string; readonly direction: 'out'; readonly leaf: OutLeaf };

/** True when `id` is a valid device id: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting `.-_`. */
export function isValidDeviceId(id: unknown): id is string {
  return typeof id === 'string' && DEVICE_ID_PATTERN.test(id);
}

/**
 * Checks a device id. Valid ids cannot carry MQTT wildcards (`+`, `#`), a level separator
 * (`/`) or a leading `$` [MQTT-4.7.2-1], so no id can widen a subscription or an ACL pattern.
 *
 * @throws FetchbackError `FB_ERR_DEVICE_ID_INVALID`
 */
export function assertDeviceId(id: unknown): string {
  if (!isValidDeviceId(id)) {
    const shown = typeof id === 'string' ? JSON.stringify(id.slice(0, 80)) : typeof id;
    throw fbError(
      'FB_ERR_DEVICE_ID_INVALID',
      `"deviceId" expected 1-${MAX_DEVICE_ID_LENGTH} of [A-Za-z0-9._-] starting alphanumeric, ` +
        `got ${shown}`,
    );
  }
  return id;
}

/** Builds and parses the topics of one prefix. */
export class Topics {
  readonly prefix: string;

  /** @throws FetchbackError `FB_ERR_ARGUMENT` for a prefix with wildcards or empty levels. */
  constructor(prefix: string = DEFAULT_TOPIC_PREFIX) {
    if (!PREFIX_PATTERN.test(prefix) || prefix.startsWith('$')) {
      throw fbError('FB_ERR_ARGUMENT', `"prefix" expected levels of [A-Za-z0-9._-], got ${prefix}`);
    }
    this.prefix = prefix;
  }

  /** `{prefix}/d/{id}/in/{leaf}`
   *
   * @throws FetchbackError `FB_ERR_DEVICE_ID_INVALID`
   */
  in(deviceId: string, leaf: InLeaf): string {
    return `${this.prefix}/d/${assertDeviceId(deviceId)}/in/${leaf}`;
  }

  /** `{prefix}/d/{id}/out/{leaf}`
   *
   * @throws FetchbackError `FB_ERR_DEVICE_ID_INVALID`
   */
  out(deviceId: string, leaf: OutLeaf): string {
    return `${this.prefix}/d/${assertDeviceId(deviceId)}/out/${leaf}`;
  }

  /** The filter a device subscribes to for everything addressed to it.
   *
   * @throws FetchbackError `FB_ERR_DEVICE_ID_INVALID`
   */
  deviceInFilter(deviceId: string): string {
    return `${this.prefix}/d/${assertDeviceId(deviceId)}/in/#`;
  }

  /** The filter the server subscribes to for one leaf of all devices: `{prefix}/d/+/out/{leaf}` */
  allOut(leaf: OutLeaf): string {
    return `${this.prefix}/d/+/out/${leaf}`;
  }

  /** Parses a concrete topic, or returns `undefined` when it is not a device topic here. */
  parse(topic: string): ParsedTopic | undefined {
    if (!topic.startsWith(`${this.prefix}/d/`)) return undefined;
    const rest = topic.slice(this.prefix.length + 3).split('/');
    if (rest.length !== 3) return undefined;
    const [deviceId, direction, leaf] = rest as [string, string, string];
    if (!isValidDeviceId(deviceId)) return undefined;
    if (direction === 'in' && (IN_LEAVES as readonly string[]).includes(leaf)) {
      return { deviceId, direction, leaf: leaf as InLeaf };
    }
    if (direction === 'out' && (OUT_LEAVES as readonly string[]).includes(leaf)) {
      return { deviceId, direction, leaf: leaf as OutLeaf };
    }
    return undefined;
  }

  /**
   * Parses a topic that must be a device topic.
   *
   * @throws FetchbackError `FB_ERR_TOPIC_INVALID`
   */
  parseStrict(topic: string): ParsedTopic {
    const parsed = this.parse(topic);
    if (!parsed) throw fbError('FB_ERR_TOPIC_INVALID', JSON.stringify(topic.slice(0, 200)));
    return parsed;
  }
}
