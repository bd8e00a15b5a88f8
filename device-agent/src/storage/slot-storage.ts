/**
 * A/B slot storage: two image slots and a pointer to the active one. The agent downloads into
 * the inactive slot, chunk by chunk at each chunk's offset; the installer moves the pointer.
 */

export type SlotId = 'a' | 'b';

export const SLOT_IDS: readonly SlotId[] = ['a', 'b'];

/** The other slot. */
export function otherSlot(slot: SlotId): SlotId {
  return slot === 'a' ? 'b' : 'a';
}

export interface SlotStorage {
  /** The slot the pointer names (`a` when none was ever set). */
  active(): Promise<SlotId>;
  /** Moves the pointer atomically and durably. */
  setActive(slot: SlotId): Promise<void>;
  /** Creates or truncates `slot` to `sizeBytes` (an empty image of that length). */
  create(slot: SlotId, sizeBytes: number): Promise<void>;
  /** Byte length of `slot`, or `undefined` when it does not exist. */
  size(slot: SlotId): Promise<number | undefined>;
  /** Writes `data` at `offsetBytes`. */
  write(slot: SlotId, offsetBytes: number, data: Uint8Array): Promise<void>;
  /**
   * Reads up to `length` bytes at `offsetBytes`; into `into` when given (at least `length`
   * bytes long), so that a caller reading a whole image can reuse one buffer.
   */
  read(slot: SlotId, offsetBytes: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Makes every completed write to `slot` durable. */
  sync(slot: SlotId): Promise<void>;
  /** A path a command (installer, health check) can read the slot's image at, if any. */
  pathOf(slot: SlotId): string | undefined;
  /** Releases open handles. */
  close(): Promise<void>;
}
