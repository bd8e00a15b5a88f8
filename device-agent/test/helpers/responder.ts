/**
 * A small update server for tests, built from the shared codecs only: it signs manifests with
 * test keys, answers FETCH_REQ with chunks (with injectable faults) and answers every ACK_REQ
 * and STATUS with an ACK_RESP. It talks to any `Bus`: the in-memory broker or an in-process
 * aedes broker.
 */
import {
  type AckRequest,
  ChunkTableBuilder,
  type KeyPair,
  type PresenceMessage,
  type ReleaseBody,
  type StatusReport,
  Topics,
  chunkLength,
  decodeAckRequest,
  decodeFetchRequest,
  decodePresence,
  decodeStatus,
  encodeAckResponse,
  encodeFetchResponse,
  encodeManifest,
  generateKeyPair,
  issueCertificate,
  releaseDigest,
  requestedChunks,
  signAssignment,
  signRelease,
  toHex,
} from '@fetchback/shared';

export interface Bus {
  publish(topic: string, payload: Uint8Array, retain: boolean): void;
  subscribe(filter: string, handler: (topic: string, payload: Uint8Array) => void): void;
}

export interface TestRelease {
  readonly body: ReleaseBody;
  readonly image: Uint8Array;
  readonly table: Uint8Array;
}

export interface ManifestOptions {
  readonly seq: number;
  readonly deviceId?: string;
  readonly expSeconds?: number;
  readonly ackbySeconds?: number;
  readonly tamperAssignmentSignature?: boolean;
}

export interface Faults {
  /** Chunk index → how many more times to send it corrupted. */
  readonly corrupt: Map<number, number>;
  /** Drop every image chunk (a stalled server). */
  dropImage: boolean;
  /** Answer the next N image requests with FB_ERR_BUSY. */
  busy: number;
  /** Drop the next N ACK_RESPs. */
  dropAckResponses: number;
  /** Image chunks still to serve; past it every image chunk is dropped (a server gone quiet). */
  imageBudget: number;
}

export class Responder {
  readonly root: KeyPair = generateKeyPair();
  readonly releaseKey: KeyPair = generateKeyPair();
  readonly assignmentKey: KeyPair = generateKeyPair();
  readonly topics: Topics;
  readonly faults: Faults = {
    corrupt: new Map(),
    dropImage: false,
    busy: 0,
    dropAckResponses: 0,
    imageBudget: Infinity,
  };
  /** Image chunk indices requested, in order, per image digest (hex). */
  readonly requested = new Map<string, number[]>();
  readonly acks: AckRequest[] = [];
  readonly statuses: StatusReport[] = [];
  /** PRESENCE messages seen, oldest first. */
  readonly presence: PresenceMessage[] = [];
  private readonly objects = new Map<string, { bytes: Uint8Array; chunkBytes: number }>();
  private readonly answered = new Set<string>();
  private readonly tables = new Set<string>();
  private readonly bus: Bus;

  constructor(bus: Bus, prefix = 'fb/v1') {
    this.bus = bus;
    this.topics = new Topics(prefix);
    bus.subscribe(this.topics.allOut('fetch'), (t, p) => this.onFetch(t, p));
    bus.subscribe(this.topics.allOut('ack'), (t, p) => this.onAck(t, p));
    bus.subscribe(this.topics.allOut('status'), (t, p) => this.onStatus(t, p));
    bus.subscribe(this.topics.allOut('presence'), (_t, p) => {
      if (p.length > 0) this.presence.push(decodePresence(p));
    });
  }

  /** Builds and registers a release of `image`. */
  release(
    version: string,
    image: Uint8Array,
    options: { chunkBytes?: number; secv?: number; hw?: string } = {},
  ): TestRelease {
    const chunkBytes = options.chunkBytes ?? 1024;
    const built = new ChunkTableBuilder(chunkBytes).update(image).finish();
    const body: ReleaseBody = {
      name: 'fw',
      ver: version,
      secv: options.secv ?? 1,
      hw: options.hw ?? 'pi4',
      size: image.length,
      digest: built.imageDigest,
      cbytes: chunkBytes,
      ctab: built.table.digest(),
      iat: Math.floor(Date.now() / 1000),
    };
    this.objects.set(toHex(body.digest), { bytes: image, chunkBytes });
    this.objects.set(toHex(body.ctab), { bytes: built.table.bytes, chunkBytes });
    this.tables.add(toHex(body.ctab));
    return { body, image, table: built.table.bytes };
  }

