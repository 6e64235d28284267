//! Status, reason, mail type and role codes (DESIGN §2, §3). Stored as small integers so the
//! messages table stays narrow; the text codes are what URLs, forms and APIs use.

use serde::Serialize;

macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = ($num:expr, $code:literal $(| $alias:literal)*, $zh:expr, $en:expr)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The contract code, as used in URLs, forms and JSON.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// The code, or one of its other accepted spellings.
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code $(| $alias)* => Some($name::$variant),)+ _ => None }
            }

            /// The value stored in the database.
            pub fn as_i16(self) -> i16 {
                match self { $($name::$variant => $num),+ }
            }

            pub fn from_i16(n: i16) -> Option<Self> {
                match n { $($num => Some($name::$variant),)+ _ => None }
            }

            /// The label shown to people, in `lang` ("zh-CN" or "en").
            pub fn label(self, lang: &str) -> &'static str {
                if lang.starts_with("zh") {
                    match self { $($name::$variant => $zh),+ }
                } else {
                    match self { $($name::$variant => $en),+ }
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = String::deserialize(d)?;
                $name::from_code(&code).ok_or_else(|| serde::de::Error::custom(format!("unknown code {code:?}")))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}
pub(crate) use coded_enum;

coded_enum!(
    /// The one status of a message.
    Status {
        Requesting = (0, "requesting", "请求中", "Requesting"),
        Delivered = (1, "delivered", "送达", "Delivered"),
        SoftBounce = (2, "soft_bounce", "软退信", "Soft bounce"),
        Invalid = (3, "invalid", "无效邮件", "Invalid"),
    }
);

coded_enum!(
    /// Why a message bounced or was invalid; one vocabulary for both states.
    Reason {
        Blacklisted = (1, "blacklisted", "黑名单", "On the blacklist"),
        Unsubscribed = (2, "unsubscribed", "取消订阅", "Unsubscribed"),
        ServerUnreachable = (3, "server_unreachable", "服务器不可达", "Receiving server unreachable (MX)"),
        BadAddress = (4, "bad_address", "地址格式错误", "Malformed address"),
        IpDomainRejected = (5, "ip_domain_rejected", "IP、域名被拒", "IP or domain rejected"),
        AddressNotFound = (6, "address_not_found", "邮箱地址不存在", "Address does not exist"),
        Spam = (7, "spam", "垃圾邮件", "Spam"),
        SenderRecipientRejected = (8, "sender_recipient_rejected", "发件人/收件人被拒", "Sender or recipient rejected"),
        Other = (9, "other", "其他", "Other"),
        ServiceUnavailable = (10, "service_unavailable", "服务不可达", "MP service unavailable"),
    }
);

coded_enum!(
    MailType {
        Trigger = (1, "trigger", "触发", "Trigger"),
        Batch = (2, "batch", "批量", "Batch"),
    }
);

coded_enum!(
    /// The four reasons a recipient may give on the unsubscribe page.
    UnsubscribeReason {
        NotWanted = (1, "not_wanted", "我不想再收到此类邮件", "I no longer want these emails"),
        NotSubscribed = (2, "not_subscribed", "这不是我订阅的", "I never subscribed"),
        Spam = (3, "spam", "这是垃圾邮件", "This is spam"),
        Fraud = (4, "fraud", "这是欺诈邮件, 我要举报", "This is fraud, I want to report it"),
    }
);

coded_enum!(
    Role {
        Owner = (1, "owner", "所有者", "Owner"),
        Member = (2, "member", "成员", "Member"),
        Staff = (3, "staff", "支持人员", "Support staff"),
    }
);

impl Status {
    /// The reasons a message in this status may carry (DESIGN §2); empty for requesting/delivered.
    pub fn allowed_reasons(self) -> &'static [Reason] {
        use Reason::*;
        match self {
            Status::SoftBounce => &[
                IpDomainRejected,
                AddressNotFound,
                Spam,
                SenderRecipientRejected,
                Other,
                ServiceUnavailable,
            ],
            Status::Invalid => &[
                Blacklisted,
                Unsubscribed,
                ServerUnreachable,
                BadAddress,
                IpDomainRejected,
                AddressNotFound,
                Spam,
                SenderRecipientRejected,
                Other,
            ],
            Status::Requesting | Status::Delivered => &[],
        }
    }

    /// A CSS-friendly tone, so colour always comes with the words.
    pub fn tone(self) -> &'static str {
        match self {
            Status::Requesting => "pending",
            Status::Delivered => "ok",
            Status::SoftBounce => "warn",
            Status::Invalid => "bad",
        }
    }
}

impl Reason {
    /// Projects a classified reason onto the subset the landing status allows (DESIGN §2).
    pub fn project(self, status: Status) -> Reason {
        match (status, self) {
            (Status::SoftBounce, Reason::ServerUnreachable) => Reason::ServiceUnavailable,
            (Status::SoftBounce, Reason::BadAddress) => Reason::AddressNotFound,
            (Status::SoftBounce, Reason::Blacklisted | Reason::Unsubscribed) => Reason::Other,
            (Status::Invalid, Reason::ServiceUnavailable) => Reason::ServerUnreachable,
            (_, r) => r,
        }
    }

    /// SendCloud's subStat code for this reason in `status`, when it has one.
    pub fn sub_stat(self, status: Status) -> Option<u16> {
        let base = match status {
            Status::SoftBounce => 500,
            Status::Invalid => 400,
            _ => return None,
        };
        let offset = match self {
            Reason::Blacklisted => 1,
            Reason::Unsubscribed => 2,
            Reason::ServerUnreachable => 3,
            Reason::BadAddress => 4,
            Reason::IpDomainRejected => 5,
            Reason::AddressNotFound => 6,
            Reason::Spam => 7,
            Reason::SenderRecipientRejected => 8,
            Reason::Other => 9,
            Reason::ServiceUnavailable => 3,
        };
        status
            .allowed_reasons()
            .contains(&self)
            .then_some(base + offset)
    }

