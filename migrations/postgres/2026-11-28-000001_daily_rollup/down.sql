DROP INDEX message_events_waiting;
CREATE INDEX message_events_email ON message_events (account_id, email_id);
DROP TABLE status_rollup_daily;
