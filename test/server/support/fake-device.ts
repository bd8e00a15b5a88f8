/**
 * A device played by a plain mqtt.js client: it speaks the wire protocol directly (no agent
 * code), so these tests check the server against the protocol itself.
 */
import {
  ChunkTable,
  type FetchResponse,
  ManifestVerifier,
  type VerifiedManifest,
  bytesEqual,
  chunkCount,
  decodeAckResponse,
  decodeFetchResponse,
  decodeManifest,
  encodeAckRequest,
  encodeFetchRequest,
  fromHex,
  sha256,
  toHex,
  type AckResponse,
  type AckStep,
} from '@fetchback/shared';
import { openMqttClient } from '@fetchback/device-agent';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface DeviceCredentials {
  readonly brokerUrl: string;
  readonly deviceId: string;
  readonly password: string;
  readonly rootPublicKey: string;
  readonly hardwareClass: string;
}

export class FakeDevice {
  readonly client: MqttClient;
  readonly id: string;
  private readonly creds: DeviceCredentials;
  private nextRid = 1;
  private readonly inbox = new Map<string, Buffer[]>();
  private readonly waiters = new Map<string, (payload: Buffer) => void>();

  private constructor(client: MqttClient, creds: DeviceCredentials) {
    this.client = client;
    this.creds = creds;
    this.id = creds.deviceId;
    client.on('message', (topic, payload) => this.keep(topic, payload));
  }

  static async connect(creds: DeviceCredentials, extra: IClientOptions = {}): Promise<FakeDevice> {
    const client = await mqtt.connectAsync(creds.brokerUrl, {
      clientId: creds.deviceId,
      username: creds.deviceId,
      password: creds.password,
      protocolVersion: 4,
      reconnectPeriod: 0,
      ...extra,
    });
    return FakeDevice.subscribed(client, creds);
  }

  /**
   * The same device on the agent's own MQTT connection (`openMqttClient`: on mqtt:// the
   * PacketSocket, which reads each packet into one buffer), so that a broker's way of cutting
   * its writes reaches the agent's framing.
   */
  static async connectAsAgent(creds: DeviceCredentials): Promise<FakeDevice> {
    const client = await openMqttClient(creds.brokerUrl, {
      clientId: creds.deviceId,
      username: creds.deviceId,
      password: creds.password,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    return FakeDevice.subscribed(client, creds);
  }

  private static async subscribed(client: MqttClient, creds: DeviceCredentials) {
    const device = new FakeDevice(client, creds);
    await client.subscribeAsync(`fb/v1/d/${creds.deviceId}/in/#`, { qos: 1 });
    return device;
  }

  topic(dir: 'in' | 'out', leaf: string): string {
    return `fb/v1/d/${this.id}/${dir}/${leaf}`;
  }

  /** Waits for the retained manifest and verifies it as the agent would. */
  async manifest(ms = 5000): Promise<VerifiedManifest> {
    const bytes = await this.next('manifest', ms);
    return new ManifestVerifier({
      rootPublicKey: fromHex(this.creds.rootPublicKey),
      deviceId: this.id,
      hardwareClass: this.creds.hardwareClass,
      maxImageBytes: 1 << 30,
    }).verify(decodeManifest(bytes), { lastSequence: 0, securityVersion: 0 });
  }

  /** Fetches the chunk table, then every image chunk with a window of requests in flight. */
  async download(m: VerifiedManifest, windowChunks = 16): Promise<Uint8Array> {
    const { release } = m;
    const tableBytes = release.size === 0 ? 0 : chunkCount(release.size, release.cbytes) * 32;
    const tableData = await this.fetchObject(
      release.ctab,
      tableBytes,
      release.cbytes,
      windowChunks,
    );
    if (!bytesEqual(sha256(tableData), release.ctab)) throw new Error('chunk table digest');
    const table = new ChunkTable(tableData);

    const image = await this.fetchObject(
      release.digest,
      release.size,
      release.cbytes,
      windowChunks,
      (i, d) => table.verifyChunk(i, d),
    );
    if (!bytesEqual(sha256(image), release.digest)) throw new Error('image digest');
    return image;
  }

  /** Fetches one object; chunks lost or refused as busy are asked again in the next round. */
  async fetchObject(
    obj: Uint8Array,
    sizeBytes: number,
    chunkBytes: number,
    windowChunks: number,
    verify: (index: number, data: Uint8Array) => boolean = () => true,
  ): Promise<Uint8Array> {
    const count = chunkCount(sizeBytes, chunkBytes);
    const out = new Uint8Array(sizeBytes);
    const have = new Set<number>();
    for (let round = 0; have.size < count; round++) {
      if (round > 200) throw new Error(`download of ${toHex(obj).slice(0, 8)} stalled`);
      const wanted = [...Array(count).keys()].filter((i) => !have.has(i)).slice(0, windowChunks);
      const responses = await this.fetchRound(obj, wanted);
      for (const r of responses) {
        if (r.err) {
          if (r.err !== 'FB_ERR_BUSY') throw new Error(`fetch refused: ${r.err}`);
          continue;
        }
        const idx = r.idx as number;
        if (!verify(idx, r.data as Uint8Array)) throw new Error(`chunk ${idx} digest`);
        out.set(r.data as Uint8Array, idx * chunkBytes);
        have.add(idx);
      }
    }
    return out;
  }

  /** Sends FETCH_REQs for `indices` (8 per request) and collects the answers. */
  async fetchRound(obj: Uint8Array, indices: number[], ms = 3000): Promise<FetchResponse[]> {
    const rids = new Set<number>();
    const pending = new Set(indices);
    const got: FetchResponse[] = [];
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(finish, ms);
      const topic = this.topic('in', 'chunk');
      const client = this.client;
      function finish() {
        clearTimeout(timer);
        client.off('message', onMessage);
        resolve();
      }
      function onMessage(t: string, payload: Buffer) {
        if (t !== topic) return;
        const r = decodeFetchResponse(payload);
        if (!rids.has(r.rid)) return;
        got.push(r);
        if (r.idx === undefined) pending.clear();
        else pending.delete(r.idx);
        if (pending.size === 0) finish();
      }
      client.on('message', onMessage);
    });
    for (let i = 0; i < indices.length; i += 8) {
      const rid = this.nextRid++;
      rids.add(rid);
      await this.publish('fetch', encodeFetchRequest({ rid, obj, idx: indices.slice(i, i + 8) }));
    }
    await done;
    return got;
  }

