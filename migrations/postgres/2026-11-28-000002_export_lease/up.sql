-- A running export job's lease: the worker running it writes the time with its progress. Several
-- servers share the queue, so a job is taken back only when its lease has run out, never merely
-- because some server (re)started.
ALTER TABLE export_jobs ADD COLUMN heartbeat_at BIGINT;