    /// The (status, reason) a SendCloud subStat code stands for.
    pub fn from_sub_stat(code: u16) -> Option<(Status, Reason)> {
        let status = match code / 100 {
            4 => Status::Invalid,
            5 => Status::SoftBounce,
            _ => return None,
        };
        status
            .allowed_reasons()
            .iter()
            .copied()
            .find(|r| r.sub_stat(status) == Some(code))
            .map(|r| (status, r))
    }
}

/// SendCloud's own `subStatDesc` for each code, word for word, as its webhooks and API v2 carry
/// it: one text per code. Clients of the SendCloud-compatible API may compare these strings,
/// so 401 keeps SendCloud's name; the console says [`Reason::label_in`] instead.
pub fn sub_stat_desc(code: u16) -> Option<&'static str> {
    Some(match code {
        401 => "SendCloud黑名单中",
        402 => "取消订阅",
        403 => "服务器不可达",
        404 => "地址格式错误",
        405 => "IP、域名被拒",
        406 => "邮箱地址不存在",
        407 => "垃圾邮件",
        408 => "发件人/收件人被拒",
        409 => "其他",
        503 => "服务不可达",
        505 => "IP、域名被拒",
        506 => "邮箱地址不存在",
        507 => "反垃圾邮件被拒",
        508 => "发件人/收件人被拒",
        509 => "其他",
        _ => return None,
    })
}

impl Reason {
    /// The label of this reason in `status`, one per subStat code: SendCloud's words, except
    /// that 401 says "黑名单中" (on our blacklist) where SendCloud names itself.
    pub fn label_in(self, status: Status, lang: &str) -> &'static str {
        let zh = lang.starts_with("zh");
        match (status, self) {
            (Status::SoftBounce, Reason::Spam) => {
                if zh {
                    "反垃圾邮件被拒"
                } else {
                    "Rejected by an anti-spam filter"
                }
            }
            (Status::Invalid, Reason::Blacklisted) if zh => "黑名单中",
            _ => self.label(lang),
        }
    }
}

impl UnsubscribeReason {
    /// Unsubscribes for spam or fraud also count as spam reports (DESIGN §3).
    pub fn is_complaint(self) -> bool {
        matches!(self, UnsubscribeReason::Spam | UnsubscribeReason::Fraud)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_stat_codes_round_trip() {
        for status in [Status::SoftBounce, Status::Invalid] {
            for &reason in status.allowed_reasons() {
                let code = reason.sub_stat(status).expect("allowed reasons have codes");
                assert_eq!(Reason::from_sub_stat(code), Some((status, reason)));
            }
        }
        assert_eq!(
            Reason::ServiceUnavailable.sub_stat(Status::SoftBounce),
            Some(503)
        );
        assert_eq!(Reason::Blacklisted.sub_stat(Status::Invalid), Some(401));
        assert_eq!(Reason::Other.sub_stat(Status::SoftBounce), Some(509));
        assert_eq!(Reason::Blacklisted.sub_stat(Status::SoftBounce), None);
    }

    #[test]
    fn projection_follows_design() {
        assert_eq!(
            Reason::ServerUnreachable.project(Status::SoftBounce),
            Reason::ServiceUnavailable
        );
        assert_eq!(
            Reason::BadAddress.project(Status::SoftBounce),
            Reason::AddressNotFound
        );
        assert_eq!(
            Reason::ServiceUnavailable.project(Status::Invalid),
            Reason::ServerUnreachable
        );
        for status in [Status::SoftBounce, Status::Invalid] {
            for &r in Reason::ALL {
                assert!(status.allowed_reasons().contains(&r.project(status)));
            }
        }
    }

    #[test]
    fn one_label_per_sub_stat_code() {
        let mut seen = std::collections::HashSet::new();
        for status in [Status::SoftBounce, Status::Invalid] {
            for &reason in status.allowed_reasons() {
                let code = reason.sub_stat(status).unwrap();
                let desc = sub_stat_desc(code).expect("every code has SendCloud's text");
                assert!(!desc.contains(" / "), "{code}: {desc}");
                seen.insert(code);
                let label = reason.label_in(status, "zh-CN");
                assert!(!label.contains(" / "), "{code}: {label}");
                if code != 401 {
                    assert_eq!(label, desc, "the console says what SendCloud says");
                }
            }
        }
        assert_eq!(seen.len(), 15);
        assert_eq!(sub_stat_desc(401), Some("SendCloud黑名单中"));
        assert_eq!(sub_stat_desc(406), Some("邮箱地址不存在"));
        assert_eq!(sub_stat_desc(407), Some("垃圾邮件"));
        assert_eq!(sub_stat_desc(507), Some("反垃圾邮件被拒"));
        assert_eq!(
            Reason::Blacklisted.label_in(Status::Invalid, "zh-CN"),
            "黑名单中"
        );
    }

    #[test]
    fn codes_round_trip() {
        for &s in Status::ALL {
            assert_eq!(Status::from_code(s.code()), Some(s));
            assert_eq!(Status::from_i16(s.as_i16()), Some(s));
        }
        for &r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
            assert_eq!(Reason::from_i16(r.as_i16()), Some(r));
        }
        assert_eq!(Status::Delivered.label("zh-CN"), "送达");
        assert_eq!(Status::Invalid.label("en"), "Invalid");
    }
}
