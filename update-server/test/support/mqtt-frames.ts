/** MQTT 3.1.1 packets built by hand, for tests that write raw bytes to a broker's socket. */

/** A remaining-length varint (MQTT 3.1.1 §2.2.3). */
export function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/** A PUBLISH at QoS 0 (§3.3). */
export function publishFrame(topic: string, payload: Buffer): Buffer {
  const name = Buffer.from(topic);
  const body = Buffer.concat([Buffer.from([name.length >> 8, name.length & 0xff]), name, payload]);
  return Buffer.concat([Buffer.from([0x30, ...varint(body.length)]), body]);
}
