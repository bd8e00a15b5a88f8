/**
 * The back phase (`docs/protocol.md` §8): ACK_REQ on `out/ack` and STATUS on `out/status`, each
 * answered with ACK_RESP on the device's `in/ack` (QoS 1).
 *
 * Both are idempotent on (device, request id): the first message is recorded and answered; a
 * retry is not recorded again and gets the first answer with `dup: true`, byte for byte the same
 * on every retry. An ACK naming an assignment (sequence number and release) that was never
 * issued to the device is answered `ok: false, FB_ERR_ACK_UNKNOWN_ASSIGNMENT` and not recorded.
 *
 * Device keys (`docs/protocol.md` §8.5): the first ACK signed by a valid `dk`/`sig` pair pins
 * that key for the device (trust on first use, under the device's broker credentials). From
 * then on every ACK must be signed by that key; an unsigned one, one by another key or one whose
 * signature fails is answered `ok: false, FB_ERR_ACK_SIGNATURE` and not recorded. A device that
 * never signed stays accepted unsigned (an agent of another make), unless the server requires
 * signatures (`requireSignedAcks`). A signed ACK is kept with its signature and its bytes, so
 * the server holds proof of what the device said it installed.
 */
import {
  type AckRequest,
  type AckResponse,
  type AckStep,
  type StatusReport,
  type Topics,
  decodeAckRequest,
  decodeAckResponse,
  decodeStatus,
  encodeAckRequest,
  encodeAckResponse,
  fromHex,
  bytesEqual,
  verifyAckRequest,
} from '@fetchback/shared';
import type { Logger } from 'pino';

import type { MessageBus } from '../broker/message-bus.js';
import type { Rejections } from '../broker/rejections.js';
import type { ServerEvents } from '../events.js';
import type { AssignmentStore } from './assignment-store.js';
import type { BackStore } from './back-store.js';
import { deviceMessageHandler } from './inbound.js';
import type { DeliveryMetrics } from './metrics.js';
import type { DevicePort, DeviceRecord } from './ports.js';

export interface AckDeps {
  readonly bus: MessageBus;
  readonly topics: Topics;
  readonly devices: DevicePort;
  readonly assignments: AssignmentStore;
  readonly back: BackStore;
  readonly events: ServerEvents;
  readonly rejections: Rejections;
  readonly metrics: DeliveryMetrics;
  readonly log: Logger;
  readonly clock: { now(): number };
  /** Refuse unsigned ACKs even from devices that never signed one. */
  readonly requireSignedAcks?: boolean;
}

/** The lifecycle state a device is in after acknowledging a step. */
const STATE_AFTER: Record<AckStep, string> = {
  downloaded: 'downloaded',
  installed: 'installed',
  committed: 'committed',
  rolled_back: 'rolled_back',
  rejected: 'rejected',
  failed: 'failed',
};

/** The outcome of one message: the answer to send, and the record if it is new. */
type Outcome<T> = { response: Uint8Array; fresh: T | undefined };

export class AckService {
  private readonly deps: AckDeps;

  constructor(deps: AckDeps) {
    this.deps = deps;
  }

  async start(): Promise<void> {
    const { bus, topics } = this.deps;
    await bus.subscribe(
      topics.allOut('ack'),
      deviceMessageHandler(this.deps, 'ack', decodeAckRequest, (d, m) => this.onAck(d, m)),
    );
    await bus.subscribe(
      topics.allOut('status'),
      deviceMessageHandler(this.deps, 'status', decodeStatus, (d, m) => this.onStatus(d, m)),
    );
  }

  /** Records an ACK_REQ once, answers it, and reports it if it is new. */
  async onAck(device: DeviceRecord, req: AckRequest): Promise<void> {
    const receivedAt = this.deps.clock.now();
    const outcome = this.recordAck(device.id, req, receivedAt);

    this.deps.devices.touch(device.id, {
      ...(outcome.fresh ? { state: STATE_AFTER[req.step] } : {}),
      ...(outcome.fresh && req.ver !== undefined ? { currentVersion: req.ver } : {}),
      ...(outcome.fresh ? { stateAt: req.at } : {}),
      lastSeen: receivedAt,
    });
    if (outcome.fresh) {
      this.deps.metrics.acksRecorded.inc({ step: req.step });
      this.deps.events.emit('device.ack', {
        deviceId: device.id,
        seq: req.seq,
        step: req.step,
        code: req.code,
        releaseId: outcome.fresh.releaseId,
        rolloutId: outcome.fresh.rolloutId,
        at: receivedAt,
      });
      this.deps.log.info(
        { deviceId: device.id, seq: req.seq, step: req.step, code: req.code },
        'ack recorded',
      );
    }
    await this.answer(device.id, outcome.response);
  }

