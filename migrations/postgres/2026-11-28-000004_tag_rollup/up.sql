-- The status rollup once more per tag: a message counts once under each of its tags. The tabs
-- of a tag filter read these counts instead of joining the tag index to the messages.
CREATE TABLE status_rollup_tags (
    account_id BIGINT NOT NULL,
    tag TEXT NOT NULL,
    hour BIGINT NOT NULL,
    status SMALLINT NOT NULL,
    reason SMALLINT NOT NULL,
    api_user TEXT NOT NULL,
    mail_type SMALLINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (account_id, tag, hour, status, reason, api_user, mail_type)
);

INSERT INTO status_rollup_tags (account_id, tag, hour, status, reason, api_user, mail_type, count)
SELECT m.account_id, t.tag, m.requested_at / 3600000, m.status, COALESCE(m.reason, 0),
       m.api_user, m.mail_type, COUNT(*)
FROM message_tags t JOIN messages m ON m.id = t.message_id AND m.requested_at = t.requested_at
GROUP BY m.account_id, t.tag, m.requested_at / 3600000, m.status, COALESCE(m.reason, 0),
         m.api_user, m.mail_type;
