/**
 * Releases: a streamed raw upload (`application/octet-stream`) that is hashed, stored and signed
 * without ever being held in memory; list; show.
 */
import type { Readable } from 'node:stream';

import { fbError } from '@fetchback/shared';
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context.js';
import { ingestRelease } from '../images/ingest.js';
import { actorOf, bearerSecurity, requireRole } from './auth.js';
import { errorResponses } from './errors.js';
import { pageOf, pageQuery, releaseView } from './schemas.js';

/** Release name used when the upload names none. */
export const DEFAULT_RELEASE_NAME = 'firmware';

interface UploadQuery {
  name: string;
  version: string;
  class: string;
  securityVersion: number;
}

interface ListQuery {
  name?: string;
  class?: string;
  limit: number;
  offset: number;
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Refuses an upload whose declared length is over the cap before reading a byte of it. */
function checkDeclaredLength(header: string | undefined, maxImageBytes: number): void {
  if (header === undefined) return;
  const declared = Number(header);
  if (Number.isFinite(declared) && declared > maxImageBytes) {
    throw fbError('FB_ERR_UPLOAD_TOO_LARGE', `${declared} bytes declared, cap ${maxImageBytes}`);
  }
}

export async function releasesRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  // Hand the request stream to the route untouched: the image is never buffered. Scoped to this
  // plugin, so other routes do not accept raw bodies.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => {
    done(null, payload);
  });

  app.post<{ Querystring: UploadQuery; Body: Readable }>(
    '/api/v1/releases',
    {
      onRequest: requireRole('operator'),
      bodyLimit: ctx.options.maxImageBytes,
      schema: {
        summary: 'Create a release from a raw image upload (application/octet-stream)',
        tags: ['releases'],
        security: bearerSecurity,
        querystring: {
          type: 'object',
          required: ['version', 'class'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 64, default: DEFAULT_RELEASE_NAME },
            version: { type: 'string', minLength: 1, maxLength: 64 },
            class: { type: 'string', minLength: 1, maxLength: 64 },
            securityVersion: { type: 'integer', minimum: 0, maximum: 4294967295, default: 0 },
          },
        },
        consumes: ['application/octet-stream'],
        response: { 201: { $ref: 'Release#' }, ...errorResponses },
      },
      preValidation: async (request) => {
        if (mediaType(request.headers['content-type']) !== 'application/octet-stream') {
          throw fbError('FB_ERR_MEDIA_TYPE', 'send the image as application/octet-stream');
        }
        checkDeclaredLength(request.headers['content-length'], ctx.options.maxImageBytes);
      },
    },
    async (request, reply) => {
      const q = request.query;
      const input = {
        name: q.name,
        version: q.version,
        hwClass: q.class,
        securityVersion: q.securityVersion,
      };
      const release = await ingestRelease(
        {
          images: ctx.images,
          releases: ctx.releases,
          releaseKey: ctx.keys.releaseKey,
          clock: ctx.clock,
          maxImageBytes: ctx.options.maxImageBytes,
          chunkBytes: ctx.options.chunkBytes,
        },
        input,
        request.body,
      ).catch((err: unknown) => {
        // The client may still be sending; close the connection after the reply rather than
        // reading the rest of an upload that is refused anyway.
        reply.header('connection', 'close');
        throw err;
      });
      ctx.audit.record(actorOf(request), 'release.create', release.id, {
        name: release.name,
        version: release.version,
        hardwareClass: release.hwClass,
        size: release.size,
        imageDigest: release.imageDigest,
      });
      request.log.info({ releaseId: release.id, size: release.size }, 'release created');
      return reply.code(201).send(releaseView(release));
    },
  );

  app.get<{ Querystring: ListQuery }>(
    '/api/v1/releases',
    {
      onRequest: requireRole('viewer'),
      schema: {
        summary: 'List releases, newest first',
        tags: ['releases'],
        security: bearerSecurity,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            name: { type: 'string', maxLength: 64 },
            class: { type: 'string', maxLength: 64 },
            ...pageQuery,
          },
        },
        response: { 200: pageOf('Release'), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const page = ctx.releases.list({
        name: q.name,
        hwClass: q.class,
        limit: q.limit,
        offset: q.offset,
      });
      return {
        items: page.items.map((r) => releaseView(r)),
        total: page.total,
        limit: q.limit,
        offset: q.offset,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/releases/:id',
    {
      onRequest: requireRole('viewer'),
      schema: {
        summary: 'Show a release with its signed statement',
        tags: ['releases'],
        security: bearerSecurity,
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
        },
        response: { 200: { $ref: 'Release#' }, ...errorResponses },
      },
    },
    async (request) => releaseView(ctx.releases.require(request.params.id), true),
  );
}
