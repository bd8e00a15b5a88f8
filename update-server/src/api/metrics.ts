/**
 * `/metrics` in the Prometheus text format, from the registry every module registers into.
 * Device and release counts are gauges read from the store at scrape time.
 */
import type { FastifyInstance } from 'fastify';
import { Gauge, type Registry } from 'prom-client';

import type { ServerContext } from '../context.js';

/** Registers the store gauges once per registry. */
export function registerStoreGauges(registry: Registry, ctx: ServerContext): void {
  if (registry.getSingleMetric('fetchback_devices')) return;
  new Gauge({
    name: 'fetchback_devices',
    help: 'Registered devices by status and last reported state',
    labelNames: ['status', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const row of ctx.devices.countByState()) {
        this.set({ status: row.status, state: row.state ?? 'unknown' }, row.count);
      }
    },
  });
  new Gauge({
    name: 'fetchback_releases',
    help: 'Releases in the store',
    registers: [registry],
    collect() {
      this.set(ctx.releases.count());
    },
  });
}

export async function metricsRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const registry = ctx.metrics.registry;
  registerStoreGauges(registry, ctx);
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics', tags: ['health'] } },
    async (_request, reply) => {
      const body = await registry.metrics();
      return reply.type(registry.contentType).send(body);
    },
  );
}
