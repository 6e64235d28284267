DROP TABLE feed_message_ids;
