"""The journal's SQLite schema: seed 004's tables (section 4.1), with what syncing needs.

Differences from the seed, and why:

- task_wal gains ``worker``, ``queue`` (task_history has them), ``rank`` (see rows.py),
  ``version`` / ``synced_version`` (a row is pending while version > synced_version, so a row
  that changes during a sync is sent again instead of being marked done) and ``updated_at``.
  Times are REAL epoch seconds instead of INTEGER, to keep sub-second latencies.
- sync_log has one row per sync run (status, rows, error) instead of one per task: logging each
  task would double the journal's writes.
- Both caches are created (file_cache for storage workers, gpt_cache for AI workers), so every
  worker's journal has the same shape.
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS task_wal (
    task_id TEXT PRIMARY KEY,
    task_name TEXT NOT NULL,
    payload JSON,
    status TEXT DEFAULT 'pending',  -- pending, running, retrying, completed, failed
    rabbitmq_delivery_tag INTEGER,
    created_at REAL,
    started_at REAL,
    completed_at REAL,
    error TEXT,
    retry_count INTEGER DEFAULT 0,
    worker TEXT,
    queue TEXT,
    rank INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1,
    synced_version INTEGER NOT NULL DEFAULT 0,
    updated_at REAL
);
CREATE INDEX IF NOT EXISTS idx_task_status ON task_wal(status, created_at);
CREATE INDEX IF NOT EXISTS idx_task_unsynced ON task_wal(updated_at)
    WHERE version > synced_version;

CREATE TABLE IF NOT EXISTS sync_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT,  -- the seed's per-task column; NULL for a whole sync run
    synced_at REAL,
    status TEXT,  -- success, failed
    error TEXT,
    rows INTEGER NOT NULL DEFAULT 0,
    duration REAL
);

CREATE TABLE IF NOT EXISTS file_cache (
    key TEXT PRIMARY KEY,
    file_path TEXT,
    size INTEGER,
    created_at INTEGER,
    ttl INTEGER
);

CREATE TABLE IF NOT EXISTS gpt_cache (
    cache_key TEXT PRIMARY KEY,
    prompt TEXT,
    response JSON,
    model TEXT,
    created_at INTEGER,
    ttl INTEGER DEFAULT 3600
);
CREATE INDEX IF NOT EXISTS idx_gpt_cache_ttl ON gpt_cache(created_at + ttl);

CREATE TABLE IF NOT EXISTS retry_queue (
    task_id TEXT PRIMARY KEY,
    retry_count INTEGER,
    next_retry_at INTEGER,
    error TEXT,
    payload JSON
);

CREATE TABLE IF NOT EXISTS rate_limit_log (
    timestamp INTEGER,
    api TEXT,
    count INTEGER
);
"""

TABLES = ("task_wal", "sync_log", "file_cache", "gpt_cache", "retry_queue", "rate_limit_log")

# One statement per event. The incoming status wins only when its rank is not lower; the
# first payload, the earliest creation time and the last error are kept whatever the order
# of arrival.
UPSERT = """
INSERT INTO task_wal (task_id, task_name, payload, status, created_at, started_at,
                      completed_at, error, retry_count, worker, queue, rank, updated_at)
VALUES (:task_id, :task_name, :payload, :status, :created_at, :started_at,
        :completed_at, :error, :retry_count, :worker, :queue, :rank, :updated_at)
ON CONFLICT(task_id) DO UPDATE SET
    payload = COALESCE(task_wal.payload, excluded.payload),
    created_at = COALESCE(MIN(task_wal.created_at, excluded.created_at),
                          task_wal.created_at, excluded.created_at),
    started_at = CASE WHEN excluded.rank >= task_wal.rank
                      THEN COALESCE(excluded.started_at, task_wal.started_at)
                      ELSE task_wal.started_at END,
    completed_at = CASE WHEN excluded.rank >= task_wal.rank
                        THEN excluded.completed_at ELSE task_wal.completed_at END,
    error = CASE WHEN excluded.rank >= task_wal.rank
                 THEN COALESCE(excluded.error, task_wal.error) ELSE task_wal.error END,
    status = CASE WHEN excluded.rank >= task_wal.rank
                  THEN excluded.status ELSE task_wal.status END,
    retry_count = MAX(task_wal.retry_count, excluded.retry_count),
    worker = CASE WHEN excluded.rank >= task_wal.rank
                  THEN COALESCE(excluded.worker, task_wal.worker) ELSE task_wal.worker END,
    queue = COALESCE(task_wal.queue, excluded.queue),
    rank = MAX(task_wal.rank, excluded.rank),
    version = task_wal.version + 1,
    updated_at = excluded.updated_at
"""
