/**
 * The small interfaces the rollout engine needs from the rest of the server. The concrete
 * classes (delivery's AssignmentService, the core's AuditLog, the server clock) satisfy them
 * structurally; tests pass doubles.
 */
import type { Logger } from 'pino';

import type { ServerEvents } from '../events.js';

/** Issues signed assignments. The engine assigns through this and nothing else. */
export interface AssignmentPort {
  /**
   * Signs, stores and publishes an assignment of `releaseId` to `deviceId`.
   *
   * @throws FetchbackError `FB_ERR_DEVICE_UNKNOWN`, `FB_ERR_DEVICE_DECOMMISSIONED`,
   *   `FB_ERR_RELEASE_UNKNOWN` or `FB_ERR_WRONG_HW_CLASS`. Must answer synchronously (delivery's
   *   AssignmentService does): the engine stores the sequence number in the same transaction;
   *   a Promise is refused with `FB_ERR_INTERNAL`.
   */
  assign(
    deviceId: string,
    releaseId: string,
    opts?: { rolloutId?: string },
  ): { seq: number } | Promise<{ seq: number }>;
}

/** Records who changed what (the core's AuditLog); the engine writes its own decisions. */
export interface AuditPort {
  record(actor: string, action: string, target: string, details?: object): unknown;
}

/** Unix milliseconds; injectable so that tests run the engine on a virtual clock. */
export interface Clock {
  now(): number;
}

/** The event bus the engine listens to and emits `rollout.changed` on. */
export type EventsPort = ServerEvents;

export type { Logger };
