-- Alert rules, the alerts they fired, and the notifications sent for them (issue #20, part 4).
-- A rule is evaluated by one server at a time: `lease_until`/`lease_token` are its lease, taken
-- with a guarded update (the export queue's discipline); `state` changes only by a
-- compare-and-set, so that a transition is recorded once however many servers evaluate.
CREATE TABLE alert_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    reason SMALLINT,
    provider TEXT,
    threshold_bp INTEGER NOT NULL,
    recover_bp INTEGER NOT NULL,
    window_minutes INTEGER NOT NULL,
    min_requests BIGINT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT FALSE,
    state TEXT NOT NULL DEFAULT 'ok',
    last_value_bp INTEGER,
    last_requests BIGINT,
    last_evaluated_at BIGINT,
    next_eval_at BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT,
    lease_token TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX alert_rules_account ON alert_rules (account_id, id);
CREATE INDEX alert_rules_due ON alert_rules (enabled, next_eval_at);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    rule_id BIGINT,
    kind TEXT NOT NULL,
    metric TEXT NOT NULL,
    reason SMALLINT,
    provider TEXT,
    threshold_bp INTEGER NOT NULL,
    window_minutes INTEGER NOT NULL,
    value_bp INTEGER NOT NULL,
    requests BIGINT NOT NULL,
    matched BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL
);
CREATE INDEX alerts_account ON alerts (account_id, occurred_at DESC, id DESC);

-- One row per account: where its alerts go.
CREATE TABLE alert_targets (
    account_id BIGINT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    webhook_url TEXT,
    webhook_secret TEXT NOT NULL,
    emails TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL
);

CREATE TABLE alert_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    alert_id BIGINT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_after BIGINT NOT NULL,
    lease_until BIGINT,
    last_status INTEGER,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (state, run_after);
CREATE INDEX alert_deliveries_account ON alert_deliveries (account_id, id DESC);

CREATE TABLE alert_delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    delivery_id BIGINT NOT NULL,
    attempted_at BIGINT NOT NULL,
    ok BOOLEAN NOT NULL,
    status_code INTEGER,
    error TEXT
);
CREATE INDEX alert_delivery_attempts_account ON alert_delivery_attempts (account_id, id DESC);

-- Existing accounts get the default rules a new account gets (store::alerts::DEFAULT_RULES), off.
INSERT INTO alert_rules (account_id, metric, reason, provider, threshold_bp, recover_bp, window_minutes, min_requests, enabled, state, next_eval_at, created_at, updated_at)
SELECT a.id, d.metric, d.reason, d.provider, d.threshold_bp, d.recover_bp, d.window_minutes, d.min_requests, FALSE, 'ok', 0, a.created_at, a.created_at
FROM accounts a CROSS JOIN (
    SELECT 1 AS n, 'invalid_rate' AS metric, CAST(NULL AS SMALLINT) AS reason, CAST(NULL AS TEXT) AS provider, 500 AS threshold_bp, 300 AS recover_bp, 60 AS window_minutes, 200 AS min_requests
    UNION ALL SELECT 2, 'soft_bounce_rate', NULL, NULL, 500, 300, 60, 200
    UNION ALL SELECT 3, 'reason_share', 7, NULL, 100, 50, 60, 500
    UNION ALL SELECT 4, 'invalid_rate', NULL, 'netease', 1000, 600, 30, 100
    UNION ALL SELECT 5, 'invalid_rate', NULL, 'qq', 1000, 600, 30, 100
    UNION ALL SELECT 6, 'invalid_rate', NULL, 'gmail', 1000, 600, 30, 100
) d
ORDER BY a.id, d.n;
