/**
 * The document the agent keeps on disk (`state.json`): lifecycle state, anti-rollback state,
 * the running firmware version and the update in progress. It is replaced atomically on every
 * durable transition, so trust, version and job always agree with each other.
 */
import type { SlotId } from '../storage/slot-storage.js';
import type { LifecycleState } from './transitions.js';

/** What the agent needs of a verified release statement, in JSON-friendly form. */
export interface ReleaseInfo {
  readonly name: string;
  readonly version: string;
  readonly securityVersion: number;
  readonly sizeBytes: number;
  readonly chunkBytes: number;
  /** SHA-256 of the image, hex. */
  readonly digest: string;
  /** SHA-256 of the chunk table, hex. */
  readonly chunkTableDigest: string;
}

/** The update in progress (or the last one, in a resting state). */
export interface Job {
  readonly seq: number;
  /** Digest of the release statement body, hex. */
  readonly rel: string;
  readonly rollout: string;
  readonly release: ReleaseInfo;
  /** Acknowledgement deadline, Unix milliseconds. */
  readonly ackByMs?: number;
  readonly targetSlot: SlotId;
  readonly previousSlot: SlotId;
  readonly previousVersion: string;
  /** Starts counted in trial; over the limit means a boot loop. */
  readonly bootCount: number;
  /** Times verification sent the download back for chunks that no longer matched. */
  readonly repairs: number;
  /** Result code and detail of the last transition, `OK` on success. */
  readonly code?: string;
  readonly detail?: string;
  /** True once the resting state's action (mark good, roll back) has completed. */
  readonly settled?: boolean;
}

export interface TrustRecord {
  readonly lastSequence: number;
  readonly securityVersion: number;
  /** Release digest (hex) of the manifest accepted with `lastSequence`. */
  readonly lastRel?: string;
}

export interface AgentState {
  readonly format: 1;
  readonly state: LifecycleState;
  readonly firmwareVersion: string;
  readonly trust: TrustRecord;
  readonly job?: Job;
}

export const STATE_DOCUMENT = 'state';

export function initialState(firmwareVersion: string): AgentState {
  return {
    format: 1,
    state: 'idle',
    firmwareVersion,
    trust: { lastSequence: 0, securityVersion: 0 },
  };
}
