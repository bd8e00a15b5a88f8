/**
 * The fetch phase on the server (`docs/protocol.md` §7): answers FETCH_REQ on
 * `{prefix}/d/+/out/fetch` with one FETCH_RESP per chunk on the device's `in/chunk`.
 *
 * Chunks go out at QoS 0: the device keeps a window of requests, verifies each chunk against
 * the chunk table and re-requests what it lacks, so a broker-level retransmission (and its
 * per-client queue of megabytes) would add nothing but memory. Refusals are coded FETCH_RESPs:
 * FB_ERR_OBJECT_UNKNOWN, FB_ERR_NOT_ASSIGNED (the object belongs to no release the device is
 * currently assigned), FB_ERR_CHUNK_RANGE, FB_ERR_BUSY (over the per-device in-flight cap, or
 * the global byte budget is spent and the waiting queue is full; the device backs off and asks
 * again).
 *
 * A chunk that finds the global budget spent waits in one FIFO queue, served as chunks ahead of
 * it finish, instead of being refused at once: a refused device backs off for a second or more,
 * which in a fleet of 1,000 left the server idle most of the time while devices waited out
 * their backoff.
 */
import { performance } from 'node:perf_hooks';

import {
  type ErrorCode,
  type FetchRequest,
  LIMITS,
  type Topics,
  chunkCount,
  chunkLength,
  decodeFetchRequest,
  encodeFetchResponse,
  requestedChunks,
  toHex,
} from '@fetchback/shared';
import type { Logger } from 'pino';

import type { MessageBus } from '../broker/message-bus.js';
import type { Rejections } from '../broker/rejections.js';
import type { AssignmentStore } from './assignment-store.js';
import { ByteBudget, InFlightCounter } from './byte-budget.js';
import { ChunkCache } from './chunk-cache.js';
import { chunkResponseHead } from './chunk-response.js';
import { deviceMessageHandler } from './inbound.js';
import type { DeliveryMetrics } from './metrics.js';
import type { DevicePort, DeviceRecord, ImagePort, ReleasePort } from './ports.js';

export interface FetchOptions {
  /** Chunks being read or published for one device at once. */
  readonly maxInFlightPerDevice: number;
  /** Chunk bytes being read or published for all devices at once. */
  readonly globalBudgetBytes: number;
  /** Chunk requests queued while the global budget is spent; beyond them, FB_ERR_BUSY. */
  readonly maxWaitingChunks: number;
  /** Bytes of chunks kept in memory. */
  readonly cacheBytes: number;
}

export interface FetchDeps {
  readonly bus: MessageBus;
  readonly topics: Topics;
  readonly devices: DevicePort;
  readonly releases: ReleasePort;
  readonly images: ImagePort;
  readonly store: AssignmentStore;
  readonly rejections: Rejections;
  readonly metrics: DeliveryMetrics;
  readonly log: Logger;
}

/** An object a device may fetch: its digest, size and chunking. */
interface FetchableObject {
  readonly digestHex: string;
  readonly sizeBytes: number;
  readonly chunkBytes: number;
  readonly chunks: number;
}

/** A known object and the release it belongs to; immutable once the release exists. */
interface KnownObject {
  readonly releaseId: string;
  readonly object: FetchableObject;
}

/** A chunk request admitted for its device, waiting for the global byte budget. */
interface WaitingChunk {
  readonly deviceId: string;
  readonly req: FetchRequest;
  readonly object: FetchableObject;
  readonly idx: number;
  readonly bytes: number;
  readonly served: () => void;
}

/** Most object digests whose release is remembered (two objects per release). */
const KNOWN_OBJECTS = 256;
/** Chunks read ahead of each one served: 1 MiB at the default chunk size of 256 KiB. */
const READ_AHEAD_CHUNKS = 4;

export class FetchService {
  private readonly deps: FetchDeps;
  private readonly cache: ChunkCache;
  private readonly budget: ByteBudget;
  private readonly inFlight: InFlightCounter;
  private readonly maxWaitingChunks: number;
  /** FIFO of chunks waiting for the budget; `waitingHead` is the next one to serve. */
  private waiting: WaitingChunk[] = [];
  private waitingHead = 0;
  /** Digest to release and chunking, so a FETCH_REQ costs no release lookup in the store. */
  private readonly known = new Map<string, KnownObject>();

