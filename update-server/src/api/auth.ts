/**
 * Bearer-token authentication and role checks. A global `onRequest` hook resolves the token (if
 * any) to a principal; `requireRole` refuses with 401 when there is none and 403 when its role
 * is below the one needed (admin > operator > viewer; viewers may only read).
 */
import { fbError } from '@fetchback/shared';
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';

import { type Role, type TokenStore, roleAtLeast } from '../store/tokens.js';

export interface Principal {
  tokenId: string;
  /** The token's name: the actor in the audit log. */
  name: string;
  role: Role;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** Resolves `Authorization: Bearer <token>` on every request; never refuses by itself. */
export function installAuth(app: FastifyInstance, tokens: TokenStore): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const match = BEARER.exec(request.headers.authorization ?? '');
    const record = match?.[1] ? tokens.verify(match[1]) : undefined;
    request.principal = record
      ? { tokenId: record.id, name: record.name, role: record.role }
      : null;
  });
}

/**
 * A hook (use as `onRequest`, so it runs before the body is read, or as `preHandler`) that
 * lets through only principals holding at least `role`.
 */
export function requireRole(role: Role): onRequestAsyncHookHandler {
  return async (request: FastifyRequest) => {
    const principal = request.principal;
    if (!principal) throw fbError('FB_ERR_UNAUTHORIZED', 'send Authorization: Bearer <token>');
    if (!roleAtLeast(principal.role, role)) {
      throw fbError('FB_ERR_FORBIDDEN', `role ${principal.role} may not do this; needs ${role}`);
    }
  };
}

/** The audit-log actor of an authenticated request. */
export function actorOf(request: FastifyRequest): string {
  return request.principal?.name ?? 'anonymous';
}

/** OpenAPI security requirement of authenticated routes. */
export const bearerSecurity = [{ bearerAuth: [] }];