  /** Appends a STATUS report once, answers it, and reports it if it is new. */
  async onStatus(device: DeviceRecord, report: StatusReport): Promise<void> {
    const receivedAt = this.deps.clock.now();
    const outcome = this.recordStatus(device.id, report, receivedAt);

    this.deps.devices.touch(device.id, {
      ...(outcome.fresh ? { state: report.state } : {}),
      ...(outcome.fresh && report.ver !== undefined ? { currentVersion: report.ver } : {}),
      ...(outcome.fresh ? { stateAt: report.at } : {}),
      lastSeen: receivedAt,
    });
    if (outcome.fresh) {
      this.deps.events.emit('device.status', {
        deviceId: device.id,
        state: report.state,
        code: report.code ?? null,
        at: receivedAt,
      });
    }
    await this.answer(device.id, outcome.response);
  }

  private recordAck(
    deviceId: string,
    req: AckRequest,
    receivedAt: number,
  ): Outcome<{ releaseId: string; rolloutId: string | null }> {
    const { back, assignments } = this.deps;
    return back.transaction(() => {
      const first = back.ackResponse(deviceId, req.rid);
      if (first) return { response: asDuplicate(first), fresh: undefined };

      const assignment = assignments.bySeq(deviceId, req.seq);
      if (!assignment || !bytesEqual(fromHex(assignment.statementDigest), req.rel)) {
        this.deps.rejections.record(
          'FB_ERR_ACK_UNKNOWN_ASSIGNMENT',
          { deviceId, seq: req.seq, rid: req.rid },
          'ack for an assignment not issued',
        );
        const refusal = { rid: req.rid, ok: false, code: 'FB_ERR_ACK_UNKNOWN_ASSIGNMENT' };
        return { response: encodeAckResponse(refusal), fresh: undefined };
      }

      const signature = this.checkSignature(deviceId, req, receivedAt);
      if (signature === 'refused') {
        const refusal = { rid: req.rid, ok: false, code: 'FB_ERR_ACK_SIGNATURE' };
        return { response: encodeAckResponse(refusal), fresh: undefined };
      }

      const response = encodeAckResponse({ rid: req.rid, ok: true, code: 'OK' });
      back.insertAck({
        deviceId,
        requestId: req.rid,
        seq: req.seq,
        step: req.step,
        code: req.code,
        version: req.ver ?? null,
        detail: req.detail ?? null,
        at: req.at,
        receivedAt,
        response,
        signature: signature === 'unsigned' ? null : (req.sig as Uint8Array),
        // Deterministic CBOR: re-encoding the decoded message gives back the bytes signed.
        request: signature === 'unsigned' ? null : encodeAckRequest(req),
      });
      return {
        response,
        fresh: { releaseId: assignment.releaseId, rolloutId: assignment.rolloutId },
      };
    });
  }

  /**
   * Applies the device-key rule to one new ACK (inside the recording transaction): `signed` when
   * it verifies with the pinned key (pinning `dk` if none was), `unsigned` when an unsigned ACK
   * is still allowed, `refused` otherwise (logged and counted).
   */
  private checkSignature(
    deviceId: string,
    req: AckRequest,
    receivedAt: number,
  ): 'signed' | 'unsigned' | 'refused' {
    const { back } = this.deps;
    const pinned = back.deviceKey(deviceId);
    let reason: string;
    if (req.sig === undefined || req.dk === undefined) {
      if (!pinned && !this.deps.requireSignedAcks) return 'unsigned';
      reason = pinned ? 'unsigned ACK from a device with a pinned key' : 'unsigned ACK';
    } else if (pinned && !bytesEqual(pinned, req.dk)) {
      reason = 'ACK signed by another key than the pinned one';
    } else if (!verifyAckRequest(req, req.dk)) {
      reason = 'ACK signature does not verify';
    } else {
      if (!pinned) {
        back.pinDeviceKey(deviceId, req.dk, receivedAt);
        this.deps.log.info({ deviceId }, 'device key pinned');
      }
      return 'signed';
    }
    this.deps.rejections.record('FB_ERR_ACK_SIGNATURE', { deviceId, rid: req.rid }, reason);
    return 'refused';
  }

  private recordStatus(deviceId: string, report: StatusReport, receivedAt: number): Outcome<true> {
    const { back } = this.deps;
    return back.transaction(() => {
      const first = back.statusResponse(deviceId, report.rid);
      if (first) return { response: asDuplicate(first), fresh: undefined };

      const response = encodeAckResponse({ rid: report.rid, ok: true, code: 'OK' });
      back.appendStatus({
        deviceId,
        requestId: report.rid,
        state: report.state,
        code: report.code ?? null,
        version: report.ver ?? null,
        seq: report.seq ?? null,
        have: report.have ?? null,
        total: report.total ?? null,
        detail: report.detail ?? null,
        at: report.at,
        receivedAt,
        response,
      });
      return { response, fresh: true };
    });
  }

  private async answer(deviceId: string, response: Uint8Array): Promise<void> {
    // This runs in the message's own promise chain, never inside the broker's delivery, so
    // waiting for the QoS 1 publish holds back nothing else.
    await this.deps.bus.publish(this.deps.topics.in(deviceId, 'ack'), response, { qos: 1 });
  }
}

/** The first answer, marked as a repeat: the same bytes on every retry. */
function asDuplicate(first: Uint8Array): Uint8Array {
  const answer: AckResponse = { ...decodeAckResponse(first), dup: true };
  return encodeAckResponse(answer);
}
