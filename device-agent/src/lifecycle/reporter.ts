/**
 * Builds the ACK_REQ and STATUS messages of the lifecycle and hands them to the outbox.
 *
 * ACK request ids are deterministic (`ack:<seq>:<rel prefix>:<step>`): a step repeated after a
 * crash sends the same rid, which the outbox and the server each record once. STATUS ids are
 * unique per run. With a device key, every ACK_REQ is signed before it enters the outbox, so a
 * retry sends the same signed bytes (`docs/protocol.md` §8.5).
 */
import {
  type AckRequest,
  type AckStep,
  type KeyPair,
  type StatusReport,
  encodeAckRequest,
  encodeStatus,
  fromHex,
  signAckRequest,
} from '@fetchback/shared';

import type { Clock } from '../clock.js';
import type { Outbox } from '../outbox/outbox.js';

/** The assignment a report is about. */
export interface ReportSubject {
  readonly seq: number;
  /** Release digest, hex. */
  readonly rel: string;
}

export interface ReportFields {
  readonly code?: string;
  readonly detail?: string;
  readonly have?: number;
  readonly total?: number;
}

const MAX_DETAIL = 256;

export class Reporter {
  private readonly outbox: Outbox;
  private readonly clock: Clock;
  private readonly runId: string;
  private readonly onReport: (kind: 'ack' | 'status', message: AckRequest | StatusReport) => void;
  private statusCount = 0;
  private deviceKey: KeyPair | undefined;

  constructor(
    outbox: Outbox,
    clock: Clock,
    runId: string,
    onReport: (kind: 'ack' | 'status', message: AckRequest | StatusReport) => void = () => {},
  ) {
    this.outbox = outbox;
    this.clock = clock;
    this.runId = runId;
    this.onReport = onReport;
  }

  /** Signs every later ACK_REQ with `key`. */
  signWith(key: KeyPair): void {
    this.deviceKey = key;
  }

  static ackRid(subject: ReportSubject, step: AckStep): string {
    return `ack:${subject.seq}:${subject.rel.slice(0, 16)}:${step}`;
  }

  async ack(
    step: AckStep,
    subject: ReportSubject,
    version: string,
    fields: ReportFields,
  ): Promise<AckRequest> {
    const unsigned: AckRequest = {
      rid: Reporter.ackRid(subject, step),
      seq: subject.seq,
      rel: fromHex(subject.rel),
      step,
      code: fields.code ?? 'OK',
      at: this.clock.now(),
      ver: version,
      ...(fields.detail ? { detail: fields.detail.slice(0, MAX_DETAIL) } : {}),
    };
    const message = this.deviceKey ? signAckRequest(unsigned, this.deviceKey) : unsigned;
    await this.outbox.add({ kind: 'ack', rid: message.rid, payload: encodeAckRequest(message) });
    this.onReport('ack', message);
    return message;
  }

  async status(
    state: string,
    subject: ReportSubject | undefined,
    version: string,
    fields: ReportFields,
  ): Promise<StatusReport> {
    const message: StatusReport = {
      rid: `st:${this.runId}:${++this.statusCount}`,
      state,
      at: this.clock.now(),
      ver: version,
      ...(subject ? { seq: subject.seq, rel: fromHex(subject.rel) } : {}),
      ...(fields.have !== undefined ? { have: fields.have } : {}),
      ...(fields.total !== undefined ? { total: fields.total } : {}),
      ...(fields.code ? { code: fields.code } : {}),
      ...(fields.detail ? { detail: fields.detail.slice(0, MAX_DETAIL) } : {}),
    };
    await this.outbox.add({ kind: 'status', rid: message.rid, payload: encodeStatus(message) });
    this.onReport('status', message);
    return message;
  }
}
