-- mailtrail schema (SQLite). Times are UTC milliseconds since the epoch (BIGINT).
-- Status, reason and mail type are small integer codes (see src/domain/status.rs).

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    time_zone TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    mask_addresses BOOLEAN NOT NULL DEFAULT 0,
    export_allowed BOOLEAN NOT NULL DEFAULT 1,
    splus_content BOOLEAN NOT NULL DEFAULT 0,
    splus_log BOOLEAN NOT NULL DEFAULT 0,
    webhook_app_key TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'member', 'staff')),
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);
CREATE INDEX users_account ON users (account_id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE api_users (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    key_hint TEXT NOT NULL,
    mail_type SMALLINT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    UNIQUE (account_id, name)
);

-- The narrow status row: one recipient of one request.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
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
);
CREATE UNIQUE INDEX messages_email_id ON messages (account_id, email_id);
CREATE INDEX messages_requested ON messages (account_id, requested_at DESC, id DESC);
CREATE INDEX messages_status ON messages (account_id, status, requested_at DESC, id DESC);
CREATE INDEX messages_status_reason ON messages (account_id, status, reason, requested_at DESC, id DESC);
CREATE INDEX messages_recipient ON messages (account_id, recipient, requested_at DESC, id DESC);
CREATE INDEX messages_api_user ON messages (account_id, api_user, requested_at DESC, id DESC);
CREATE INDEX messages_mail_type ON messages (account_id, mail_type, requested_at DESC, id DESC);

-- One row per tag of a message, so the tag filter has an index of its own.
CREATE TABLE message_tags (
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL,
    tag TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, tag)
);
CREATE INDEX message_tags_filter ON message_tags (account_id, tag, requested_at DESC, message_id DESC);

-- The log details of a message.
CREATE TABLE message_events (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL,
    message_id BIGINT REFERENCES messages(id) ON DELETE CASCADE,
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
);
CREATE INDEX message_events_message ON message_events (message_id, occurred_at);
CREATE INDEX message_events_email ON message_events (account_id, email_id);
CREATE UNIQUE INDEX message_events_event_id ON message_events (account_id, event_id) WHERE event_id IS NOT NULL;

-- S+ features, kept apart so the status rows stay narrow.
CREATE TABLE message_contents (
    message_id BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL,
    raw BLOB NOT NULL,
    size BIGINT NOT NULL
);
CREATE TABLE send_logs (
    message_id BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL,
    lines TEXT NOT NULL
);

-- Opens (kind 1) and clicks (kind 2), SendCloud's trackType.
CREATE TABLE tracking_events (
    id INTEGER PRIMARY KEY,
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
);
CREATE INDEX tracking_events_time ON tracking_events (account_id, occurred_at DESC, id DESC);
CREATE INDEX tracking_events_kind ON tracking_events (account_id, kind, occurred_at DESC, id DESC);
CREATE INDEX tracking_events_recipient ON tracking_events (account_id, recipient, occurred_at DESC, id DESC);
CREATE UNIQUE INDEX tracking_events_once ON tracking_events (account_id, email_id, kind, occurred_at, url);

CREATE TABLE bounces (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    reason_text TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    email_id TEXT,
    bounced_at BIGINT NOT NULL,
    bounce_count INTEGER NOT NULL DEFAULT 1,
    expires_at BIGINT NOT NULL,
    UNIQUE (account_id, address)
);
CREATE INDEX bounces_time ON bounces (account_id, bounced_at DESC, id DESC);
CREATE INDEX bounces_expiry ON bounces (expires_at);

CREATE TABLE spam_reports (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    email_id TEXT,
    api_user TEXT,
    reported_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    UNIQUE (account_id, address)
);
CREATE INDEX spam_reports_time ON spam_reports (account_id, reported_at DESC, id DESC);
CREATE INDEX spam_reports_expiry ON spam_reports (expires_at);

CREATE TABLE unsubscribes (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    email_id TEXT,
    api_user TEXT,
    tag TEXT,
    unsubscribed_at BIGINT NOT NULL,
    UNIQUE (account_id, address)
);
CREATE INDEX unsubscribes_time ON unsubscribes (account_id, unsubscribed_at DESC, id DESC);

-- Manual entries: an address, or a whole domain written '@example.com'.
CREATE TABLE blacklist (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    source TEXT NOT NULL,
    api_user TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    UNIQUE (account_id, address)
);
CREATE INDEX blacklist_time ON blacklist (account_id, created_at DESC, id DESC);

CREATE TABLE export_jobs (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    requested_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    filter TEXT NOT NULL,
    format TEXT NOT NULL,
    gzip BOOLEAN NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    rows_done BIGINT NOT NULL DEFAULT 0,
    rows_total BIGINT,
    file_name TEXT,
    file_size BIGINT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_after BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    expires_at BIGINT
);
CREATE INDEX export_jobs_account ON export_jobs (account_id, created_at DESC, id DESC);
CREATE INDEX export_jobs_queue ON export_jobs (state, run_after);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    account_id BIGINT,
    actor_user_id BIGINT,
    actor_email TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '',
    occurred_at BIGINT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (occurred_at DESC, id DESC);
CREATE INDEX audit_log_account ON audit_log (account_id, occurred_at DESC);

-- Counts per account, UTC hour (by request time), status, reason, API_USER and mail type,
-- kept current by ingestion so the overview and the status tabs never COUNT(*) millions of rows.
-- reason 0 stands for "no reason" so that the key has no NULLs.
CREATE TABLE status_rollup (
    account_id BIGINT NOT NULL,
    hour BIGINT NOT NULL,
    status SMALLINT NOT NULL,
    reason SMALLINT NOT NULL,
    api_user TEXT NOT NULL,
    mail_type SMALLINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (account_id, hour, status, reason, api_user, mail_type)
) WITHOUT ROWID;

-- Webhook tokens seen in the last 24 h, so a replayed SendCloud post is not applied twice.
CREATE TABLE webhook_tokens (
    account_id BIGINT NOT NULL,
    token TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, token)
);
