/**
 * Issuing assignments: the only way a release reaches a device (the rollout engine uses only
 * `AssignmentService.assign`). An assignment is signed with the server's online assignment
 * key, stored with the next per-device sequence number, and published as the device's retained
 * manifest (`docs/protocol.md` §4.1).
 */
import {
  type AssignmentBody,
  LIMITS,
  type SignedRelease,
  type Topics,
  asMap,
  decodeCbor,
  encodeManifest,
  fbError,
  fromHex,
  parseReleaseBody,
  signAssignment,
} from '@fetchback/shared';
import type { Logger } from 'pino';

import type { MessageBus } from '../broker/message-bus.js';
import type { ServerEvents } from '../events.js';
import type { AssignmentRecord, AssignmentStore } from './assignment-store.js';
import type { DevicePort, DeviceRecord, ReleasePort, ReleaseRecord, ServerKeys } from './ports.js';

export interface AssignOptions {
  readonly rolloutId?: string;
  /** Lifetime of the assignment, in seconds; the delivery default when absent. */
  readonly ttlS?: number;
  /** Deadline for the final ACK, in seconds from issue; none when absent. */
  readonly ackDeadlineS?: number;
}

export interface AssignmentDeps {
  readonly store: AssignmentStore;
  readonly bus: MessageBus;
  readonly topics: Topics;
  readonly devices: DevicePort;
  readonly releases: ReleasePort;
  readonly keys: ServerKeys;
  readonly events: ServerEvents;
  readonly log: Logger;
  readonly clock: { now(): number };
  readonly defaultTtlS: number;
}

export class AssignmentService {
  private readonly deps: AssignmentDeps;

  constructor(deps: AssignmentDeps) {
    this.deps = deps;
  }

  /**
   * Assigns a release to a device and publishes its manifest. The manifest is published
   * asynchronously; it is stored first, and republished at every start.
   *
   * @throws FetchbackError `FB_ERR_DEVICE_UNKNOWN`, `FB_ERR_DEVICE_DECOMMISSIONED`,
   *   `FB_ERR_RELEASE_UNKNOWN`, `FB_ERR_WRONG_HW_CLASS`, `FB_ERR_ARGUMENT`.
   */
  assign(deviceId: string, releaseId: string, opts: AssignOptions = {}): { seq: number } {
    const device = this.activeDevice(deviceId);
    const release = this.releaseFor(device, releaseId);
    const statement = decodeStatement(release);

    const record = this.issue(device, release, statement, opts);
    this.publishManifest(record);
    this.deps.events.emit('device.assigned', {
      deviceId,
      seq: record.seq,
      releaseId,
      rolloutId: record.rolloutId,
      at: record.issuedAt,
    });
    this.deps.log.info(
      { deviceId, seq: record.seq, releaseId, rolloutId: record.rolloutId },
      'assignment issued',
    );
    return { seq: record.seq };
  }

  /** The device's newest assignment. */
  latest(deviceId: string): AssignmentRecord | undefined {
    return this.deps.store.latest(deviceId);
  }

  /** The device's assignments, newest first. */
  history(deviceId: string, limit = 50): AssignmentRecord[] {
    return this.deps.store.history(deviceId, limit);
  }

  /**
   * Publishes every active device's newest manifest again (retained). The embedded broker keeps
   * retained messages in memory only, so a restarted server must restore them.
   */
  async republishAll(): Promise<number> {
    const records = this.deps.store
      .latestPerDevice()
      .filter((r) => this.deps.devices.get(r.deviceId)?.status === 'active');
    await Promise.all(records.map((r) => this.publish(r)));
    return records.length;
  }

  /** Clears a device's retained manifest (an empty retained message deletes it). */
  async clearManifest(deviceId: string): Promise<void> {
    const topic = this.deps.topics.in(deviceId, 'manifest');
    await this.deps.bus.publish(topic, new Uint8Array(0), { qos: 1, retain: true });
  }

  private activeDevice(deviceId: string): DeviceRecord {
    const device = this.deps.devices.get(deviceId);
    if (!device) throw fbError('FB_ERR_DEVICE_UNKNOWN', deviceId);
    if (device.status !== 'active') throw fbError('FB_ERR_DEVICE_DECOMMISSIONED', deviceId);
    return device;
  }

