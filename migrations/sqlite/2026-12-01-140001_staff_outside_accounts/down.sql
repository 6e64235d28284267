-- Staff cannot be put back into an account they never chose: they are removed.
PRAGMA foreign_keys = OFF;
BEGIN;
DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE role = 'staff');
UPDATE export_jobs SET requested_by = NULL WHERE requested_by IN (SELECT id FROM users WHERE role = 'staff');
CREATE TABLE users_old (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'member', 'staff')),
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);
INSERT INTO users_old SELECT id, account_id, email, password_hash, role, created_at, password_changed_at
    FROM users WHERE account_id IS NOT NULL;
DROP TABLE users;
ALTER TABLE users_old RENAME TO users;
CREATE INDEX users_account ON users (account_id);
COMMIT;
PRAGMA foreign_keys = ON;
