//! The status table's form (`/status`, its CSV and its offline export): as typed, as parsed,
//! its cursors and its links.

use super::*;
use crate::web::lang::Lang;

pub const PER_PAGE_CHOICES: &[i64] = &[20, 50, 100];
/// The most rows a download of the current filter carries; beyond it, offline export.
pub const ONLINE_EXPORT_LIMIT: i64 = 10_000;

/// The query string of `/status`, as typed: every field a string, so that nothing the user
/// typed is lost to a parse error.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusForm {
    pub from: Option<String>,
    pub to: Option<String>,
    pub recipient: Option<String>,
    pub email_id: Option<String>,
    pub mail_type: Option<String>,
    pub tag: Option<String>,
    pub api_user: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub cursor: Option<String>,
    pub per_page: Option<String>,
    pub account: Option<String>,
    /// Part of the subject.
    pub subject: Option<String>,
    /// Part of the sender address.
    pub sender: Option<String>,
    /// A mailbox provider's id (`netease`, `qq`, …) or a bare domain.
    pub provider: Option<String>,
    /// How many rows come before this page (for "21–40 of 193"); carried by the pager links.
    pub start: Option<String>,
}

/// A message for one field of the form.
pub struct StatusFieldError {
    pub field: &'static str,
    pub message: String,
}

pub struct Parsed {
    pub filter: StatusFilter,
    pub period: Period,
    pub from: Option<(Position, Direction)>,
    pub per_page: i64,
    pub errors: Vec<StatusFieldError>,
    /// A notice that is not any one field's fault (a stale page link).
    pub notice: Option<String>,
}

/// `n1764201600000_42` (older than) or `p…` (newer than): a position and a direction.
pub fn encode_cursor(p: Position, d: Direction) -> String {
    let tag = match d {
        Direction::Older => 'n',
        Direction::Newer => 'p',
    };
    format!("{tag}{}_{}", p.at, p.id)
}

pub fn decode_cursor(s: &str) -> Option<(Position, Direction)> {
    let direction = match s.chars().next()? {
        'n' => Direction::Older,
        'p' => Direction::Newer,
        _ => return None,
    };
    let (at, id) = s[1..].split_once('_')?;
    Some((
        Position {
            at: at.parse().ok()?,
            id: id.parse().ok()?,
        },
        direction,
    ))
}

/// One field's message, in the viewer's language.
fn field_error(lang: Lang, field: &'static str, key: &str) -> StatusFieldError {
    StatusFieldError {
        field,
        message: lang.t(key),
    }
}

impl StatusForm {
    /// The status and the reason asked for, each checked (a reason must belong to the status).
    fn status_and_reason(
        &self,
        lang: Lang,
        errors: &mut Vec<StatusFieldError>,
    ) -> (Option<Status>, Option<Reason>) {
        // The grouped reason list sends `status:reason`; the status select may be left at "any".
        let (reason_status, reason_text) = match text(&self.reason) {
            Some(r) => match r.split_once(':') {
                Some((st, rs)) => (Status::from_code(st), Some(rs.to_string())),
                None => (None, Some(r)),
            },
            None => (None, None),
        };
        let status = text(&self.status).or_else(|| reason_status.map(|s| s.code().to_string()));
        let status = status.and_then(|s| match Status::from_code(&s) {
            Some(st) => Some(st),
            None => {
                errors.push(field_error(lang, "status", "filter.bad_status"));
                None
            }
        });
        let reason = reason_text.and_then(|r| match (Reason::from_code(&r), status) {
            (None, _) => {
                errors.push(field_error(lang, "reason", "filter.bad_reason"));
                None
            }
            (Some(_), None) => {
                errors.push(field_error(lang, "reason", "filter.reason_needs_status"));
                None
            }
            (Some(reason), Some(st)) if !st.allowed_reasons().contains(&reason) => {
                errors.push(field_error(lang, "reason", "filter.reason_not_in_status"));
                None
            }
            (Some(reason), Some(_)) => Some(reason),
        });
        (status, reason)
    }

