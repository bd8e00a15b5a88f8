/** The audit log (`GET /api/v1/audit`): who changed what and when, newest first. */
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context.js';
import { bearerSecurity, requireRole } from './auth.js';
import { errorResponses } from './errors.js';

interface AuditQuery {
  actor?: string;
  action?: string;
  target?: string;
  limit: number;
  offset: number;
}

const entrySchema = {
  type: 'object',
  required: ['id', 'at', 'actor', 'action', 'target', 'details'],
  properties: {
    id: { type: 'integer' },
    at: { type: 'string', format: 'date-time' },
    actor: { type: 'string', description: 'API token name, or system / rollout-engine' },
    action: { type: 'string', description: 'dotted verb, e.g. rollout.start' },
    target: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
  },
} as const;

export async function auditRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.get<{ Querystring: AuditQuery }>(
    '/api/v1/audit',
    {
      // The log names token holders and what they did: operators and admins only.
      onRequest: requireRole('operator'),
      schema: {
        summary: 'The audit log, newest first',
        tags: ['audit'],
        security: bearerSecurity,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            actor: { type: 'string', maxLength: 128 },
            action: { type: 'string', maxLength: 64 },
            target: { type: 'string', maxLength: 128 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            offset: { type: 'integer', minimum: 0, default: 0 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['items', 'total', 'limit', 'offset'],
            properties: {
              items: { type: 'array', items: entrySchema },
              total: { type: 'integer' },
              limit: { type: 'integer' },
              offset: { type: 'integer' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const page = ctx.audit.list(q);
      return {
        items: page.items.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
        total: page.total,
        limit: q.limit,
        offset: q.offset,
      };
    },
  );
}