  /** Sends an ACK_REQ and returns the raw and decoded ACK_RESP. */
  async ack(
    m: VerifiedManifest,
    step: AckStep,
    rid: string,
  ): Promise<{ raw: Buffer; resp: AckResponse }> {
    const answer = this.next('ack');
    const req = encodeAckRequest({
      rid,
      seq: m.assignment.seq,
      rel: m.releaseDigest,
      step,
      code: 'OK',
      at: Date.now(),
      ver: m.release.ver,
    });
    await this.publish('ack', req);
    const raw = await answer;
    return { raw, resp: decodeAckResponse(raw) };
  }

  async publish(leaf: string, payload: Uint8Array, qos: 0 | 1 = 1): Promise<void> {
    await this.client.publishAsync(this.topic('out', leaf), Buffer.from(payload), { qos });
  }

  /**
   * The next manifest or ACK_RESP: messages that arrived before anyone waited (a retained
   * manifest arrives during SUBSCRIBE) are kept in order and returned first.
   */
  next(leaf: string, ms = 5000): Promise<Buffer> {
    const topic = this.topic('in', leaf);
    const queued = this.inbox.get(topic)?.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(topic);
        reject(new Error(`${this.id}: nothing on ${leaf} within ${ms} ms`));
      }, ms);
      this.waiters.set(topic, (payload) => {
        clearTimeout(timer);
        resolve(payload);
      });
    });
  }

  private keep(topic: string, payload: Buffer): void {
    if (topic.endsWith('/in/chunk') || payload.length === 0) return;
    const waiter = this.waiters.get(topic);
    if (waiter) {
      this.waiters.delete(topic);
      waiter(payload);
      return;
    }
    const queue = this.inbox.get(topic) ?? [];
    queue.push(payload);
    this.inbox.set(topic, queue);
  }

  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => undefined);
  }
}
