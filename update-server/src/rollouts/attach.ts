/**
 * Wires the rollout engine into a running server: builds it from the server context, starts
 * its timer, and makes it findable by the rollout route modules, which receive only the context.
 */
import { fbError } from '@fetchback/shared';

import type { ServerContext } from '../context.js';
import { RolloutEngine } from './engine.js';

const engines = new WeakMap<object, RolloutEngine>();

/** The subset of the server context the engine is built from. */
export type RolloutContext = Pick<
  ServerContext,
  'db' | 'assignments' | 'events' | 'clock' | 'log' | 'audit' | 'metrics'
>;

/**
 * Builds the engine for `ctx`, registers it for the routes and starts its timer; a second call
 * returns the same engine. Call after delivery and before the API serves; `close()` the engine
 * before the database closes.
 */
export function attachRollouts(ctx: RolloutContext, opts: { tickMs?: number } = {}): RolloutEngine {
  const attached = engines.get(ctx);
  if (attached !== undefined) return attached;
  const engine = new RolloutEngine({
    db: ctx.db,
    assignments: ctx.assignments,
    events: ctx.events,
    clock: ctx.clock,
    log: ctx.log,
    audit: ctx.audit,
    registry: ctx.metrics.registry,
  });
  engines.set(ctx, engine);
  engine.startTimer(opts.tickMs);
  return engine;
}

/**
 * The engine attached to `ctx`.
 *
 * @throws FetchbackError `FB_ERR_INTERNAL` when `attachRollouts` was not called.
 */
export function rolloutEngineOf(ctx: object): RolloutEngine {
  const engine = engines.get(ctx);
  if (engine === undefined)
    throw fbError('FB_ERR_INTERNAL', 'rollout engine not attached to this server');
  return engine;
}