    pub fn parse(&self, viewer: &Viewer) -> Parsed {
        let lang = viewer.lang;
        let zone = viewer.account.zone();
        let today = Utc::now().with_timezone(&zone).date_naive();
        let mut errors = Vec::new();
        let period = match Period::parse(self.from.as_deref(), self.to.as_deref(), today) {
            Ok(p) => p,
            Err(e) => {
                let (field, key) = period_error(e);
                errors.push(field_error(lang, field, key));
                Period::today(today)
            }
        };
        let (from_ms, to_ms) = period.bounds(&zone);
        let (status, reason) = self.status_and_reason(lang, &mut errors);
        let mail_type = text(&self.mail_type).and_then(|m| match MailType::from_code(&m) {
            Some(mt) => Some(mt),
            None => {
                errors.push(field_error(lang, "mail_type", "filter.bad_mail_type"));
                None
            }
        });
        let per_page = match text(&self.per_page) {
            None => PER_PAGE_CHOICES[0],
            Some(p) => match p
                .parse::<i64>()
                .ok()
                .filter(|n| PER_PAGE_CHOICES.contains(n))
            {
                Some(n) => n,
                None => {
                    errors.push(field_error(lang, "per_page", "filter.bad_per_page"));
                    PER_PAGE_CHOICES[0]
                }
            },
        };
        let provider = text(&self.provider)
            .map(|p| p.to_lowercase())
            .and_then(|p| {
                if is_provider_id(&p) {
                    Some(p)
                } else {
                    errors.push(field_error(lang, "provider", "filter.bad_provider"));
                    None
                }
            });
        let mut notice = None;
        let from = text(&self.cursor).and_then(|c| {
            let decoded = decode_cursor(&c);
            if decoded.is_none() {
                notice = Some(lang.t("filter.bad_cursor"));
            }
            decoded
        });
        let filter = StatusFilter {
            from_ms,
            to_ms,
            recipient: text(&self.recipient).map(|r| crate::domain::normalize_address(&r)),
            email_id: text(&self.email_id),
            mail_type,
            tag: text(&self.tag),
            api_user: text(&self.api_user),
            status,
            reason,
            subject: text(&self.subject),
            sender: text(&self.sender),
            provider,
        };
        Parsed {
            filter,
            period,
            from,
            per_page,
            errors,
            notice,
        }
    }

    /// This form's query string with some fields replaced (empty value: left out).
    pub fn query_with(&self, changes: &[(&str, &str)]) -> String {
        let fields: [(&str, &Option<String>); 14] = [
            ("from", &self.from),
            ("to", &self.to),
            ("recipient", &self.recipient),
            ("subject", &self.subject),
            ("sender", &self.sender),
            ("email_id", &self.email_id),
            ("mail_type", &self.mail_type),
            ("tag", &self.tag),
            ("api_user", &self.api_user),
            ("provider", &self.provider),
            ("status", &self.status),
            ("reason", &self.reason),
            ("per_page", &self.per_page),
            ("account", &self.account),
        ];
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            let value = match changes.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => v.to_string(),
                None => value.clone().unwrap_or_default(),
            };
            if !value.trim().is_empty() {
                out.append_pair(name, value.trim());
            }
        }
        for (name, value) in changes
            .iter()
            .filter(|(n, _)| *n == "cursor" || *n == "start")
        {
            if !value.is_empty() {
                out.append_pair(name, value);
            }
        }
        out.finish()
    }

    pub fn value(&self, field: &str) -> String {
        let v = match field {
            "from" => &self.from,
            "to" => &self.to,
            "recipient" => &self.recipient,
            "subject" => &self.subject,
            "sender" => &self.sender,
            "email_id" => &self.email_id,
            "tag" => &self.tag,
            "api_user" => &self.api_user,
            "provider" => &self.provider,
            _ => &None,
        };
        v.clone().unwrap_or_default()
    }
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Reason choices under one status (an unlabelled group holds "any").
pub struct ChoiceGroup {
    pub label: String,
    pub choices: Vec<Choice>,
}

/// A period preset beside the dates: today, 24 hours, 7 days, 30 days.
pub struct Preset {
    pub code: &'static str,
    pub label: String,
    pub href: String,
    pub active: bool,
}
