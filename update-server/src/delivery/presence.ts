/**
 * Presence: the device publishes `{online: true}` retained on `out/presence` when it connects,
 * and sets `{online: false}` there as its last will. A message older (by the device's `at`)
 * than the one stored is ignored, so the will of a replaced connection, published after the
 * new connection's online message, does not mark a connected device offline.
 */
import { type PresenceMessage, type Topics, decodePresence } from '@fetchback/shared';
import type { Logger } from 'pino';

import type { MessageBus } from '../broker/message-bus.js';
import type { Rejections } from '../broker/rejections.js';
import type { ServerEvents } from '../events.js';
import type { BackStore } from './back-store.js';
import { deviceMessageHandler } from './inbound.js';
import type { DevicePort, DeviceRecord } from './ports.js';

export interface PresenceDeps {
  readonly bus: MessageBus;
  readonly topics: Topics;
  readonly devices: DevicePort;
  readonly back: BackStore;
  readonly events: ServerEvents;
  readonly rejections: Rejections;
  readonly log: Logger;
  readonly clock: { now(): number };
}

export class PresenceService {
  private readonly deps: PresenceDeps;

  constructor(deps: PresenceDeps) {
    this.deps = deps;
  }

  async start(): Promise<void> {
    const handler = deviceMessageHandler(this.deps, 'presence', decodePresence, (d, m) =>
      this.onPresence(d, m),
    );
    await this.deps.bus.subscribe(this.deps.topics.allOut('presence'), handler);
  }

  onPresence(device: DeviceRecord, message: PresenceMessage): void {
    const stored = this.deps.back.presence(device.id);
    if (stored && message.at < stored.at) {
      this.deps.log.debug({ deviceId: device.id, at: message.at }, 'stale presence ignored');
      return;
    }
    const receivedAt = this.deps.clock.now();
    this.deps.back.upsertPresence({
      deviceId: device.id,
      online: message.online,
      at: message.at,
      receivedAt,
      version: message.ver ?? null,
      agent: message.agent ?? null,
    });
    this.deps.devices.touch(device.id, {
      online: message.online,
      lastSeen: receivedAt,
      ...(message.ver !== undefined ? { currentVersion: message.ver } : {}),
    });
    this.deps.events.emit('device.presence', {
      deviceId: device.id,
      online: message.online,
      at: receivedAt,
    });
  }

  /**
   * After a restart of the embedded broker no device is connected, and wills of the old
   * process were never published: mark every device offline until it says otherwise.
   */
  markAllOffline(): void {
    for (const deviceId of this.deps.back.markAllOffline()) {
      this.deps.devices.touch(deviceId, { online: false });
    }
  }
}
