/**
 * The HTTP API: fastify with the OpenAPI document at `/api/v1/openapi.json`, browsable docs at
 * `/docs`, bearer-token auth, problem+json errors, then the route modules, each in its own
 * plugin scope.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';

import type { ServerContext } from '../context.js';
import { assignmentsRoutes } from './assignments.js';
import { installAuth } from './auth.js';
import { devicesRoutes } from './devices.js';
import { installErrorHandling } from './errors.js';
import { healthRoutes } from './health.js';
import { metricsRoutes } from './metrics.js';
import { releasesRoutes } from './releases.js';
import { registerSchemas } from './schemas.js';
import { tokensRoutes } from './tokens.js';

/** A route module: `export async function xxxRoutes(app, ctx)`. */
export type RouteModule = (app: FastifyInstance, ctx: ServerContext) => Promise<void>;

/** The route modules of the core server. */
export const CORE_ROUTES: readonly RouteModule[] = [
  healthRoutes,
  metricsRoutes,
  devicesRoutes,
  releasesRoutes,
  assignmentsRoutes,
  tokensRoutes,
];

async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Fetchback update server API',
        version: '1',
        description:
          'Devices, releases, assignments, rollouts and tokens. Errors are RFC 9457 ' +
          'problem+json with a stable code (docs/errors.md).',
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

/**
 * Builds the API (not listening). `extraRoutes` are registered after the core ones, each in its
 * own scope (the rollout engine's routes, for instance).
 */
export async function buildApi(
  ctx: ServerContext,
  extraRoutes: readonly RouteModule[] = [],
): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.log.child({ component: 'api' }) as FastifyBaseLogger,
    // Requests are logged once, at debug, by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.options.apiBodyLimitBytes,
    // Unknown fields are refused rather than silently dropped, so typos surface as 400s.
    ajv: { customOptions: { removeAdditional: false } },
  });
  installErrorHandling(app);
  registerSchemas(app);
  installAuth(app, ctx.tokens);
  await registerDocs(app);
  app.addHook('onResponse', async (request, reply) => {
    request.log.debug(
      { method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime },
      'request served',
    );
  });
  for (const routes of [...CORE_ROUTES, ...extraRoutes]) {
    await app.register(async (scope) => routes(scope, ctx));
  }
  await app.ready();
  return app;
}
