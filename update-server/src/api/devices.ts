/**
 * Devices: register (returns the broker credentials once, as a ready agent config), list with
 * filters, show with history, decommission (credentials revoked, live connection dropped).
 */
import { fromHex, keyId, toHex } from '@fetchback/shared';
import type { FastifyInstance, FastifyRequest } from 'fastify';

import type { ServerContext } from '../context.js';
import { DeviceHistory } from '../store/history.js';
import { newCredentials } from '../store/secret-hash.js';
import { parseTagPair } from '../store/validate.js';
import { actorOf, bearerSecurity, requireRole } from './auth.js';
import { errorResponses } from './errors.js';
import { deviceView, iso, pageOf, pageQuery } from './schemas.js';

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

const agentConfigSchema = {
  type: 'object',
  required: ['brokerUrl', 'deviceId', 'username', 'password', 'rootPublicKey', 'hardwareClass'],
  properties: {
    brokerUrl: { type: 'string' },
    deviceId: { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string', description: 'the device secret; shown only here, once' },
    rootPublicKey: { type: 'string', description: 'ed25519 root public key, hex' },
    hardwareClass: { type: 'string' },
    topicPrefix: { type: 'string' },
  },
} as const;

const historySchema = {
  type: 'object',
  properties: {
    assignments: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          seq: { type: 'integer' },
          releaseId: { type: 'string' },
          rolloutId: { type: ['string', 'null'] },
          issuedAt: { type: 'string' },
          expiresAt: { type: 'string' },
        },
      },
    },
    acks: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          requestId: { type: 'string' },
          seq: { type: 'integer' },
          step: { type: 'string' },
          code: { type: 'string' },
          version: { type: ['string', 'null'] },
          at: { type: 'string' },
          receivedAt: { type: 'string' },
          signed: { type: 'boolean', description: 'signed by the device key' },
        },
      },
    },
    status: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          state: { type: 'string' },
          code: { type: ['string', 'null'] },
          version: { type: ['string', 'null'] },
          seq: { type: ['integer', 'null'] },
          have: { type: ['integer', 'null'] },
          total: { type: ['integer', 'null'] },
          detail: { type: ['string', 'null'] },
          at: { type: 'string' },
          receivedAt: { type: 'string' },
        },
      },
    },
  },
} as const;

const deviceKeySchema = {
  type: ['object', 'null'],
  description: 'the ed25519 key pinned from the first signed ACK, or null',
  required: ['publicKey', 'keyId'],
  properties: {
    publicKey: { type: 'string', description: 'hex' },
    keyId: { type: 'string', description: 'SHA-256 of the public key, hex' },
  },
} as const;

/** The pinned device key, or null. */
function deviceKeyView(ctx: ServerContext, deviceId: string) {
  const key = ctx.deviceKeys.deviceKey(deviceId);
  return key ? { publicKey: toHex(key), keyId: toHex(keyId(key)) } : null;
}

interface RegisterBody {
  id: string;
  hardwareClass: string;
  tags?: Record<string, string>;
  deviceKey?: string;
}

interface ListQuery {
  class?: string;
  tag?: string[];
  state?: string;
  status?: 'active' | 'decommissioned';
  limit: number;
  offset: number;
}

/** The broker URL devices should use: configured, or derived from the host the caller used. */
function brokerUrlFor(ctx: ServerContext, request: FastifyRequest): string {
  const { advertisedBrokerUrl, brokerUrl, tlsCertFile } = ctx.options;
  if (advertisedBrokerUrl) return advertisedBrokerUrl;
  if (brokerUrl) return brokerUrl;
  const scheme = tlsCertFile ? 'mqtts' : 'mqtt';
  return `${scheme}://${request.hostname}:${ctx.bus.mqttPort ?? ctx.options.mqttPort}`;
}

function historyOf(ctx: ServerContext, deviceId: string) {
  const history = new DeviceHistory(ctx.db);
  return {
    assignments: history.assignments(deviceId, 20).map((a) => ({
      ...a,
      issuedAt: iso(a.issuedAt),
      expiresAt: iso(a.expiresAt),
    })),
    acks: history
      .acks(deviceId)
      .map((a) => ({ ...a, at: iso(a.at), receivedAt: iso(a.receivedAt) })),
    status: history
      .status(deviceId)
      .map((s) => ({ ...s, at: iso(s.at), receivedAt: iso(s.receivedAt) })),
  };
}