  constructor(deps: FetchDeps, options: FetchOptions) {
    this.deps = deps;
    this.cache = new ChunkCache(options.cacheBytes, (d, i, c, into) => {
      deps.metrics.chunkStoreReads.inc();
      return deps.images.readChunkInto(d, i, c, into);
    });
    this.budget = new ByteBudget(options.globalBudgetBytes);
    this.inFlight = new InFlightCounter(options.maxInFlightPerDevice);
    this.maxWaitingChunks = options.maxWaitingChunks;
  }

  async start(): Promise<void> {
    const handler = deviceMessageHandler(this.deps, 'fetch', decodeFetchRequest, (device, req) =>
      this.serve(device, req),
    );
    await this.deps.bus.subscribe(this.deps.topics.allOut('fetch'), handler);
  }

  /** Bytes reserved by chunks in flight now (for tests and health). */
  get budgetUsedBytes(): number {
    return this.budget.usedBytes;
  }

  /** Chunk requests waiting for the global budget now. */
  get waitingChunks(): number {
    return this.waiting.length - this.waitingHead;
  }

  /** Answers one FETCH_REQ: resolve the object, then serve or refuse each chunk. */
  async serve(device: DeviceRecord, req: FetchRequest): Promise<void> {
    const startedAt = performance.now();
    const resolved = this.resolve(device.id, toHex(req.obj));
    if ('refusal' in resolved) {
      await this.refuse(device.id, req, [{ code: resolved.refusal }]);
      return;
    }
    const object = resolved.object;

    // A request names at most a protocol window of chunks; a larger bitmap is cut to it.
    const wanted = requestedChunks(req, LIMITS.maxWindow);
    const refused: { code: ErrorCode; idx: number }[] = [];
    const serving: Promise<void>[] = [];
    for (const idx of wanted) {
      const admitted = this.admit(device.id, req, object, idx);
      if (typeof admitted === 'string') refused.push({ code: admitted, idx });
      else serving.push(admitted);
    }

    await Promise.all(serving);
    if (refused.length > 0) await this.refuse(device.id, req, refused);
    this.deps.metrics.fetchSeconds.observe((performance.now() - startedAt) / 1000);
  }

  /** Which object is asked for, and whether this device may have it. */
  private resolve(
    deviceId: string,
    digestHex: string,
  ): { object: FetchableObject } | { refusal: ErrorCode } {
    const known = this.knownObject(digestHex);
    if (!known) return { refusal: 'FB_ERR_OBJECT_UNKNOWN' };
    // Authorization on every request: the store invalidates its copy when it assigns.
    const latest = this.deps.store.latest(deviceId);
    if (!latest || latest.releaseId !== known.releaseId) return { refusal: 'FB_ERR_NOT_ASSIGNED' };
    return { object: known.object };
  }

  /** The release and chunking of an object digest; only found objects are remembered. */
  private knownObject(digestHex: string): KnownObject | undefined {
    const hit = this.known.get(digestHex);
    if (hit) return hit;
    const found = this.deps.releases.byObjectDigest(digestHex);
    if (!found) return undefined;
    const sizeBytes = this.deps.images.size(digestHex);
    if (sizeBytes === undefined) return undefined;

    const chunkBytes = found.release.chunkBytes;
    const object = { digestHex, sizeBytes, chunkBytes, chunks: chunkCount(sizeBytes, chunkBytes) };
    const known = { releaseId: found.release.id, object };
    this.known.set(digestHex, known);
    if (this.known.size > KNOWN_OBJECTS) {
      this.known.delete(this.known.keys().next().value as string);
    }
    return known;
  }

