/**
 * Breaks a device's real TCP link, as a network outage or a crash does: the socket is destroyed
 * without a DISCONNECT, so the broker publishes the device's last will.
 *
 * `MqttTransport` keeps its mqtt.js client private and offers only a clean `close()` (which
 * sends DISCONNECT and suppresses the will); the simulator reaches the client through
 * TypeScript's element-access escape hatch until the transport exposes a public way to drop
 * the link.
 */
import type { MqttTransport } from '@fetchback/device-agent';
import type { MqttClient } from 'mqtt';

function clientOf(transport: MqttTransport): MqttClient | undefined {
  return transport['client'] as MqttClient | undefined;
}

/** Drops the link; mqtt.js reconnects after its reconnect period (a network outage). */
export function breakLink(transport: MqttTransport): void {
  clientOf(transport)?.stream?.destroy();
}

/** Drops the link for good: no DISCONNECT, no reconnect (a crash or power cut). */
export function killLink(transport: MqttTransport): void {
  clientOf(transport)?.end(true);
}