export async function devicesRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.post<{ Body: RegisterBody }>(
    '/api/v1/devices',
    {
      onRequest: requireRole('operator'),
      schema: {
        summary: 'Register a device',
        tags: ['devices'],
        security: bearerSecurity,
        body: {
          type: 'object',
          required: ['id', 'hardwareClass'],
          additionalProperties: false,
          properties: {
            id: { type: 'string', minLength: 1, maxLength: 64 },
            hardwareClass: { type: 'string', minLength: 1, maxLength: 64 },
            tags: { type: 'object', additionalProperties: { type: 'string', maxLength: 128 } },
            deviceKey: {
              type: 'string',
              pattern: '^[0-9a-fA-F]{64}$',
              description:
                "the device's ed25519 public key (hex, from `fetchback-agent --device-key`): " +
                'pinned now, so that only ACKs signed by it are accepted, from the first one',
            },
          },
        },
        response: {
          201: {
            type: 'object',
            required: ['device', 'agentConfig'],
            properties: { device: { $ref: 'Device#' }, agentConfig: agentConfigSchema },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { id, hardwareClass, tags, deviceKey } = request.body;
      // Hashed in the thread pool: a fleet registering at once must not stall the broker.
      const credentials = await newCredentials();
      const { device, secret } = ctx.db.transaction(() => {
        const created = ctx.devices.create({ id, hwClass: hardwareClass, tags }, credentials);
        if (deviceKey) ctx.deviceKeys.pinDeviceKey(id, fromHex(deviceKey), ctx.clock.now());
        return created;
      })();
      ctx.audit.record(actorOf(request), 'device.register', device.id, {
        hardwareClass,
        tags: device.tags,
        ...(deviceKey ? { deviceKeyId: toHex(keyId(fromHex(deviceKey))) } : {}),
      });
      ctx.events.emit('device.registered', {
        deviceId: device.id,
        hardwareClass: device.hwClass,
        tags: device.tags,
      });
      const agentConfig = {
        brokerUrl: brokerUrlFor(ctx, request),
        deviceId: device.id,
        username: device.id,
        password: secret,
        rootPublicKey: toHex(ctx.keys.rootPublicKey),
        hardwareClass: device.hwClass,
        topicPrefix: ctx.topics.prefix,
      };
      return reply.code(201).send({ device: deviceView(device), agentConfig });
    },
  );

  app.get<{ Querystring: ListQuery }>(
    '/api/v1/devices',
    {
      onRequest: requireRole('viewer'),
      schema: {
        summary: 'List devices',
        tags: ['devices'],
        security: bearerSecurity,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            class: { type: 'string', maxLength: 64 },
            tag: { type: 'array', items: { type: 'string', maxLength: 200 }, maxItems: 32 },
            state: { type: 'string', maxLength: 32 },
            status: { type: 'string', enum: ['active', 'decommissioned'] },
            ...pageQuery,
          },
        },
        response: { 200: pageOf('Device'), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const tags = Object.fromEntries((q.tag ?? []).map(parseTagPair));
      const page = ctx.devices.list({
        hwClass: q.class,
        tags,
        state: q.state,
        status: q.status,
        limit: q.limit,
        offset: q.offset,
      });
      return {
        items: page.items.map(deviceView),
        total: page.total,
        limit: q.limit,
        offset: q.offset,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/devices/:id',
    {
      onRequest: requireRole('viewer'),
      schema: {
        summary: 'Show a device with its recent assignments, ACKs and status reports',
        tags: ['devices'],
        security: bearerSecurity,
        params: idParams,
        response: {
          200: {
            type: 'object',
            required: ['device', 'deviceKey', 'history'],
            properties: {
              device: { $ref: 'Device#' },
              deviceKey: deviceKeySchema,
              history: historySchema,
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const device = ctx.devices.require(request.params.id);
      return {
        device: deviceView(device),
        deviceKey: deviceKeyView(ctx, device.id),
        history: historyOf(ctx, device.id),
      };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/api/v1/devices/:id/reset-key',
    {
      onRequest: requireRole('operator'),
      schema: {
        summary: "Forget the device's pinned key; its next signed ACK pins a new one",
        tags: ['devices'],
        security: bearerSecurity,
        params: idParams,
        response: {
          200: {
            type: 'object',
            required: ['device', 'forgotten'],
            properties: {
              device: { $ref: 'Device#' },
              forgotten: { type: 'boolean', description: 'a key was pinned and is forgotten' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const device = ctx.devices.require(request.params.id);
      const forgotten = ctx.deviceKeys.forgetDeviceKey(device.id);
      ctx.audit.record(actorOf(request), 'device.reset-key', device.id, { forgotten });
      return { device: deviceView(device), forgotten };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/devices/:id',
    {
      onRequest: requireRole('operator'),
      schema: {
        summary: 'Decommission a device: revoke its credentials and drop its connection',
        tags: ['devices'],
        security: bearerSecurity,
        params: idParams,
        response: {
          200: {
            type: 'object',
            required: ['device'],
            properties: { device: { $ref: 'Device#' } },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const device = ctx.devices.decommission(request.params.id);
      ctx.bus.disconnectDevice(device.id);
      ctx.audit.record(actorOf(request), 'device.decommission', device.id);
      ctx.events.emit('device.decommissioned', { deviceId: device.id });
      return { device: deviceView(device) };
    },
  );
}
