/**
 * Manifest intake: decode, recognise a redelivered manifest, verify, and turn the result into
 * the `accepted`, `refused` or `unreadable` outcome. Trust comes first: nothing is downloaded
 * before `ManifestVerifier.verify` has passed (`docs/protocol.md` §6.3).
 */
import {
  DEFAULT_CBOR_LIMITS,
  type FetchbackError,
  LIMITS,
  type ManifestMessage,
  type ManifestVerifier,
  decodeCbor,
  decodeManifest,
  isFetchbackError,
  toHex,
} from '@fetchback/shared';

import type { SlotId } from '../storage/slot-storage.js';
import { otherSlot } from '../storage/slot-storage.js';
import type { AgentState, Job } from './agent-state.js';
import type { Outcome } from './machine.js';
import type { ReportSubject } from './reporter.js';

export interface ReadManifest {
  /** The decoded manifest, when its structure is valid. */
  readonly manifest?: ManifestMessage;
  /** seq and rel, read from the unverified body when at all possible. */
  readonly subject?: ReportSubject;
  readonly error?: FetchbackError;
}

/** Decodes a manifest without trusting it. */
export function readManifest(bytes: Uint8Array): ReadManifest {
  try {
    const manifest = decodeManifest(bytes);
    const { seq, rel } = manifest.asg.body;
    return { manifest, subject: { seq, rel: toHex(rel) } };
  } catch (err) {
    if (!isFetchbackError(err)) throw err;
    const subject = peekSubject(bytes);
    return { error: err, ...(subject ? { subject } : {}) };
  }
}

/** True when this is the manifest already accepted (a retained redelivery on reconnect). */
export function isAlreadyAccepted(read: ReadManifest, state: AgentState): boolean {
  const subject = read.subject;
  if (!subject || !read.manifest) return false;
  const job = state.job;
  const sameAsJob = job !== undefined && job.seq === subject.seq && job.rel === subject.rel;
  const sameAsTrust =
    state.trust.lastSequence === subject.seq && state.trust.lastRel === subject.rel;
  return sameAsJob || sameAsTrust;
}

export interface IntakeContext {
  readonly verifier: ManifestVerifier;
  readonly state: AgentState;
  readonly activeSlot: SlotId;
}

/** Verifies a read manifest against the persisted anti-rollback state. */
export function checkManifest(read: ReadManifest, context: IntakeContext): Outcome {
  if (!read.manifest) return refusal(read.error, read.subject);
  const { state } = context;
  let verified;
  try {
    verified = context.verifier.verify(read.manifest, state.trust);
  } catch (err) {
    if (!isFetchbackError(err)) throw err;
    return refusal(err, read.subject);
  }

  const { assignment, release } = verified;
  const rel = toHex(verified.releaseDigest);
  const job: Job = {
    seq: assignment.seq,
    rel,
    rollout: assignment.ro,
    release: {
      name: release.name,
      version: release.ver,
      securityVersion: release.secv,
      sizeBytes: release.size,
      chunkBytes: release.cbytes,
      digest: toHex(release.digest),
      chunkTableDigest: toHex(release.ctab),
    },
    ...(assignment.ackby !== undefined ? { ackByMs: assignment.ackby * 1000 } : {}),
    targetSlot: otherSlot(context.activeSlot),
    previousSlot: context.activeSlot,
    previousVersion: state.firmwareVersion,
    bootCount: 0,
    repairs: 0,
  };
  // Persisted with the transition, before any byte is fetched: a replay of this sequence number
  // is refused from now on, even after a crash.
  const trust = { ...state.trust, lastSequence: assignment.seq, lastRel: rel };
  return { event: 'accepted', job, trust };
}

function refusal(error: FetchbackError | undefined, subject: ReportSubject | undefined): Outcome {
  const code = error?.code ?? 'FB_ERR_MSG_FIELD_MISSING';
  const detail = error?.message;
  if (!subject) return { event: 'unreadable', code, ...(detail ? { detail } : {}) };
  return { event: 'refused', code, subject, ...(detail ? { detail } : {}) };
}

/** Reads `asg.body.seq` and `asg.body.rel` from bytes that failed full decoding, if it can. */
function peekSubject(bytes: Uint8Array): ReportSubject | undefined {
  try {
    const limits = { ...DEFAULT_CBOR_LIMITS, maxBytes: LIMITS.maxManifestBytes };
    const map = decodeCbor(bytes, limits) as { asg?: { body?: { seq?: unknown; rel?: unknown } } };
    const seq = map?.asg?.body?.seq;
    const rel = map?.asg?.body?.rel;
    const seqOk = typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 1;
    if (seqOk && rel instanceof Uint8Array && rel.length === 32) return { seq, rel: toHex(rel) };
  } catch {
    // Not even CBOR: nothing to report but the code.
  }
  return undefined;
}
