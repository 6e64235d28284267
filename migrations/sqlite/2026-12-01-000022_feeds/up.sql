-- The keys other ESPs' webhooks are checked with, one per account and feed (mailgun: the
-- webhook signing key; sendgrid: the verification public key, base64 DER; postmark: the
-- secret its webhook URL or basic auth carries).
CREATE TABLE feed_secrets (
    account_id BIGINT NOT NULL,
    feed TEXT NOT NULL,
    secret TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, feed)
);

-- Tokens and signatures of feed posts seen recently, so a replayed post is not applied twice.
CREATE TABLE feed_replays (
    account_id BIGINT NOT NULL,
    feed TEXT NOT NULL,
    token TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, feed, token)
);

-- Where `ingest-postfix --follow` stopped reading a log file: its inode and byte offset.
CREATE TABLE postfix_positions (
    account_id BIGINT NOT NULL,
    path TEXT NOT NULL,
    inode BIGINT NOT NULL,
    byte_offset BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, path)
);
