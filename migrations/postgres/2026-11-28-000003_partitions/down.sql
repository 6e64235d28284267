-- Back to plain tables. The foreign keys come back NOT VALID: retention may have left event
-- rows whose message is gone, and they must not stop the way back.
CREATE TABLE messages_plain (LIKE messages INCLUDING DEFAULTS);
INSERT INTO messages_plain SELECT * FROM messages;
CREATE TABLE message_tags_plain (LIKE message_tags INCLUDING DEFAULTS);
INSERT INTO message_tags_plain SELECT * FROM message_tags;
CREATE TABLE message_events_plain (LIKE message_events INCLUDING DEFAULTS);
INSERT INTO message_events_plain SELECT * FROM message_events;
CREATE TABLE tracking_events_plain (LIKE tracking_events INCLUDING DEFAULTS);
INSERT INTO tracking_events_plain SELECT * FROM tracking_events;

ALTER SEQUENCE messages_id_seq OWNED BY NONE;
ALTER SEQUENCE message_events_id_seq OWNED BY NONE;
ALTER SEQUENCE tracking_events_id_seq OWNED BY NONE;
DROP TABLE messages, message_tags, message_events, tracking_events;
ALTER TABLE messages_plain RENAME TO messages;
ALTER TABLE message_tags_plain RENAME TO message_tags;
ALTER TABLE message_events_plain RENAME TO message_events;
ALTER TABLE tracking_events_plain RENAME TO tracking_events;
ALTER SEQUENCE messages_id_seq OWNED BY messages.id;
ALTER SEQUENCE message_events_id_seq OWNED BY message_events.id;
ALTER SEQUENCE tracking_events_id_seq OWNED BY tracking_events.id;

ALTER TABLE messages ADD PRIMARY KEY (id);
ALTER TABLE messages ADD FOREIGN KEY (account_id) REFERENCES accounts(id) ON DELETE CASCADE;
CREATE UNIQUE INDEX messages_email_id ON messages (account_id, email_id);
CREATE INDEX messages_requested ON messages (account_id, requested_at DESC, id DESC);
CREATE INDEX messages_status ON messages (account_id, status, requested_at DESC, id DESC);
CREATE INDEX messages_status_reason ON messages (account_id, status, reason, requested_at DESC, id DESC);
CREATE INDEX messages_recipient ON messages (account_id, recipient, requested_at DESC, id DESC);
CREATE INDEX messages_api_user ON messages (account_id, api_user, requested_at DESC, id DESC);
CREATE INDEX messages_mail_type ON messages (account_id, mail_type, requested_at DESC, id DESC);

ALTER TABLE message_tags ADD PRIMARY KEY (message_id, tag);
ALTER TABLE message_tags ADD FOREIGN KEY (message_id) REFERENCES messages(id) ON DELETE CASCADE NOT VALID;
CREATE INDEX message_tags_filter ON message_tags (account_id, tag, requested_at DESC, message_id DESC);

ALTER TABLE message_events ADD PRIMARY KEY (id);
ALTER TABLE message_events ADD FOREIGN KEY (message_id) REFERENCES messages(id) ON DELETE CASCADE NOT VALID;
CREATE INDEX message_events_message ON message_events (message_id, occurred_at);
CREATE INDEX message_events_waiting ON message_events (account_id, email_id) WHERE message_id IS NULL;
CREATE UNIQUE INDEX message_events_event_id ON message_events (account_id, event_id) WHERE event_id IS NOT NULL;

ALTER TABLE tracking_events ADD PRIMARY KEY (id);
ALTER TABLE tracking_events ADD FOREIGN KEY (account_id) REFERENCES accounts(id) ON DELETE CASCADE;
CREATE INDEX tracking_events_time ON tracking_events (account_id, occurred_at DESC, id DESC);
CREATE INDEX tracking_events_kind ON tracking_events (account_id, kind, occurred_at DESC, id DESC);
CREATE INDEX tracking_events_recipient ON tracking_events (account_id, recipient, occurred_at DESC, id DESC);
CREATE UNIQUE INDEX tracking_events_once ON tracking_events (account_id, email_id, kind, occurred_at, url);

ALTER TABLE message_contents ADD FOREIGN KEY (message_id) REFERENCES messages(id) ON DELETE CASCADE NOT VALID;
ALTER TABLE send_logs ADD FOREIGN KEY (message_id) REFERENCES messages(id) ON DELETE CASCADE NOT VALID;

DROP FUNCTION mailtrail_month_partitions(TEXT, BIGINT, BIGINT);
DROP FUNCTION mailtrail_month_partition(TEXT, BIGINT);
