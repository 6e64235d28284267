-- Retention deletes an account's remembered Message-IDs older than its cutoff, in chunks.
CREATE INDEX feed_message_ids_seen ON feed_message_ids (account_id, seen_at);
