/** API tokens (admin only): create (the secret is in this reply only), list, revoke. */
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context.js';
import { ROLES, type Role } from '../store/tokens.js';
import { actorOf, bearerSecurity, requireRole } from './auth.js';
import { errorResponses } from './errors.js';
import { tokenView } from './schemas.js';

export async function tokensRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.post<{ Body: { name: string; role: Role } }>(
    '/api/v1/tokens',
    {
      onRequest: requireRole('admin'),
      schema: {
        summary: 'Create an API token',
        tags: ['tokens'],
        security: bearerSecurity,
        body: {
          type: 'object',
          required: ['name', 'role'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 64 },
            role: { type: 'string', enum: [...ROLES] },
          },
        },
        response: { 201: { $ref: 'Token#' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const actor = actorOf(request);
      const { token, record } = ctx.tokens.create(request.body.name, request.body.role, actor);
      ctx.audit.record(actor, 'token.create', record.id, { name: record.name, role: record.role });
      return reply.code(201).send({ ...tokenView(record), token });
    },
  );

  app.get(
    '/api/v1/tokens',
    {
      onRequest: requireRole('admin'),
      schema: {
        summary: 'List API tokens (never their secrets)',
        tags: ['tokens'],
        security: bearerSecurity,
        response: {
          200: {
            type: 'object',
            required: ['items'],
            properties: { items: { type: 'array', items: { $ref: 'Token#' } } },
          },
          ...errorResponses,
        },
      },
    },
    async () => ({ items: ctx.tokens.list().map(tokenView) }),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/tokens/:id',
    {
      onRequest: requireRole('admin'),
      schema: {
        summary: 'Revoke an API token, by id or name',
        tags: ['tokens'],
        security: bearerSecurity,
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
        },
        response: { 200: { $ref: 'Token#' }, ...errorResponses },
      },
    },
    async (request) => {
      const record = ctx.tokens.revoke(request.params.id);
      ctx.audit.record(actorOf(request), 'token.revoke', record.id, { name: record.name });
      return tokenView(record);
    },
  );
}
