/**
 * A fleet of virtual devices in one process: builds each device's storage and fault plan,
 * starts them with a bounded number connecting at once (a thousand simultaneous CONNECTs is a
 * storm no real fleet produces), waits for the run to end, and stops them.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import {
  DirSlots,
  FileStateStore,
  MemoryStateStore,
  type SlotStorage,
} from '@fetchback/device-agent';

import { type FaultRates } from '../faults/profiles.js';
import { planFaults } from '../faults/plan.js';
import { deviceSeed, seededRandom } from '../faults/random.js';
import { ContentPool, SharedSlots } from '../device/shared-slots.js';
import {
  type DeviceEnvironment,
  type DeviceIdentity,
  type DeviceStorage,
  VirtualDevice,
} from '../device/virtual-device.js';
import { FleetTracker } from './tracker.js';

/** `memory`: state and slots in memory (slot contents shared fleet-wide); `dir`: files. */
export type StorageKind = 'memory' | 'dir';

export interface FleetOptions {
  readonly identities: readonly DeviceIdentity[];
  readonly env: DeviceEnvironment;
  readonly rates: FaultRates;
  readonly storage: StorageKind;
  /** Where `dir` storage lives (a directory per device). */
  readonly storageDir?: string;
  /** Devices connecting at once during start-up. */
  readonly startConcurrency: number;
}

/** Chunk size of the factory image seeded into slot `a`. */
const FACTORY_PIECE_BYTES = 4096;

/** Factory images by version: every device of a fleet starts from the same bytes. */
const factoryImages = new Map<string, Uint8Array>();

/**
 * The firmware a device runs before its first update: deterministic, 16 KiB. Built once per
 * version and shared (read only), not once per device.
 */
export function factoryImage(version: string): Uint8Array {
  const known = factoryImages.get(version);
  if (known) return known;
  const image = new Uint8Array(16 * 1024);
  const seed = createHash('sha256').update(`fetchback-sim factory ${version}`).digest();
  for (let i = 0; i < image.length; i++) image[i] = (seed[i % seed.length] as number) ^ (i & 0xff);
  factoryImages.set(version, image);
  return image;
}

export class Fleet {
  readonly devices: VirtualDevice[] = [];
  readonly tracker = new FleetTracker();
  readonly pool = new ContentPool();
  private readonly options: FleetOptions;

  constructor(options: FleetOptions) {
    this.options = options;
  }

  /** Creates the devices, seeds their factory image and starts them. */
  async start(onStarted?: (started: number) => void): Promise<void> {
    const { identities, startConcurrency } = this.options;
    let next = 0;
    let started = 0;
    const worker = async () => {
      while (next < identities.length) {
        const identity = identities[next++] as DeviceIdentity;
        const device = await this.createDevice(identity);
        this.devices.push(device);
        this.tracker.watch(device);
        await device.start();
        onStarted?.(++started);
      }
    };
    const workers = Math.max(1, Math.min(startConcurrency, identities.length));
    await Promise.all(Array.from({ length: workers }, worker));
  }

  /** Stops every device cleanly. */
  async stop(): Promise<void> {
    await Promise.all(this.devices.map((d) => d.stop()));
  }

  private async createDevice(identity: DeviceIdentity): Promise<VirtualDevice> {
    const { env, rates } = this.options;
    const plan = planFaults(rates, seededRandom(deviceSeed(env.seed, identity.id)));
    const storage = await this.createStorage(identity.id);
    return new VirtualDevice(identity, plan, storage, env);
  }

  private async createStorage(deviceId: string): Promise<DeviceStorage> {
    const factory = factoryImage(this.options.env.firmwareVersion);
    if (this.options.storage === 'memory') {
      const slots = new SharedSlots(this.pool);
      await slots.seed('a', factory, FACTORY_PIECE_BYTES);
      return { stateStore: new MemoryStateStore(), slots };
    }
    const dir = join(this.options.storageDir ?? '.', deviceId);
    await mkdir(dir, { recursive: true });
    const slots = new DirSlots(join(dir, 'slots'));
    if ((await slots.size('a')) === undefined) await seedSlot(slots, factory);
    return { stateStore: new FileStateStore(join(dir, 'state')), slots };
  }
}

async function seedSlot(slots: SlotStorage, image: Uint8Array): Promise<void> {
  await slots.create('a', image.length);
  await slots.write('a', 0, image);
  await slots.sync('a');
  await slots.setActive('a');
}
