-- The status rollup summed per UTC day, kept current beside the hourly one. A period's counts
-- read whole days here and only its ragged edges from the hourly table, so that 30 days of
-- counts add up some hundreds of rows instead of tens of thousands.
CREATE TABLE status_rollup_daily (
    account_id BIGINT NOT NULL,
    day BIGINT NOT NULL,
    status SMALLINT NOT NULL,
    reason SMALLINT NOT NULL,
    api_user TEXT NOT NULL,
    mail_type SMALLINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (account_id, day, status, reason, api_user, mail_type)
);

INSERT INTO status_rollup_daily (account_id, day, status, reason, api_user, mail_type, count)
SELECT account_id, hour / 24, status, reason, api_user, mail_type, SUM(count)
FROM status_rollup
GROUP BY account_id, hour / 24, status, reason, api_user, mail_type;

-- Only events that wait for their request (no message yet) are ever looked up by emailId:
-- indexing just those spares every other event row one index insert.
DROP INDEX message_events_email;
CREATE INDEX message_events_waiting ON message_events (account_id, email_id) WHERE message_id IS NULL;