  private releaseFor(device: DeviceRecord, releaseId: string): ReleaseRecord {
    const release = this.deps.releases.get(releaseId);
    if (!release) throw fbError('FB_ERR_RELEASE_UNKNOWN', releaseId);
    if (release.hwClass !== device.hwClass) {
      throw fbError(
        'FB_ERR_WRONG_HW_CLASS',
        `release ${releaseId} is for ${release.hwClass}, device ${device.id} is ${device.hwClass}`,
      );
    }
    return release;
  }

  /** Takes the sequence number, signs and stores, in one transaction. */
  private issue(
    device: DeviceRecord,
    release: ReleaseRecord,
    statement: SignedRelease,
    opts: AssignOptions,
  ): AssignmentRecord {
    const ttlS = positiveSeconds(opts.ttlS ?? this.deps.defaultTtlS, 'ttlS');
    const nowMs = this.deps.clock.now();
    const iat = Math.floor(nowMs / 1000);
    const ackby =
      opts.ackDeadlineS === undefined
        ? undefined
        : iat + positiveSeconds(opts.ackDeadlineS, 'ackDeadlineS');
    const { store, keys } = this.deps;

    return store.transaction(() => {
      const body: AssignmentBody = {
        dev: device.id,
        seq: store.nextSequence(device.id),
        rel: fromHex(release.statementDigest),
        ro: opts.rolloutId ?? '',
        iat,
        exp: iat + ttlS,
        ...(ackby === undefined ? {} : { ackby }),
      };
      const manifest = encodeManifest({
        asg: signAssignment(body, keys.assignmentKey),
        rel: statement,
        certs: keys.certificates,
      });
      const record: AssignmentRecord = {
        deviceId: device.id,
        seq: body.seq,
        releaseId: release.id,
        rolloutId: opts.rolloutId ?? null,
        statementDigest: release.statementDigest,
        manifest,
        issuedAt: nowMs,
        expiresAt: body.exp * 1000,
        ackDeadline: ackby === undefined ? null : ackby * 1000,
      };
      store.insert(record);
      return record;
    });
  }

  /**
   * Publishes a manifest once the transaction that stored it has committed. `assign` may run
   * inside a caller's transaction (the rollout engine's); a manifest sent before that commit
   * could reach the device although a crash then rolls its sequence number back, and the
   * re-issued assignment would reuse the number and be refused as a replay. better-sqlite3
   * transactions are synchronous, so on the next turn of the event loop the outcome is known: a
   * stored record is published, a rolled-back one is not. A crash in between loses nothing,
   * because every start republishes the stored manifests.
   */
  private publishManifest(record: AssignmentRecord): void {
    setImmediate(() => {
      let stored: AssignmentRecord | undefined;
      try {
        stored = this.deps.store.bySeq(record.deviceId, record.seq);
      } catch (err) {
        // The server closed its database in the meantime; the next start republishes it.
        this.deps.log.warn(
          { deviceId: record.deviceId, seq: record.seq, err: (err as Error).message },
          'manifest not published: the store is closed',
        );
        return;
      }
      if (!stored || stored.issuedAt !== record.issuedAt) {
        this.deps.log.warn(
          { deviceId: record.deviceId, seq: record.seq },
          'assignment rolled back before its manifest was published; not sent',
        );
        return;
      }
      this.publish(record).catch((err: Error) =>
        this.deps.log.error(
          { deviceId: record.deviceId, seq: record.seq, err: err.message },
          'manifest publish failed; it is republished at the next start',
        ),
      );
    });
  }

  private publish(record: AssignmentRecord): Promise<void> {
    const topic = this.deps.topics.in(record.deviceId, 'manifest');
    return this.deps.bus.publish(topic, record.manifest, { qos: 1, retain: true });
  }
}

/** The stored release statement, checked as a device would decode it. */
function decodeStatement(release: ReleaseRecord): SignedRelease {
  const limits = { maxBytes: LIMITS.maxManifestBytes, maxDepth: 8, maxItems: 4096 };
  const map = asMap(decodeCbor(release.statement, limits), 'statement');
  parseReleaseBody(map.body);
  if (!Array.isArray(map.sigs) || map.sigs.length === 0) {
    throw fbError('FB_ERR_INTERNAL', `release ${release.id} has an unsigned statement`);
  }
  return map as unknown as SignedRelease;
}

function positiveSeconds(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw fbError(
      'FB_ERR_ARGUMENT',
      `"${name}" expected a positive integer of seconds, got ${value}`,
    );
  }
  return value;
}