  /**
   * Takes the device's in-flight slot for one chunk, then the budget for its bytes: served at
   * once, or queued behind the chunks already waiting; a refusal code when neither.
   */
  private admit(
    deviceId: string,
    req: FetchRequest,
    object: FetchableObject,
    idx: number,
  ): Promise<void> | ErrorCode {
    if (idx >= object.chunks) return 'FB_ERR_CHUNK_RANGE';
    if (!this.inFlight.tryAcquire(deviceId)) return 'FB_ERR_BUSY';
    const bytes = chunkLength(idx, object.sizeBytes, object.chunkBytes);
    // Nobody overtakes the queue: a free budget goes to the oldest waiting chunk first.
    if (this.waitingChunks === 0 && this.budget.tryReserve(bytes)) {
      return this.sendChunk(deviceId, req, object, idx, bytes);
    }
    if (this.waitingChunks >= this.maxWaitingChunks) {
      this.inFlight.release(deviceId);
      return 'FB_ERR_BUSY';
    }
    return new Promise((served) => {
      this.waiting.push({ deviceId, req, object, idx, bytes, served });
    });
  }

  /** Serves waiting chunks, oldest first, while the budget has room for them. */
  private serveWaiting(): void {
    while (this.waitingChunks > 0) {
      const next = this.waiting[this.waitingHead] as WaitingChunk;
      if (!this.budget.tryReserve(next.bytes)) {
        // Under sustained load the queue never empties: drop the served head now and then.
        if (this.waitingHead >= 4096) {
          this.waiting = this.waiting.slice(this.waitingHead);
          this.waitingHead = 0;
        }
        return;
      }
      this.waitingHead++;
      void this.sendChunk(next.deviceId, next.req, next.object, next.idx, next.bytes).then(
        next.served,
      );
    }
    this.waiting = [];
    this.waitingHead = 0;
  }

  /** Reads and publishes one chunk whose bytes are reserved, then frees the reservation. */
  private async sendChunk(
    deviceId: string,
    req: FetchRequest,
    object: FetchableObject,
    idx: number,
    reserved: number,
  ): Promise<void> {
    try {
      const loading = this.cache.get(object.digestHex, idx, object.chunkBytes, reserved);
      this.readAhead(object, idx);
      const data = await loading;
      const head = chunkResponseHead(req.rid, req.obj, idx, data.length);
      // QoS 0: see the file comment; the device re-requests a lost chunk.
      await this.deps.bus.publishParts(this.deps.topics.in(deviceId, 'chunk'), [head, data]);
      // Nothing holds the chunk any more (MessageBus.publishParts): its buffer may be reused.
      this.cache.release(data);
      this.deps.metrics.chunksServed.inc();
      this.deps.metrics.bytesServed.inc(reserved);
    } catch (err) {
      this.deps.log.error(
        { deviceId, obj: object.digestHex, idx, err: (err as Error).message },
        'chunk could not be served',
      );
    } finally {
      this.budget.release(reserved);
      this.inFlight.release(deviceId);
      this.serveWaiting();
    }
  }

  /**
   * Devices ask for chunks in ascending order (`docs/protocol.md` §7.2), a window at a time:
   * the chunks after one being served are read now, so that the store's latency is not in the
   * round trip of the next request.
   */
  private readAhead(object: FetchableObject, idx: number): void {
    const ahead: { index: number; length: number }[] = [];
    for (let i = idx + 1; i <= idx + READ_AHEAD_CHUNKS && i < object.chunks; i++) {
      ahead.push({ index: i, length: chunkLength(i, object.sizeBytes, object.chunkBytes) });
    }
    this.cache.readAhead(object.digestHex, object.chunkBytes, ahead);
  }

  /** Publishes the refusals of one request, and logs and counts each code once. */
  private async refuse(
    deviceId: string,
    req: FetchRequest,
    refusals: { code: ErrorCode; idx?: number }[],
  ): Promise<void> {
    const topic = this.deps.topics.in(deviceId, 'chunk');
    const byCode = new Map<ErrorCode, number>();
    for (const { code } of refusals) byCode.set(code, (byCode.get(code) ?? 0) + 1);
    for (const [code, chunks] of byCode) {
      this.deps.rejections.record(
        code,
        { deviceId, obj: toHex(req.obj).slice(0, 16), rid: req.rid, chunks },
        'fetch refused',
      );
    }
    for (const { code, idx } of refusals) {
      const payload = encodeFetchResponse({
        rid: req.rid,
        obj: req.obj,
        ...(idx === undefined ? {} : { idx }),
        err: code,
      });
      await this.deps.bus.publish(topic, payload, { qos: 0 });
    }
  }
}
