/**
 * What the broker needs from the rest of the server. server-core's `DeviceRepository`
 * (`store/devices.ts`) satisfies `DevicePort` structurally.
 */

/** A registered device, as the broker and delivery see it. */
export interface DeviceRecord {
  readonly id: string;
  readonly hwClass: string;
  readonly status: 'active' | 'decommissioned';
  readonly tags: Record<string, string>;
}

/** Fields a device reported; each one present is stored. */
export interface DeviceTouch {
  state?: string;
  currentVersion?: string;
  /**
   * Device time (Unix ms) of the report that carries `state` and `currentVersion`. With it, a
   * report older than the one that set the current state (a retry that arrived late) leaves
   * state and version as they are.
   */
  stateAt?: number;
  online?: boolean;
  lastSeen?: number;
}

export interface DevicePort {
  get(id: string): DeviceRecord | undefined;
  /** False for unknown, decommissioned or wrong secret; scrypt hash, constant-time compare. */
  authenticate(id: string, secret: string): Promise<boolean>;
  /** Records what the device reported. */
  touch(id: string, fields: DeviceTouch): void;
}
