/**
 * Installers make the downloaded slot the one that boots next, mark it good after a healthy
 * trial, or switch back. The default `AbDirInstaller` moves the slot pointer; the
 * `CommandInstaller` hands each step to a shell command (RAUC, SWUpdate, a vendor tool); the
 * simulator supplies its own.
 */
import type { SlotId, SlotStorage } from '../storage/slot-storage.js';

export interface InstallContext {
  /** The slot holding the verified new image. */
  readonly targetSlot: SlotId;
  /** The slot that ran before the update. */
  readonly previousSlot: SlotId;
  readonly version: string;
  readonly previousVersion: string;
  /** A path to the new image, when the slot storage has one. */
  readonly imagePath: string | undefined;
}

export interface Installer {
  /** Makes the target slot boot next. Idempotent: it may run again after a crash. */
  install(context: InstallContext): Promise<void>;
  /** Confirms the target slot after a healthy trial. Idempotent. */
  markGood(context: InstallContext): Promise<void>;
  /** Makes the previous slot boot (and run) again. Idempotent. */
  rollback(context: InstallContext): Promise<void>;
}

/** The environment every hook command receives. */
export function hookEnvironment(context: InstallContext): Record<string, string> {
  return {
    FETCHBACK_SLOT: context.targetSlot,
    FETCHBACK_PREVIOUS_SLOT: context.previousSlot,
    FETCHBACK_VERSION: context.version,
    FETCHBACK_PREVIOUS_VERSION: context.previousVersion,
    FETCHBACK_IMAGE: context.imagePath ?? '',
  };
}

/** A/B slots with an atomically switched pointer (`DirSlots`' `current` symlink). */
export class AbDirInstaller implements Installer {
  private readonly slots: SlotStorage;

  constructor(slots: SlotStorage) {
    this.slots = slots;
  }

  install(context: InstallContext): Promise<void> {
    return this.slots.setActive(context.targetSlot);
  }

  // The pointer already names the new slot; a trial that ends without a rollback keeps it.
  async markGood(_context: InstallContext): Promise<void> {}

  rollback(context: InstallContext): Promise<void> {
    return this.slots.setActive(context.previousSlot);
  }
}
