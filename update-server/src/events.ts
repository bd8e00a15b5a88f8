/**
 * The server's internal event bus. Delivery emits what devices report; the rollout engine, the
 * metrics and the server-sent-events stream listen. Events are facts that were already stored.
 */
import { EventEmitter } from 'node:events';

import type { AckStep } from '@fetchback/shared';

export interface ServerEventMap {
  /** A device was registered (API or CLI). */
  'device.registered': [{ deviceId: string; hardwareClass: string; tags: Record<string, string> }];
  /** A device was decommissioned. */
  'device.decommissioned': [{ deviceId: string }];
  /** An assignment was issued and its manifest published. */
  'device.assigned': [
    { deviceId: string; seq: number; releaseId: string; rolloutId: string | null; at: number },
  ];
  /** A new (not duplicate) ACK_REQ was recorded. */
  'device.ack': [
    {
      deviceId: string;
      seq: number;
      step: AckStep;
      code: string;
      releaseId: string | null;
      rolloutId: string | null;
      at: number;
    },
  ];
  /** A new status report was recorded. */
  'device.status': [{ deviceId: string; state: string; code: string | null; at: number }];
  /** A device went online or offline. */
  'device.presence': [{ deviceId: string; online: boolean; at: number }];
  /** A rollout changed state or counts (emitted by the rollout engine). */
  'rollout.changed': [{ rolloutId: string; state: string; at: number }];
}

/** A typed event emitter over `ServerEventMap`. */
export class ServerEvents extends EventEmitter<ServerEventMap> {
  constructor() {
    super();
    // Listeners: metrics, rollout engine, and one per open server-sent-events stream.
    this.setMaxListeners(0);
  }
}
