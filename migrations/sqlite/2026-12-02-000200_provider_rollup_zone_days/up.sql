-- The daily provider rollup sums the days of the account's own time zone, so that a period of
-- whole days there (every providers page) reads the daily table alone, without the hours at
-- each end. This table says which zone an account's daily rows are days of. The rows so far
-- are UTC days; the server re-sums them from the hourly table in the account's zone when it
-- starts, and whenever an owner changes the zone.
CREATE TABLE provider_rollup_zone (
    account_id BIGINT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    zone TEXT NOT NULL
);
INSERT INTO provider_rollup_zone (account_id, zone) SELECT id, 'UTC' FROM accounts;
