DROP INDEX feed_message_ids_seen;
