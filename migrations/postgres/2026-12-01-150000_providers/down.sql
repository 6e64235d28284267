DROP TABLE provider_domains;
DROP TABLE provider_rollup_daily;
DROP TABLE provider_rollup;
DROP INDEX messages_provider;
ALTER TABLE messages DROP COLUMN provider;
