-- Mailbox providers (issue 20). Each message keeps the provider of its recipient, set at
-- ingestion from the list in src/domain/providers.tsv (a listed domain's provider id, else the
-- bare domain), and the counts per provider live in a rollup of their own, kept by ingestion
-- like status_rollup: per account, provider, UTC hour (and UTC day), status and reason.
ALTER TABLE messages ADD COLUMN provider TEXT NOT NULL DEFAULT '';

-- The messages already stored get their provider here, once, while no ingestion runs: the
-- list as it stands today is copied below (a later addition to the list maps new mail only).
CREATE TEMPORARY TABLE provider_list (domain TEXT PRIMARY KEY, provider TEXT NOT NULL);
INSERT INTO provider_list (domain, provider) VALUES
    ('qq.com', 'qq'),
    ('foxmail.com', 'qq'),
    ('vip.qq.com', 'qq'),
    ('exmail.qq.com', 'exmail'),
    ('163.com', 'netease'),
    ('126.com', 'netease'),
    ('yeah.net', 'netease'),
    ('vip.163.com', 'netease'),
    ('vip.126.com', 'netease'),
    ('188.com', 'netease'),
    ('sina.com', 'sina'),
    ('sina.cn', 'sina'),
    ('vip.sina.com', 'sina'),
    ('sina.com.cn', 'sina'),
    ('sohu.com', 'sohu'),
    ('vip.sohu.com', 'sohu'),
    ('aliyun.com', 'aliyun'),
    ('alimail.com', 'aliyun'),
    ('139.com', 'mail139'),
    ('189.cn', 'mail189'),
    ('wo.cn', 'wo'),
    ('wo.com.cn', 'wo'),
    ('tom.com', 'tom'),
    ('163.net', 'tom'),
    ('21cn.com', 'mail21cn'),
    ('gmail.com', 'gmail'),
    ('googlemail.com', 'gmail'),
    ('outlook.com', 'outlook'),
    ('hotmail.com', 'outlook'),
    ('live.com', 'outlook'),
    ('msn.com', 'outlook'),
    ('live.cn', 'outlook'),
    ('outlook.cn', 'outlook'),
    ('hotmail.co.uk', 'outlook'),
    ('hotmail.fr', 'outlook'),
    ('live.co.uk', 'outlook'),
    ('yahoo.com', 'yahoo'),
    ('ymail.com', 'yahoo'),
    ('rocketmail.com', 'yahoo'),
    ('yahoo.co.uk', 'yahoo'),
    ('yahoo.com.tw', 'yahoo'),
    ('yahoo.com.hk', 'yahoo'),
    ('yahoo.fr', 'yahoo'),
    ('yahoo.de', 'yahoo'),
    ('aol.com', 'yahoo'),
    ('icloud.com', 'icloud'),
    ('me.com', 'icloud'),
    ('mac.com', 'icloud'),
    ('yandex.ru', 'yandex'),
    ('yandex.com', 'yandex'),
    ('ya.ru', 'yandex'),
    ('proton.me', 'proton'),
    ('protonmail.com', 'proton'),
    ('pm.me', 'proton'),
    ('zoho.com', 'zoho'),
    ('zohomail.com', 'zoho'),
    ('zoho.com.cn', 'zoho'),
    ('gmx.de', 'gmx'),
    ('gmx.net', 'gmx'),
    ('gmx.com', 'gmx'),
    ('web.de', 'gmx'),
    ('mail.ru', 'mailru'),
    ('inbox.ru', 'mailru'),
    ('list.ru', 'mailru'),
    ('bk.ru', 'mailru'),
    ('naver.com', 'naver');

UPDATE messages SET provider = COALESCE(
    (SELECT l.provider FROM provider_list l WHERE l.domain = CASE WHEN position('@' in recipient) = 0 THEN '' ELSE lower(rtrim(substring(recipient from position('@' in recipient) + 1), '.')) END),
    CASE WHEN CASE WHEN position('@' in recipient) = 0 THEN '' ELSE lower(rtrim(substring(recipient from position('@' in recipient) + 1), '.')) END LIKE '%_._%' THEN CASE WHEN position('@' in recipient) = 0 THEN '' ELSE lower(rtrim(substring(recipient from position('@' in recipient) + 1), '.')) END ELSE 'unknown' END);
DROP TABLE provider_list;

-- One index serves /status?provider= (newest first), a provider page's recent failures and
-- its most frequent replies.
CREATE INDEX messages_provider ON messages (account_id, provider, requested_at DESC, id DESC);

CREATE TABLE provider_rollup (
    account_id BIGINT NOT NULL,
    provider TEXT NOT NULL,
    hour BIGINT NOT NULL,
    status SMALLINT NOT NULL,
    reason SMALLINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (account_id, hour, provider, status, reason)
);

CREATE TABLE provider_rollup_daily (
    account_id BIGINT NOT NULL,
    provider TEXT NOT NULL,
    day BIGINT NOT NULL,
    status SMALLINT NOT NULL,
    reason SMALLINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (account_id, day, provider, status, reason)
);

INSERT INTO provider_rollup (account_id, provider, hour, status, reason, count)
SELECT account_id, provider, requested_at / 3600000, status, COALESCE(reason, 0), COUNT(*)
FROM messages
GROUP BY account_id, provider, requested_at / 3600000, status, COALESCE(reason, 0);

INSERT INTO provider_rollup_daily (account_id, provider, day, status, reason, count)
SELECT account_id, provider, hour / 24, status, reason, SUM(count)
FROM provider_rollup
GROUP BY account_id, provider, hour / 24, status, reason;

-- An account's own large domains, mapped to a provider of the list or a name of its own; they
-- win over the list for mail ingested after they are set.
CREATE TABLE provider_domains (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    provider TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, domain)
);
