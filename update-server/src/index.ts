/**
 * `@fetchback/update-server`: the server's public API. Start a server with
 * `startServer(resolveConfig(...))`; talk to one with `FetchbackClient`.
 */
export { type RouteModule, buildApi, CORE_ROUTES } from './api/app.js';
export { actorOf, requireRole, type Principal } from './api/auth.js';
export { problem, type Problem, PROBLEM_CONTENT_TYPE } from './api/errors.js';
export { FetchbackClient, type ClientOptions } from './cli/client.js';
export { DEFAULT_URL } from './cli/common.js';
export { type Clock, systemClock } from './clock.js';
export {
  type ConfigSources,
  type LogLevel,
  OPTION_SPECS,
  type ServerOptions,
  describeConfig,
  resolveConfig,
} from './config.js';
export type {
  AssignmentPort,
  AssignOptions,
  BusPort,
  ServerContext,
  ServerMetrics,
} from './context.js';
export { ServerEvents, type ServerEventMap } from './events.js';
export { ImageStore } from './images/image-store.js';
export { ingestRelease, type ReleaseInput } from './images/ingest.js';
export {
  type ServerKeys,
  initKeys,
  keysExist,
  loadServerKeys,
  renewCertificates,
} from './keys/index.js';
export { ALL_MIGRATIONS, type RunningServer, type StartDeps, startServer } from './server.js';
export { AuditLog, type AuditEntry, type AuditFilter } from './store/audit.js';
export { type Db, openDatabase } from './store/db.js';
export { DeviceRepository, type DeviceFilter, type DeviceRecord } from './store/devices.js';
export { type Migration, runMigrations } from './store/migrate.js';
export { coreMigrations } from './store/migrations.js';
export { ReleaseRepository, type ReleaseRecord } from './store/releases.js';
export { ROLES, type Role, TokenStore, type TokenRecord } from './store/tokens.js';
