ALTER TABLE bounces DROP COLUMN first_bounced_at;
