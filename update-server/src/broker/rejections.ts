/**
 * One place where refused connections, packets and messages are logged and counted, so that
 * every refusal leaves exactly one log line with its code and one increment of
 * `fetchback_rejections_total{code}`, whichever component refused it.
 */
import type { ErrorCode } from '@fetchback/shared';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';

const METRIC = 'fetchback_rejections_total';

/** Logs and counts refusals. */
export class Rejections {
  private readonly counter: Counter<'code'>;
  private readonly log: Logger;

  constructor(registry: Registry, log: Logger) {
    this.log = log;
    // The broker and delivery each build one on the same registry; share the metric.
    const existing = registry.getSingleMetric(METRIC);
    this.counter =
      (existing as Counter<'code'> | undefined) ??
      new Counter({
        name: METRIC,
        help: 'Refused MQTT connections, packets and messages, by error code',
        labelNames: ['code'],
        registers: [registry],
      });
  }

  /** Records one refusal: one warn line with the code and the fields, one counter increment. */
  record(code: ErrorCode | string, fields: Record<string, unknown>, message: string): void {
    this.counter.inc({ code });
    this.log.warn({ ...fields, code }, message);
  }

  /** The count for one code (for tests and the health page). */
  async count(code: string): Promise<number> {
    const metric = await this.counter.get();
    return metric.values.find((v) => v.labels.code === code)?.value ?? 0;
  }
}
