/**
 * Every error reply is `application/problem+json` (RFC 9457) with a stable code from the
 * catalogue: errors we throw, fastify's own (malformed JSON, body too large, schema
 * validation), unknown routes, and anything unexpected (500, details logged, not sent).
 */
import {
  ERROR_CATALOGUE,
  type ErrorCode,
  type FetchbackError,
  isFetchbackError,
} from '@fetchback/shared';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
}

/** JSON schema of a problem reply, registered as `Problem`. */
export const problemSchema = {
  $id: 'Problem',
  type: 'object',
  description: 'RFC 9457 problem details with a stable Fetchback error code',
  required: ['type', 'title', 'status', 'code', 'detail'],
  properties: {
    type: { type: 'string', description: 'urn:fetchback:error:<code>' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string', description: 'stable code from docs/errors.md' },
    detail: { type: 'string' },
  },
} as const;

/** Response schemas every route declares for its error replies. */
export const errorResponses = {
  '4xx': { $ref: 'Problem#' },
  '5xx': { $ref: 'Problem#' },
} as const;

/** Fastify's own error codes and the catalogue code each becomes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'FB_ERR_BODY_MALFORMED',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'FB_ERR_BODY_MALFORMED',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'FB_ERR_BODY_MALFORMED',
  FST_ERR_CTP_BODY_TOO_LARGE: 'FB_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'FB_ERR_MEDIA_TYPE',
};

/** Codes for other 4xx statuses fastify or a plugin may raise. */
const STATUS_CODES: Record<number, ErrorCode> = {
  400: 'FB_ERR_BODY_MALFORMED',
  401: 'FB_ERR_UNAUTHORIZED',
  403: 'FB_ERR_FORBIDDEN',
  404: 'FB_ERR_NOT_FOUND',
  413: 'FB_ERR_BODY_TOO_LARGE',
  415: 'FB_ERR_MEDIA_TYPE',
};

export function problem(code: ErrorCode, detail: string, status?: number): Problem {
  const known = ERROR_CATALOGUE[code];
  return {
    type: `urn:fetchback:error:${code}`,
    title: known.message,
    status: status ?? known.http,
    code,
    detail,
  };
}

function fromFetchbackError(err: FetchbackError): Problem {
  return problem(err.code, err.message, err.httpStatus);
}

/** The problem for any thrown value; `undefined` status means an unexpected (500) error. */
export function toProblem(err: unknown): { problem: Problem; unexpected: boolean } {
  if (isFetchbackError(err)) return { problem: fromFetchbackError(err), unexpected: false };
  const fastifyErr = err as Partial<FastifyError>;
  if (fastifyErr.validation) {
    return { problem: problem('FB_ERR_VALIDATION', String(fastifyErr.message)), unexpected: false };
  }
  const mapped = fastifyErr.code ? FASTIFY_CODES[fastifyErr.code] : undefined;
  const status = fastifyErr.statusCode;
  if (mapped)
    return { problem: problem(mapped, String(fastifyErr.message), status), unexpected: false };
  if (status !== undefined && status >= 400 && status < 500) {
    const code = STATUS_CODES[status] ?? 'FB_ERR_VALIDATION';
    return { problem: problem(code, String(fastifyErr.message), status), unexpected: false };
  }
  return {
    problem: problem('FB_ERR_INTERNAL', 'internal error; see the server log'),
    unexpected: true,
  };
}

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

/** Installs the error and not-found handlers on the root instance. */
export function installErrorHandling(app: FastifyInstance): void {
  app.addSchema(problemSchema);
  app.setErrorHandler((err, request, reply) => {
    const { problem: body, unexpected } = toProblem(err);
    if (unexpected) request.log.error({ err }, 'request failed');
    else request.log.debug({ code: body.code, status: body.status }, 'request refused');
    return sendProblem(reply, body);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem('FB_ERR_NOT_FOUND', `no route ${request.method} ${request.url}`)),
  );
}
