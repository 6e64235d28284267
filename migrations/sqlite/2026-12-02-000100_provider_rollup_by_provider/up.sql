-- A provider page reads one provider's rollup rows over up to 30 days: by provider first,
-- instead of every provider's rows of each hour. Covering (the count included), so the
-- read never visits the table.
CREATE INDEX provider_rollup_by_provider
    ON provider_rollup (account_id, provider, hour, status, reason, count);
CREATE INDEX provider_rollup_daily_by_provider
    ON provider_rollup_daily (account_id, provider, day, status, reason, count);

-- A provider page lists the provider's newest soft bounces and invalid messages (2, 3): on
-- the provider's index of all its mail, 500 of them meant reading every message in between.
-- Only failed messages are in this one.
CREATE INDEX messages_provider_failures
    ON messages (account_id, provider, requested_at DESC, id DESC) WHERE status IN (2, 3);
