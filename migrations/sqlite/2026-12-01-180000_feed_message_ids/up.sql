-- The Message-ID header of mail a feed read (Postfix's cleanup line), with the emailIds of its
-- recipients, so that a raw bounce or ARF report naming the original's Message-ID finds the
-- message whatever its emailId is.
CREATE TABLE feed_message_ids (
    account_id BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    email_id TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, message_id, email_id)
);
