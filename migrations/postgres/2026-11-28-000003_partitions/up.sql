-- Monthly partitions for the tables that grow with mail volume: messages and their tags by
-- request time, the event log and opens/clicks by the time they happened. Retention then drops
-- whole months (src/store/partitions.rs) instead of deleting millions of rows.
--
-- What partitioning costs, and how it is made up for:
-- * A unique index must hold the partition key, so an emailId is unique per request time,
--   not per account. Ingestion looks every emailId up before it creates a message, so a
--   second request for it is a duplicate; only two requests for one emailId with different
--   times, in two batches committing at the same instant, could both be stored.
-- * A foreign key to a partitioned table must name the partition key too, so the event log,
--   tags, contents and send logs no longer point at messages with one. Retention deletes a
--   month's contents and send logs before it drops the month's messages.

-- The month partition of `parent` that holds the instant `at_ms` (UTC), created unless it
-- exists. It is made as a table of its own and then attached: attaching locks the parent only
-- against other schema changes, while CREATE TABLE ... PARTITION OF would make every reader
-- and writer of the parent wait.
CREATE FUNCTION mailtrail_month_partition(parent TEXT, at_ms BIGINT) RETURNS TEXT
LANGUAGE plpgsql AS $$
DECLARE
    first TIMESTAMP := date_trunc('month', to_timestamp(at_ms / 1000.0) AT TIME ZONE 'UTC');
    name TEXT := parent || '_p' || to_char(first, 'YYYYMM');
    from_ms BIGINT := (extract(epoch FROM first AT TIME ZONE 'UTC') * 1000)::BIGINT;
    to_ms BIGINT := (extract(epoch FROM (first + INTERVAL '1 month') AT TIME ZONE 'UTC') * 1000)::BIGINT;
BEGIN
    IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RETURN name;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name, parent);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                   parent, name, from_ms, to_ms);
    RETURN name;
EXCEPTION WHEN duplicate_table OR unique_violation THEN
    -- Another server created it at the same moment.
    RETURN name;
END;
$$;

-- Every month partition of `parent` from the month of `from_ms` to that of `to_ms`.
CREATE FUNCTION mailtrail_month_partitions(parent TEXT, from_ms BIGINT, to_ms BIGINT) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
    month TIMESTAMP := date_trunc('month', to_timestamp(from_ms / 1000.0) AT TIME ZONE 'UTC');
    made INTEGER := 0;
BEGIN
    WHILE (extract(epoch FROM month AT TIME ZONE 'UTC') * 1000)::BIGINT <= to_ms LOOP
        PERFORM mailtrail_month_partition(parent, (extract(epoch FROM month AT TIME ZONE 'UTC') * 1000)::BIGINT);
        made := made + 1;
        month := month + INTERVAL '1 month';
    END LOOP;
    RETURN made;
END;
$$;

ALTER TABLE message_events DROP CONSTRAINT message_events_message_id_fkey;
ALTER TABLE message_tags DROP CONSTRAINT message_tags_message_id_fkey;
ALTER TABLE message_contents DROP CONSTRAINT message_contents_message_id_fkey;
ALTER TABLE send_logs DROP CONSTRAINT send_logs_message_id_fkey;

-- Each table is renamed out of the way, made again partitioned with the same columns, filled,
-- and dropped; the indexes are built after the rows are in. The id sequences carry over.
ALTER TABLE messages RENAME TO messages_old;
ALTER SEQUENCE messages_id_seq OWNED BY NONE;
CREATE TABLE messages (
    id BIGINT NOT NULL DEFAULT nextval('messages_id_seq'),
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    email_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    api_user TEXT NOT NULL,
    mail_type SMALLINT NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    sender TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    status SMALLINT NOT NULL,
    reason SMALLINT,
    smtp_reply TEXT,
    rule TEXT,
    requested_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
) PARTITION BY RANGE (requested_at);
ALTER SEQUENCE messages_id_seq OWNED BY messages.id;

ALTER TABLE message_tags RENAME TO message_tags_old;
CREATE TABLE message_tags (
    message_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    tag TEXT NOT NULL,
    requested_at BIGINT NOT NULL
) PARTITION BY RANGE (requested_at);

