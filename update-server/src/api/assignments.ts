/**
 * Direct assignments: a release to listed devices, each through the delivery module's
 * `AssignmentService` (signed, stored, published retained). Every device is checked first, so a
 * bad id refuses the whole request before anything is assigned.
 */
import { fbError } from '@fetchback/shared';
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context.js';
import { DeviceHistory } from '../store/history.js';
import { actorOf, bearerSecurity, requireRole } from './auth.js';
import { errorResponses } from './errors.js';
import { iso, pageQuery } from './schemas.js';

interface AssignBody {
  releaseId: string;
  deviceIds: string[];
  ttlS?: number;
  ackDeadlineS?: number;
}

/** Most devices one request may assign; larger fleets go through rollouts. */
export const MAX_DEVICES_PER_ASSIGNMENT = 1000;

const assignmentItem = {
  type: 'object',
  required: ['seq', 'releaseId'],
  properties: {
    seq: { type: 'integer' },
    releaseId: { type: 'string' },
    rolloutId: { type: ['string', 'null'] },
    issuedAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: 'string', format: 'date-time' },
  },
} as const;

/** Checks every device before any is assigned. */
function checkDevices(ctx: ServerContext, deviceIds: readonly string[], hwClass: string): void {
  for (const id of deviceIds) {
    const device = ctx.devices.require(id);
    if (device.status !== 'active') throw fbError('FB_ERR_DEVICE_DECOMMISSIONED', id);
    if (device.hwClass !== hwClass) {
      throw fbError(
        'FB_ERR_WRONG_HW_CLASS',
        `device ${id} is ${device.hwClass}, release is ${hwClass}`,
      );
    }
  }
}

export async function assignmentsRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.post<{ Body: AssignBody }>(
    '/api/v1/assignments',
    {
      onRequest: requireRole('operator'),
      schema: {
        summary: 'Assign a release to devices',
        tags: ['assignments'],
        security: bearerSecurity,
        body: {
          type: 'object',
          required: ['releaseId', 'deviceIds'],
          additionalProperties: false,
          properties: {
            releaseId: { type: 'string', minLength: 1, maxLength: 64 },
            deviceIds: {
              type: 'array',
              minItems: 1,
              maxItems: MAX_DEVICES_PER_ASSIGNMENT,
              uniqueItems: true,
              items: { type: 'string', minLength: 1, maxLength: 64 },
            },
            ttlS: { type: 'integer', minimum: 60, description: 'assignment validity, seconds' },
            ackDeadlineS: { type: 'integer', minimum: 1, description: 'final ACK due in, seconds' },
          },
        },
        response: {
          201: {
            type: 'object',
            required: ['releaseId', 'assignments'],
            properties: {
              releaseId: { type: 'string' },
              assignments: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['deviceId', 'seq'],
                  properties: { deviceId: { type: 'string' }, seq: { type: 'integer' } },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { releaseId, deviceIds, ttlS, ackDeadlineS } = request.body;
      const release = ctx.releases.require(releaseId);
      checkDevices(ctx, deviceIds, release.hwClass);
      const assignments: { deviceId: string; seq: number }[] = [];
      for (const deviceId of deviceIds) {
        const { seq } = await ctx.assignments.assign(deviceId, release.id, { ttlS, ackDeadlineS });
        assignments.push({ deviceId, seq });
      }
      ctx.audit.record(actorOf(request), 'assignment.create', release.id, { assignments });
      return reply.code(201).send({ releaseId: release.id, assignments });
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number; offset: number } }>(
    '/api/v1/devices/:id/assignments',
    {
      onRequest: requireRole('viewer'),
      schema: {
        summary: "A device's assignments, newest first",
        tags: ['assignments'],
        security: bearerSecurity,
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
        },
        querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery } },
        response: {
          200: {
            type: 'object',
            required: ['items'],
            properties: { items: { type: 'array', items: assignmentItem } },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const device = ctx.devices.require(request.params.id);
      const { limit, offset } = request.query;
      const items = new DeviceHistory(ctx.db)
        .assignments(device.id, limit, offset)
        .map((a) => ({ ...a, issuedAt: iso(a.issuedAt), expiresAt: iso(a.expiresAt) }));
      return { items };
    },
  );
}
