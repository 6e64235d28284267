-- Staff are the operator's people: they belong to no customer account (DESIGN §9).
ALTER TABLE users ALTER COLUMN account_id DROP NOT NULL;
UPDATE users SET account_id = NULL WHERE role = 'staff';
ALTER TABLE users ADD CONSTRAINT users_staff_outside_accounts
    CHECK ((role = 'staff') = (account_id IS NULL));
