/**
 * The rollout engine's tables (migration versions 100-199). The engine's whole state lives here,
 * so that a restarted server continues a rollout exactly where it was.
 */
import type { Migration } from '../store/migrate.js';

export const rolloutMigrations: readonly Migration[] = Object.freeze([
  {
    version: 100,
    name: 'rollouts',
    up: `
      CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        release_id TEXT NOT NULL,
        target TEXT NOT NULL,                 -- JSON RolloutTarget
        strategy TEXT NOT NULL,               -- JSON RolloutStrategy, defaults filled in
        state TEXT NOT NULL,                  -- transitions.ts ROLLOUT_STATES
        reason TEXT,                          -- why it last paused, aborted or completed
        current_wave INTEGER NOT NULL DEFAULT 0,
        start_at INTEGER,                     -- scheduled start, Unix ms
        failure_base_failed INTEGER NOT NULL DEFAULT 0,   -- failed count at the last resume
        failure_base_terminal INTEGER NOT NULL DEFAULT 0, -- finished count at the last resume
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
      );
      CREATE INDEX rollouts_state ON rollouts(state);
      CREATE INDEX rollouts_release ON rollouts(release_id);
      CREATE INDEX rollouts_created ON rollouts(created_at, id);

      CREATE TABLE rollout_waves (
        rollout_id TEXT NOT NULL REFERENCES rollouts(id),
        wave INTEGER NOT NULL,
        size INTEGER NOT NULL,
        state TEXT NOT NULL,                  -- pending | running | soaking | succeeded
        started_at INTEGER,
        soak_started_at INTEGER,
        finished_at INTEGER,
        PRIMARY KEY (rollout_id, wave)
      );

      CREATE TABLE rollout_devices (
        rollout_id TEXT NOT NULL REFERENCES rollouts(id),
        device_id TEXT NOT NULL,
        wave INTEGER NOT NULL,
        state TEXT NOT NULL,                  -- outcomes.ts DEVICE_STATES
        attempts INTEGER NOT NULL DEFAULT 0,  -- assignments issued for this rollout's release
        assigned_seq INTEGER,                 -- sequence number of the latest assignment
        assigned_at INTEGER,
        next_attempt_at INTEGER,              -- retry_wait: not before this time
        last_code TEXT,                       -- result code of the last ACK or status report
        last_status TEXT,                     -- lifecycle state of the last status report
        previous_release_id TEXT,             -- what the device ran when it joined
        rollback_state TEXT,                  -- outcomes.ts ROLLBACK_STATES, after an abort
        rollback_seq INTEGER,
        joined_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (rollout_id, device_id)
      );
      CREATE INDEX rollout_devices_device ON rollout_devices(device_id);
      CREATE INDEX rollout_devices_state ON rollout_devices(rollout_id, state, wave);
    `,
  },
]);
