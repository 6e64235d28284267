//! What the generated traffic is drawn from: senders, recipients' domains, subjects, the
//! failure mix with its SMTP replies, and the user agents of opens and clicks.

use crate::domain::{MailType, Reason};

/// (API_USER, mail type, tags it sends with)
pub const API_USERS: &[(&str, MailType, &[&str])] = &[
    (
        "notify_trigger",
        MailType::Trigger,
        &["welcome", "password_reset", "login_alert"],
    ),
    ("billing", MailType::Trigger, &["invoice", "receipt"]),
    (
        "marketing_batch",
        MailType::Batch,
        &["promo_1111", "spring_sale", "new_arrivals"],
    ),
    (
        "newsletter",
        MailType::Batch,
        &["weekly_digest", "monthly_report"],
    ),
];

/// (domain, MX host, weight): the mix of a Chinese sender's recipients, by mailbox provider,
/// with some companies whose mail is hosted by Tencent Exmail, NetEase Qiye, Google Workspace
/// or Microsoft 365 (their MX says so) and some on their own servers.
pub const DOMAINS: &[(&str, &str, u32)] = &[
    ("qq.com", "mx3.qq.com", 30),
    ("163.com", "163mx01.mxmail.netease.com", 18),
    ("126.com", "126mx01.mxmail.netease.com", 8),
    ("gmail.com", "gmail-smtp-in.l.google.com", 12),
    ("outlook.com", "outlook-com.olc.protection.outlook.com", 6),
    ("hotmail.com", "hotmail-com.olc.protection.outlook.com", 3),
    ("sina.com", "freemx1.sinamail.sina.com.cn", 5),
    ("foxmail.com", "mx1.qq.com", 5),
    ("yahoo.com", "mta5.am0.yahoodns.net", 3),
    ("yeah.net", "yeahmx01.mxmail.netease.com", 2),
    ("sohu.com", "mx.sohu.com", 2),
    ("aliyun.com", "mx2.mail.aliyun.com", 2),
    ("139.com", "mx1.mail.139.com", 2),
    ("icloud.com", "mx01.mail.icloud.com", 2),
    ("example-corp.cn", "mx.example-corp.cn", 5),
    ("acme.com.cn", "mxbiz1.qq.com", 5),
    ("huaxia-tech.cn", "mxw.qiye.163.com", 2),
    ("startup.io", "aspmx.l.google.com", 2),
    ("globex.com", "globex-com.mail.protection.outlook.com", 2),
];

/// NetEase's bad hour in the demo: mail to these domains requested in the hour that began
/// this many hours ago is mostly refused, as when a provider throttles and blocks a sender.
pub const BAD_HOUR_DOMAINS: &[&str] = &["163.com", "126.com", "yeah.net"];
pub const BAD_HOUR_AGO: i64 = 3;

/// (status is invalid, reason, weight out of 100, reply) in the bad hour; the rest delivers.
pub const BAD_HOUR_MIX: &[(bool, Reason, u32, &str)] = &[
    (
        true,
        Reason::Spam,
        30,
        "554 DT:SPM 163 mx14,QsCowAB{id}: 发送的邮件内容包含了未被许可的信息，或被系统识别为垃圾邮件",
    ),
    (
        false,
        Reason::ServiceUnavailable,
        20,
        "451 4.7.0 MI:SFQ 发信人在15分钟内的发信数量超过限制",
    ),
    (
        true,
        Reason::IpDomainRejected,
        10,
        "550 RP:CEL 203.0.113.7 发送的邮件内容包含了未被许可的信息或违背了网易的反垃圾策略",
    ),
];

pub const NAMES: &[&str] = &[
    "zhang", "wang", "li", "zhao", "chen", "liu", "yang", "huang", "wu", "zhou", "xu", "sun", "ma",
    "zhu", "hu", "guo", "he", "lin", "luo", "gao", "alice", "bob", "carol", "david", "emma",
    "frank", "grace", "henry", "ivy", "jack", "kate", "leo", "mia", "nina", "oscar",
];

pub const SUBJECTS: &[&str] = &[
    "欢迎加入！请验证您的邮箱",
    "您的密码重置链接",
    "Your invoice for this month",
    "双十一大促：全场五折起",
    "Weekly digest: what you missed",
    "登录提醒：新设备登录",
    "Your receipt",
    "新品上架，抢先看",
];

/// (reason, weight, SMTP reply) for invalid messages.
pub const INVALID_MIX: &[(Reason, u32, &str)] = &[
    (Reason::AddressNotFound, 40, "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"),
    (Reason::BadAddress, 4, "501 5.1.3 Bad recipient address syntax"),
    (Reason::ServerUnreachable, 9, "Host or domain name not found. Name service error for name={domain} type=MX: Host not found"),
    (Reason::Spam, 8, "554 5.7.1 Message rejected because of unacceptable content: suspected spam"),
    (Reason::IpDomainRejected, 7, "550 5.7.1 Service unavailable; Client host [203.0.113.7] blocked using Spamhaus"),
    (Reason::SenderRecipientRejected, 8, "550 5.7.1 Recipient rejected: sender is not allowed by the recipient's policy"),
    (Reason::Other, 6, "552 5.2.2 Mailbox full: quota exceeded"),
    (Reason::Blacklisted, 10, ""),
    (Reason::Unsubscribed, 8, ""),
];

/// (reason, weight, SMTP reply) for soft bounces, which arrive after delivery.
pub const SOFT_MIX: &[(Reason, u32, &str)] = &[
    (
        Reason::ServiceUnavailable,
        25,
        "421 4.3.0 Temporary system problem, mailbox service unavailable",
    ),
    (
        Reason::AddressNotFound,
        20,
        "550 5.1.1 The email account that you tried to reach does not exist",
    ),
    (
        Reason::Spam,
        15,
        "550 5.7.350 Remote server returned message detected as spam",
    ),
    (
        Reason::IpDomainRejected,
        10,
        "554 5.7.1 DMARC policy rejection for {domain}",
    ),
    (
        Reason::SenderRecipientRejected,
        10,
        "550 5.7.1 Delivery not authorized, message refused by recipient policy",
    ),
    (
        Reason::Other,
        20,
        "552 5.2.2 The recipient's mailbox is full and can't accept messages now",
    ),
];

pub const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; V2309A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0.47",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
];
