DROP TABLE postfix_positions;
DROP TABLE feed_replays;
DROP TABLE feed_secrets;
