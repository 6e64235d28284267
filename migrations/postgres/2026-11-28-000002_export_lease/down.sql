ALTER TABLE export_jobs DROP COLUMN heartbeat_at;
