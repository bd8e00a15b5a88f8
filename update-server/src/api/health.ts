/**
 * Liveness and readiness, unauthenticated: `/healthz` answers while the process serves HTTP;
 * `/readyz` also checks that the database answers and the message bus is up.
 */
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context.js';
import { problem, sendProblem } from './errors.js';

const okSchema = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string' }, checks: { type: 'object' } },
} as const;

function checkDatabase(ctx: ServerContext): boolean {
  try {
    ctx.db.prepare('SELECT 1').get();
    return true;
  } catch {
    return false;
  }
}

export async function healthRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness', tags: ['health'], response: { 200: okSchema } } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: database and message bus',
        tags: ['health'],
        response: { 200: okSchema, 503: { $ref: 'Problem#' } },
      },
    },
    async (_request, reply) => {
      const checks = { database: checkDatabase(ctx), bus: ctx.bus !== undefined };
      if (!checks.database) {
        return sendProblem(reply, problem('FB_ERR_STORAGE', 'database does not answer', 503));
      }
      return { status: 'ready', checks };
    },
  );
}
