-- Staff are the operator's people: they belong to no customer account (DESIGN §9). SQLite
-- cannot drop a NOT NULL, so the users table is rebuilt; foreign keys are off meanwhile so
-- that dropping the old table neither ends sessions nor forgets who requested an export.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE users_new (
    id INTEGER PRIMARY KEY,
    account_id BIGINT REFERENCES accounts(id) ON DELETE CASCADE,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'member', 'staff')),
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL,
    CHECK ((role = 'staff') = (account_id IS NULL))
);
INSERT INTO users_new (id, account_id, email, password_hash, role, created_at, password_changed_at)
    SELECT id, CASE WHEN role = 'staff' THEN NULL ELSE account_id END,
           email, password_hash, role, created_at, password_changed_at
    FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_account ON users (account_id);
COMMIT;
PRAGMA foreign_keys = ON;
