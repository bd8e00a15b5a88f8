/**
 * Rollouts: create, start, pause, resume, abort; get with counts per state and per wave; list
 * with filters and pagination; the devices of a rollout with their state and last result code.
 * Operators change, viewers read. The engine writes each change to the audit log with the
 * token's name as actor.
 */
import { fbError } from '@fetchback/shared';
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context.js';
import { rolloutEngineOf } from '../rollouts/attach.js';
import type { RolloutState } from '../rollouts/transitions.js';
import { ROLLOUT_STATES } from '../rollouts/transitions.js';
import { DEVICE_STATES } from '../rollouts/outcomes.js';
import type { RouteModule } from './app.js';
import { auditRoutes } from './audit.js';
import { actorOf, bearerSecurity, requireRole } from './auth.js';
import { eventsRoutes } from './events.js';
import { errorResponses } from './errors.js';
import {
  createRolloutBody,
  rolloutBody,
  rolloutDeviceBody,
  rolloutDeviceSchema,
  rolloutSchema,
} from './rollout-schemas.js';

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

const ACTIONS = ['start', 'pause', 'resume', 'abort'] as const;

interface CreateBody {
  name?: string;
  releaseId: string;
  target?: Record<string, unknown>;
  strategy?: Record<string, unknown>;
  startAt?: string;
}

interface ListQuery {
  state?: RolloutState;
  releaseId?: string;
  limit: number;
  offset: number;
  cursor?: string;
}

interface DevicesQuery {
  state?: string;
  wave?: number;
  limit: number;
  offset: number;
}

export async function rolloutsRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const engine = () => rolloutEngineOf(ctx);

  app.post<{ Body: CreateBody }>(
    '/api/v1/rollouts',
    {
      onRequest: requireRole('operator'),
      schema: {
        summary: 'Create a rollout (draft)',
        tags: ['rollouts'],
        security: bearerSecurity,
        body: createRolloutBody,
        response: { 201: rolloutSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { startAt, ...rest } = request.body;
      const at = startAt === undefined ? undefined : Date.parse(startAt);
      if (at !== undefined && Number.isNaN(at)) {
        throw fbError('FB_ERR_VALIDATION', '"startAt" expected an ISO 8601 time');
      }
      const view = engine().create({ ...rest, startAt: at }, actorOf(request));
      return reply.code(201).send(rolloutBody(view));
    },
  );

  app.get<{ Querystring: ListQuery }>(
    '/api/v1/rollouts',
    {
      onRequest: requireRole('viewer'),
      schema: {
        summary: 'List rollouts, newest first',
        tags: ['rollouts'],
        security: bearerSecurity,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: { type: 'string', enum: [...ROLLOUT_STATES] },
            releaseId: { type: 'string', maxLength: 128 },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            offset: { type: 'integer', minimum: 0, default: 0 },
            cursor: { type: 'string', maxLength: 200, description: 'nextCursor of a page' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['items', 'total', 'limit', 'offset', 'nextCursor'],
            properties: {
              items: { type: 'array', items: rolloutSchema },
              total: { type: 'integer' },
              limit: { type: 'integer' },
              offset: { type: 'integer' },
              nextCursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const page = engine().list(q);
      return { ...page, items: page.items.map(rolloutBody), limit: q.limit, offset: q.offset };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/rollouts/:id',
    {
      onRequest: requireRole('viewer'),
      schema: {
        summary: 'A rollout with device counts per state and per wave',
        tags: ['rollouts'],
        security: bearerSecurity,
        params: idParams,
        response: { 200: rolloutSchema, ...errorResponses },
      },
    },
    async (request) => rolloutBody(engine().get(request.params.id)),
  );

  for (const action of ACTIONS) {
    app.post<{ Params: { id: string } }>(
      `/api/v1/rollouts/:id/${action}`,
      {
        onRequest: requireRole('operator'),
        schema: {
          summary: `${action[0]?.toUpperCase()}${action.slice(1)} a rollout`,
          tags: ['rollouts'],
          security: bearerSecurity,
          params: idParams,
          response: { 200: rolloutSchema, ...errorResponses },
        },
      },
      async (request) => rolloutBody(engine()[action](request.params.id, actorOf(request))),
    );
  }

  app.get<{ Params: { id: string }; Querystring: DevicesQuery }>(
    '/api/v1/rollouts/:id/devices',
    {
      onRequest: requireRole('viewer'),
      schema: {
        summary: 'The devices of a rollout: wave, state, attempts, last result code',
        tags: ['rollouts'],
        security: bearerSecurity,
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: { type: 'string', enum: [...DEVICE_STATES] },
            wave: { type: 'integer', minimum: 0 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            offset: { type: 'integer', minimum: 0, default: 0 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['items', 'total', 'limit', 'offset'],
            properties: {
              items: { type: 'array', items: rolloutDeviceSchema },
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
      const page = engine().devices(request.params.id, q);
      return { items: page.items.map(rolloutDeviceBody), total: page.total, ...q };
    },
  );
}

/** Every route module of the rollouts part, for `buildApi(ctx, extraRoutes)`. */
export const ROLLOUT_ROUTES: readonly RouteModule[] = [rolloutsRoutes, eventsRoutes, auditRoutes];
