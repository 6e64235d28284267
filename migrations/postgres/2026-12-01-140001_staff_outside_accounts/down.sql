-- Staff cannot be put back into an account they never chose: they are removed.
ALTER TABLE users DROP CONSTRAINT users_staff_outside_accounts;
DELETE FROM users WHERE account_id IS NULL;
ALTER TABLE users ALTER COLUMN account_id SET NOT NULL;
