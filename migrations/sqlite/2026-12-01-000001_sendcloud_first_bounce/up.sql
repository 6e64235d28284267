-- When an address first bounced: a bounce-list entry suppresses from then until it expires,
-- whatever order its bounces arrived in. NULL for older rows: bounced_at stands in.
ALTER TABLE bounces ADD COLUMN first_bounced_at BIGINT;
