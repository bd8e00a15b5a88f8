/**
 * Serialises writes of one document and coalesces bursts: while a write runs, later requests
 * wait for one more write of the latest snapshot. Two atomic writes of the same file never
 * race, and the last snapshot always lands last.
 */
export class CoalescingWriter {
  private readonly write: () => Promise<void>;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  /** `write` must take its snapshot when it starts, not when it was scheduled. */
  constructor(write: () => Promise<void>) {
    this.write = write;
  }

  /** Resolves once a write that started after this call has finished. */
  flush(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.running) {
      this.running = this.start();
      return this.running;
    }
    const after = this.running.catch(() => undefined);
    this.queued = after.then(() => {
      this.queued = undefined;
      this.running = this.start();
      return this.running;
    });
    return this.queued;
  }

  private async start(): Promise<void> {
    try {
      await this.write();
    } finally {
      if (!this.queued) this.running = undefined;
    }
  }
}