ALTER TABLE message_events RENAME TO message_events_old;
ALTER SEQUENCE message_events_id_seq OWNED BY NONE;
CREATE TABLE message_events (
    id BIGINT NOT NULL DEFAULT nextval('message_events_id_seq'),
    account_id BIGINT NOT NULL,
    message_id BIGINT,
    email_id TEXT NOT NULL,
    event_id TEXT,
    kind TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    smtp_reply TEXT,
    mx TEXT,
    attempt INTEGER,
    reason SMALLINT,
    detail TEXT,
    received_at BIGINT NOT NULL
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE message_events_id_seq OWNED BY message_events.id;

ALTER TABLE tracking_events RENAME TO tracking_events_old;
ALTER SEQUENCE tracking_events_id_seq OWNED BY NONE;
CREATE TABLE tracking_events (
    id BIGINT NOT NULL DEFAULT nextval('tracking_events_id_seq'),
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    message_id BIGINT,
    email_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    api_user TEXT NOT NULL,
    tag TEXT,
    kind SMALLINT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    ip TEXT,
    user_agent TEXT,
    occurred_at BIGINT NOT NULL
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE tracking_events_id_seq OWNED BY tracking_events.id;

-- The months the rows already cover, and this month and the next three.
SELECT mailtrail_month_partitions(t.parent,
           LEAST(t.low, (extract(epoch FROM now()) * 1000)::BIGINT),
           GREATEST(t.high, (extract(epoch FROM now() + INTERVAL '3 months') * 1000)::BIGINT))
FROM (
    SELECT 'messages' AS parent, MIN(requested_at) AS low, MAX(requested_at) AS high FROM messages_old
    UNION ALL
    SELECT 'message_tags', MIN(requested_at), MAX(requested_at) FROM message_tags_old
    UNION ALL
    SELECT 'message_events', MIN(occurred_at), MAX(occurred_at) FROM message_events_old
    UNION ALL
    SELECT 'tracking_events', MIN(occurred_at), MAX(occurred_at) FROM tracking_events_old
) AS t;

INSERT INTO messages SELECT * FROM messages_old;
INSERT INTO message_tags SELECT * FROM message_tags_old;
INSERT INTO message_events SELECT * FROM message_events_old;
INSERT INTO tracking_events SELECT * FROM tracking_events_old;
DROP TABLE messages_old, message_tags_old, message_events_old, tracking_events_old;

ALTER TABLE messages ADD PRIMARY KEY (id, requested_at);
CREATE UNIQUE INDEX messages_email_id ON messages (account_id, email_id, requested_at);
CREATE INDEX messages_requested ON messages (account_id, requested_at DESC, id DESC);
CREATE INDEX messages_status ON messages (account_id, status, requested_at DESC, id DESC);
CREATE INDEX messages_status_reason ON messages (account_id, status, reason, requested_at DESC, id DESC);
CREATE INDEX messages_recipient ON messages (account_id, recipient, requested_at DESC, id DESC);
CREATE INDEX messages_api_user ON messages (account_id, api_user, requested_at DESC, id DESC);
CREATE INDEX messages_mail_type ON messages (account_id, mail_type, requested_at DESC, id DESC);

ALTER TABLE message_tags ADD PRIMARY KEY (message_id, tag, requested_at);
CREATE INDEX message_tags_filter ON message_tags (account_id, tag, requested_at DESC, message_id DESC);

ALTER TABLE message_events ADD PRIMARY KEY (id, occurred_at);
CREATE INDEX message_events_message ON message_events (message_id, occurred_at);
CREATE INDEX message_events_waiting ON message_events (account_id, email_id) WHERE message_id IS NULL;
CREATE UNIQUE INDEX message_events_event_id ON message_events (account_id, event_id, occurred_at) WHERE event_id IS NOT NULL;

ALTER TABLE tracking_events ADD PRIMARY KEY (id, occurred_at);
CREATE INDEX tracking_events_time ON tracking_events (account_id, occurred_at DESC, id DESC);
CREATE INDEX tracking_events_kind ON tracking_events (account_id, kind, occurred_at DESC, id DESC);
CREATE INDEX tracking_events_recipient ON tracking_events (account_id, recipient, occurred_at DESC, id DESC);
CREATE UNIQUE INDEX tracking_events_once ON tracking_events (account_id, email_id, kind, occurred_at, url);

-- Autovacuum never analyses a partitioned parent; give the planner statistics from the start.
ANALYZE messages, message_tags, message_events, tracking_events;
