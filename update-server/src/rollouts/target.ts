/**
 * Resolves a rollout's target against the `devices` table (owned by the core store; read here,
 * never written). A device qualifies when it is active, of the release's hardware class, and
 * meets every criterion the target gives.
 */
import { createHash } from 'node:crypto';

import type Database from 'better-sqlite3';

import { fbError } from '@fetchback/shared';

import type { RolloutTarget } from './model.js';

export interface ReleaseInfo {
  readonly id: string;
  readonly version: string;
  readonly hwClass: string;
}

export interface TargetDevice {
  readonly id: string;
  readonly hwClass: string;
  readonly status: string;
  readonly tags: Record<string, string>;
  readonly currentVersion: string | null;
}

interface DeviceRow {
  id: string;
  hw_class: string;
  status: string;
  tags: string;
  current_version: string | null;
}

function toDevice(row: DeviceRow): TargetDevice {
  let tags: Record<string, string> = {};
  try {
    tags = JSON.parse(row.tags) as Record<string, string>;
  } catch {
    // A device with unreadable tags matches no tag criterion; it is still targetable by id.
  }
  return {
    id: row.id,
    hwClass: row.hw_class,
    status: row.status,
    tags,
    currentVersion: row.current_version,
  };
}

/**
 * The release a rollout deploys.
 *
 * @throws FetchbackError `FB_ERR_RELEASE_UNKNOWN`.
 */
export function loadRelease(db: Database.Database, releaseId: string): ReleaseInfo {
  const row = db
    .prepare('SELECT id, version, hw_class FROM releases WHERE id = ?')
    .get(releaseId) as { id: string; version: string; hw_class: string } | undefined;
  if (row === undefined) throw fbError('FB_ERR_RELEASE_UNKNOWN', releaseId, { releaseId });
  return { id: row.id, version: row.version, hwClass: row.hw_class };
}

/** One device, or undefined. */
export function loadDevice(db: Database.Database, deviceId: string): TargetDevice | undefined {
  const row = db
    .prepare('SELECT id, hw_class, status, tags, current_version FROM devices WHERE id = ?')
    .get(deviceId) as DeviceRow | undefined;
  return row === undefined ? undefined : toDevice(row);
}

/** True when `device` is one the rollout of `release` to `target` should update. */
export function matchesTarget(
  device: TargetDevice,
  target: RolloutTarget,
  release: ReleaseInfo,
): boolean {
  if (device.status !== 'active' || device.hwClass !== release.hwClass) return false;
  if (target.hwClass !== undefined && device.hwClass !== target.hwClass) return false;
  if (target.deviceIds !== undefined && !target.deviceIds.includes(device.id)) return false;
  if (target.currentVersion !== undefined && device.currentVersion !== target.currentVersion) {
    return false;
  }
  for (const [key, value] of Object.entries(target.tags ?? {})) {
    if (device.tags[key] !== value) return false;
  }
  return true;
}

/** Refuses explicitly named devices that can never be updated with this release. */
function checkNamedDevices(
  db: Database.Database,
  ids: readonly string[],
  release: ReleaseInfo,
): void {
  const found = new Map(
    ids.flatMap((id) => {
      const d = loadDevice(db, id);
      return d === undefined ? [] : [[id, d] as const];
    }),
  );
  const unknown = ids.filter((id) => !found.has(id));
  if (unknown.length > 0) {
    throw fbError('FB_ERR_DEVICE_UNKNOWN', unknown.slice(0, 10).join(', '), { deviceIds: unknown });
  }
  const gone = ids.filter((id) => found.get(id)?.status !== 'active');
  if (gone.length > 0) {
    throw fbError('FB_ERR_DEVICE_DECOMMISSIONED', gone.slice(0, 10).join(', '), {
      deviceIds: gone,
    });
  }
  const wrong = ids.filter((id) => found.get(id)?.hwClass !== release.hwClass);
  if (wrong.length > 0) {
    throw fbError('FB_ERR_WRONG_HW_CLASS', `release is for ${release.hwClass}`, {
      deviceIds: wrong,
    });
  }
}

/**
 * The ids of every device the target selects, in the rollout's wave order: a hash of rollout
 * and device id, so each wave samples the whole fleet rather than one corner of the id space,
 * and the order is the same after a restart.
 *
 * @throws FetchbackError `FB_ERR_WRONG_HW_CLASS` when the target names another class than the
 *   release's, `FB_ERR_DEVICE_UNKNOWN` / `FB_ERR_DEVICE_DECOMMISSIONED` for named devices,
 *   `FB_ERR_ROLLOUT_EMPTY` when nothing matches.
 */
export function resolveTarget(
  db: Database.Database,
  rolloutId: string,
  target: RolloutTarget,
  release: ReleaseInfo,
): string[] {
  if (target.hwClass !== undefined && target.hwClass !== release.hwClass) {
    throw fbError('FB_ERR_WRONG_HW_CLASS', `target ${target.hwClass}, release ${release.hwClass}`);
  }
  if (target.deviceIds !== undefined) checkNamedDevices(db, target.deviceIds, release);
  const rows = db
    .prepare(
      `SELECT id, hw_class, status, tags, current_version FROM devices
       WHERE status = 'active' AND hw_class = ?`,
    )
    .all(release.hwClass) as DeviceRow[];
  const ids = rows
    .map(toDevice)
    .filter((d) => matchesTarget(d, target, release))
    .map((d) => d.id);
  if (ids.length === 0) throw fbError('FB_ERR_ROLLOUT_EMPTY', undefined, { target });
  return orderForWaves(rolloutId, ids);
}

/** Deterministic pseudo-random order of `ids` for one rollout. */
export function orderForWaves(rolloutId: string, ids: readonly string[]): string[] {
  const key = (id: string): string =>
    createHash('sha256').update(rolloutId).update('\0').update(id).digest('hex');
  return ids
    .map((id) => ({ id, k: key(id) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((e) => e.id);
}

function tableExists(db: Database.Database, name: string): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
    undefined
  );
}

/**
 * The release `device` ran before a rollout of `release`: the release of its reported version
 * and class, or else the release of its last committed assignment. Null when neither is known
 * (such a device cannot be rolled back by the fleet) or when it already runs `release`.
 */
export function previousReleaseId(
  db: Database.Database,
  device: TargetDevice,
  release: ReleaseInfo,
): string | null {
  const byVersion =
    device.currentVersion === null
      ? undefined
      : (db
          .prepare(
            `SELECT id FROM releases WHERE version = ? AND hw_class = ?
             ORDER BY created_at DESC, id LIMIT 1`,
          )
          .get(device.currentVersion, device.hwClass) as { id: string } | undefined);
  const found = byVersion?.id ?? lastCommittedRelease(db, device.id);
  return found === undefined || found === release.id ? null : found;
}

function lastCommittedRelease(db: Database.Database, deviceId: string): string | undefined {
  if (!tableExists(db, 'acks') || !tableExists(db, 'assignments')) return undefined;
  const row = db
    .prepare(
      `SELECT a.release_id AS id FROM acks k
       JOIN assignments a ON a.device_id = k.device_id AND a.seq = k.seq
       WHERE k.device_id = ? AND k.step = 'committed' ORDER BY k.seq DESC LIMIT 1`,
    )
    .get(deviceId) as { id: string } | undefined;
  return row?.id;
}