  /** The encoded, signed manifest of `release` for a device. */
  manifest(release: TestRelease, options: ManifestOptions): Uint8Array {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const certs = [
      issueCertificate(
        this.root,
        this.releaseKey.publicKey,
        'release',
        nowSeconds,
        nowSeconds + 3600,
      ),
      issueCertificate(
        this.root,
        this.assignmentKey.publicKey,
        'assignment',
        nowSeconds,
        nowSeconds + 3600,
      ),
    ];
    const asg = signAssignment(
      {
        dev: options.deviceId ?? 'dev-1',
        seq: options.seq,
        rel: releaseDigest(release.body),
        ro: 'ro-1',
        iat: nowSeconds,
        exp: options.expSeconds ?? nowSeconds + 3600,
        ...(options.ackbySeconds !== undefined ? { ackby: options.ackbySeconds } : {}),
      },
      this.assignmentKey,
    );
    if (options.tamperAssignmentSignature) {
      const sig = new Uint8Array(asg.sig.sig);
      sig[0] = (sig[0] as number) ^ 0xff;
      Object.assign(asg, { sig: { kid: asg.sig.kid, sig } });
    }
    const rel = signRelease(release.body, [this.releaseKey]);
    return encodeManifest({ asg, rel, certs });
  }

  /** Publishes a manifest retained, as the server does. */
  assign(deviceId: string, manifest: Uint8Array): void {
    this.bus.publish(this.topics.in(deviceId, 'manifest'), manifest, true);
  }

  requestedFor(release: TestRelease): number[] {
    return this.requested.get(toHex(release.body.digest)) ?? [];
  }

  /** Every FETCH_REQ index, of any object. */
  get totalRequested(): number {
    let n = 0;
    for (const list of this.requested.values()) n += list.length;
    return n;
  }

  private onFetch(topic: string, payload: Uint8Array): void {
    const deviceId = this.topics.parse(topic)?.deviceId;
    if (!deviceId) return;
    const request = decodeFetchRequest(payload);
    const key = toHex(request.obj);
    const object = this.objects.get(key);
    const indices = requestedChunks(request);
    const log = this.requested.get(key) ?? [];
    log.push(...indices);
    this.requested.set(key, log);
    const out = this.topics.in(deviceId, 'chunk');
    const isImage = !this.tables.has(key);
    if (!object) {
      const err = { rid: request.rid, obj: request.obj, err: 'FB_ERR_OBJECT_UNKNOWN' };
      return this.bus.publish(out, encodeFetchResponse(err), false);
    }
    if (isImage && this.faults.busy > 0) {
      this.faults.busy--;
      const err = { rid: request.rid, obj: request.obj, err: 'FB_ERR_BUSY' };
      return this.bus.publish(out, encodeFetchResponse(err), false);
    }
    if (isImage && this.faults.dropImage) return;
    for (const idx of indices) {
      if (isImage && this.faults.imageBudget-- <= 0) return;
      const start = idx * object.chunkBytes;
      let data = object.bytes.slice(
        start,
        start + chunkLength(idx, object.bytes.length, object.chunkBytes),
      );
      const corrupt = isImage ? (this.faults.corrupt.get(idx) ?? 0) : 0;
      if (corrupt > 0) {
        this.faults.corrupt.set(idx, corrupt - 1);
        data = new Uint8Array(data);
        data[0] = (data[0] as number) ^ 0xff;
      }
      this.bus.publish(
        out,
        encodeFetchResponse({ rid: request.rid, obj: request.obj, idx, data }),
        false,
      );
    }
  }

  private onAck(topic: string, payload: Uint8Array): void {
    const ack = decodeAckRequest(payload);
    this.answer(topic, ack.rid, () => this.acks.push(ack));
  }

  private onStatus(topic: string, payload: Uint8Array): void {
    const status = decodeStatus(payload);
    this.answer(topic, status.rid, () => this.statuses.push(status));
  }

  /** Records a request id once and answers every copy (dup=true after the first). */
  private answer(topic: string, rid: string, record: () => void): void {
    const deviceId = this.topics.parse(topic)?.deviceId;
    if (!deviceId) return;
    const dup = this.answered.has(rid);
    if (!dup) {
      this.answered.add(rid);
      record();
    }
    if (this.faults.dropAckResponses > 0) {
      this.faults.dropAckResponses--;
      return;
    }
    const response = encodeAckResponse({ rid, ok: true, code: 'OK', ...(dup ? { dup } : {}) });
    this.bus.publish(this.topics.in(deviceId, 'ack'), response, false);
  }
}
