/**
 * Bounds on chunks being read and published: a global byte budget shared by all devices, and a
 * per-device count of chunks in flight, so that one device or one rollout cannot take all of
 * the server's memory or the broker's bandwidth.
 */
export class ByteBudget {
  private readonly limitBytes: number;
  private used = 0;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  /** Bytes reserved now. */
  get usedBytes(): number {
    return this.used;
  }

  /** Reserves `bytes` if they fit; a single chunk larger than the whole budget fits when idle. */
  tryReserve(bytes: number): boolean {
    if (this.used > 0 && this.used + bytes > this.limitBytes) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

export class InFlightCounter {
  private readonly limit: number;
  private readonly counts = new Map<string, number>();

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Takes a slot for `key` if it has fewer than the limit in flight. */
  tryAcquire(key: string): boolean {
    const n = this.counts.get(key) ?? 0;
    if (n >= this.limit) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  release(key: string): void {
    const n = (this.counts.get(key) ?? 1) - 1;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }

  inFlight(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}
