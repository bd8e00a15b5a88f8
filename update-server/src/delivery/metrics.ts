/** Delivery's Prometheus metrics, registered once per registry. */
import { Counter, Histogram, type Registry } from 'prom-client';

export interface DeliveryMetrics {
  readonly chunksServed: Counter;
  readonly bytesServed: Counter;
  readonly chunkStoreReads: Counter;
  readonly fetchSeconds: Histogram;
  readonly acksRecorded: Counter<'step'>;
}

export function deliveryMetrics(registry: Registry): DeliveryMetrics {
  const once = <M>(name: string, make: () => M): M =>
    (registry.getSingleMetric(name) as M | undefined) ?? make();
  return {
    chunksServed: once(
      'fetchback_chunks_served_total',
      () =>
        new Counter({
          name: 'fetchback_chunks_served_total',
          help: 'Chunks published in FETCH_RESP',
          registers: [registry],
        }),
    ),
    bytesServed: once(
      'fetchback_bytes_served_total',
      () =>
        new Counter({
          name: 'fetchback_bytes_served_total',
          help: 'Chunk bytes published in FETCH_RESP',
          registers: [registry],
        }),
    ),
    chunkStoreReads: once(
      'fetchback_chunk_store_reads_total',
      () =>
        new Counter({
          name: 'fetchback_chunk_store_reads_total',
          help: 'Chunks read from the image store (read-ahead included); the rest were cached',
          registers: [registry],
        }),
    ),
    fetchSeconds: once(
      'fetchback_fetch_duration_seconds',
      () =>
        new Histogram({
          name: 'fetchback_fetch_duration_seconds',
          help: 'Time from a FETCH_REQ to the last FETCH_RESP it caused',
          buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
          registers: [registry],
        }),
    ),
    acksRecorded: once(
      'fetchback_acks_recorded_total',
      () =>
        new Counter({
          name: 'fetchback_acks_recorded_total',
          help: 'New ACK_REQ recorded (duplicates excluded), by step',
          labelNames: ['step'],
          registers: [registry],
        }),
    ),
  };
}
