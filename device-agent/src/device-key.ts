/**
 * The device's own ed25519 key, with which it signs every ACK_REQ (`docs/protocol.md` §8.5).
 * Made on the first start and kept in the state store (written atomically, mode 0600 for the
 * file store), so that the key survives reboots and the server, which pins the key of the
 * first signed ACK, keeps recognising the device.
 */
import { type KeyPair, generateKeyPair, publicKeyOf } from '@fetchback/shared';
import type { Logger } from 'pino';

import type { StateStore } from './storage/state-store.js';

/** Name of the key's entry in the state store (`<dataDir>/state/device-key.bin`). */
export const DEVICE_KEY_ENTRY = 'device-key';

const SEED_BYTES = 32;

/** The stored key, or a new one stored before it is returned. */
export async function loadOrCreateDeviceKey(store: StateStore, log?: Logger): Promise<KeyPair> {
  const seed = await store.readBytes(DEVICE_KEY_ENTRY);
  if (seed?.length === SEED_BYTES) return { secretKey: seed, publicKey: publicKeyOf(seed) };
  if (seed) {
    // A torn or foreign entry: a new key makes the server refuse this device's ACKs until an
    // operator clears its pinned key (`fetchback device reset-key`), which is the safe side.
    log?.error({ bytes: seed.length }, 'device key unreadable; a new key is made');
  }
  const key = generateKeyPair();
  await store.writeBytes(DEVICE_KEY_ENTRY, key.secretKey);
  log?.info({}, 'device key created');
  return key;
}
