/**
 * Server-sent events (`GET /api/v1/events`): every ServerEvent (`rollout.changed`, `device.*`)
 * as it happens, for live progress in the CLI and dashboards. `?rollout=ID` keeps only that
 * rollout's events. A comment line every HEARTBEAT_MS keeps proxies from closing an idle
 * stream. The stream carries no history: a client that reconnects reads the current state
 * from the REST routes, then follows the stream again.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import type { ServerContext } from '../context.js';
import type { ServerEventMap } from '../events.js';
import { bearerSecurity, requireRole } from './auth.js';
import { errorResponses } from './errors.js';

/** Period of the heartbeat comment, in milliseconds. */
export const HEARTBEAT_MS = 15_000;

/** The events a stream forwards. */
export const STREAMED_EVENTS = [
  'rollout.changed',
  'device.registered',
  'device.decommissioned',
  'device.assigned',
  'device.ack',
  'device.status',
  'device.presence',
] as const satisfies readonly (keyof ServerEventMap)[];

type StreamedEvent = (typeof STREAMED_EVENTS)[number];

/** True when `payload` of `name` concerns `rolloutId`. */
function concerns(
  name: StreamedEvent,
  payload: Record<string, unknown>,
  rolloutId: string,
): boolean {
  if (name === 'rollout.changed') return payload.rolloutId === rolloutId;
  return 'rolloutId' in payload && payload.rolloutId === rolloutId;
}

export async function eventsRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const open = new Set<() => void>();
  let nextId = 1;

  // Open streams would hold the HTTP server open forever; end them before it closes.
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });

  app.get<{ Querystring: { rollout?: string } }>(
    '/api/v1/events',
    {
      onRequest: requireRole('viewer'),
      schema: {
        summary: 'Live stream of rollout and device events (text/event-stream)',
        tags: ['events'],
        security: bearerSecurity,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { rollout: { type: 'string', minLength: 1, maxLength: 64 } },
        },
        response: {
          200: {
            description: 'text/event-stream; each event has id, event (its name) and JSON data',
            type: 'string',
          },
          ...errorResponses,
        },
      },
    },
    (request: FastifyRequest<{ Querystring: { rollout?: string } }>, reply: FastifyReply) => {
      const filter = request.query.rollout;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(': fetchback event stream\n\n');

      const handlers = STREAMED_EVENTS.map((name) => {
        const handler = (payload: Record<string, unknown>): void => {
          if (filter !== undefined && !concerns(name, payload, filter)) return;
          res.write(`id: ${nextId++}\nevent: ${name}\ndata: ${JSON.stringify(payload)}\n\n`);
        };
        ctx.events.on(name, handler as never);
        return [name, handler] as const;
      });
      const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
      heartbeat.unref();

      const end = (): void => {
        if (!open.delete(end)) return;
        clearInterval(heartbeat);
        for (const [name, handler] of handlers) ctx.events.off(name, handler as never);
        res.end();
      };
      open.add(end);
      request.raw.on('close', end);
      res.on('error', end);
    },
  );
}
