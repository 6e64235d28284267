-- The name an account's recipients know it by (its brand), shown on the public unsubscribe
-- page; set by the account's owners in the settings. No row: the account's own name.
CREATE TABLE account_display_names (
    account_id BIGINT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    display_name TEXT NOT NULL
);
