//! Rows as people read them in a download — labels in their language, times in the account's
//! zone, addresses masked when the account says so — shared by the online CSV downloads and
//! the offline export worker.

use std::borrow::Cow;

use chrono_tz::Tz;

use crate::domain::{browser_and_os, format_in_zone, mask_address, UnsubscribeReason};
use crate::domain::{ListEntry, ListKind};
use crate::store::models::StatusRow;
use crate::store::tracking::TrackingRow;

/// How to present values: language, time zone, masking.
#[derive(Debug, Clone)]
pub struct Presenter {
    pub lang: &'static str,
    pub zone: Tz,
    pub mask: bool,
}

impl Presenter {
    fn t(&self, key: &str) -> String {
        rust_i18n::t!(key, locale = self.lang).into_owned()
    }

    pub fn address(&self, address: &str) -> String {
        self.address_cow(address).into_owned()
    }

    /// The address as shown: masked when the account says so (a whole `@domain` never is).
    fn address_cow<'a>(&self, address: &'a str) -> Cow<'a, str> {
        if self.mask && !address.starts_with('@') {
            Cow::Owned(mask_address(address))
        } else {
            Cow::Borrowed(address)
        }
    }

    fn time(&self, ms: i64) -> String {
        format_in_zone(ms, &self.zone)
    }

    fn until(&self, ms: Option<i64>) -> String {
        ms.map(|t| self.time(t))
            .unwrap_or_else(|| self.t("lookup.forever"))
    }

    pub fn status_header(&self) -> Vec<String> {
        [
            "csv.email_id",
            "csv.status",
            "csv.reason",
            "csv.status_code",
            "csv.reason_code",
            "csv.sub_stat",
            "csv.api_user",
            "csv.recipient",
            "csv.mail_type",
            "csv.tags",
            "csv.requested",
            "csv.updated",
            "csv.smtp_reply",
            "csv.provider",
        ]
        .iter()
        .map(|k| self.t(k))
        .collect()
    }

    /// One message's fields. What the message already holds is borrowed, not copied: an
    /// export writes millions of these, and the copies cost more than the writing.
    pub fn status_record<'m>(&self, m: &'m StatusRow) -> Vec<Cow<'m, str>> {
        let status = m.status();
        let reason = m.reason();
        vec![
            Cow::Borrowed(m.email_id.as_str()),
            Cow::Borrowed(status.label(self.lang)),
            Cow::Borrowed(reason.map(|r| r.label(self.lang)).unwrap_or("")),
            Cow::Borrowed(status.code()),
            Cow::Borrowed(reason.map(|r| r.code()).unwrap_or("")),
            reason
                .and_then(|r| r.sub_stat(status))
                .map(|s| Cow::Owned(s.to_string()))
                .unwrap_or_default(),
            Cow::Borrowed(m.api_user.as_str()),
            self.address_cow(&m.recipient),
            Cow::Borrowed(m.mail_type().code()),
            Cow::Borrowed(m.tags.as_str()),
            Cow::Owned(self.time(m.requested_at)),
            Cow::Owned(self.time(m.updated_at)),
            Cow::Borrowed(m.smtp_reply.as_deref().unwrap_or("")),
            Cow::Borrowed(m.provider.as_str()),
        ]
    }

    pub fn list_header(&self, list: ListKind) -> Vec<String> {
        let keys: &[&str] = match list {
            ListKind::Bounces => &[
                "lists.address",
                "lists.mp_reason",
                "lookup.source",
                "lists.bounced_at",
                "lists.bounce_count",
                "lookup.until",
            ],
            ListKind::SpamReports => &[
                "lists.address",
                "filter.email_id",
                "filter.api_user",
                "lists.reported_at",
                "lookup.until",
            ],
            ListKind::Unsubscribes => &[
                "lists.address",
                "lookup.reason",
                "filter.api_user",
                "filter.tag",
                "lists.unsubscribed_at",
            ],
            ListKind::Blacklist => &[
                "lists.address_or_domain",
                "lookup.source",
                "filter.api_user",
                "settings.created",
                "lookup.until",
            ],
        };
        keys.iter().map(|k| self.t(k)).collect()
    }

    pub fn list_record(&self, list: ListKind, e: &ListEntry) -> Vec<String> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let address = self.address(&e.address);
        match list {
            ListKind::Bounces => vec![
                address,
                opt(&e.reason),
                opt(&e.source),
                self.time(e.created_at),
                e.bounce_count.unwrap_or(1).to_string(),
                self.until(e.expires_at),
            ],
            ListKind::SpamReports => vec![
                address,
                opt(&e.email_id),
                opt(&e.api_user),
                self.time(e.created_at),
                self.until(e.expires_at),
            ],
            ListKind::Unsubscribes => vec![
                address,
                e.reason
                    .as_deref()
                    .and_then(UnsubscribeReason::from_code)
                    .map(|r| r.label(self.lang).to_string())
                    .unwrap_or_else(|| opt(&e.reason)),
                opt(&e.api_user),
                opt(&e.tag),
                self.time(e.created_at),
            ],
            ListKind::Blacklist => {
                // Entries that count as blacklist say which list they come from.
                let source = match e.list {
                    ListKind::Blacklist => opt(&e.source),
                    other => other.label(self.lang).to_string(),
                };
                vec![
                    address,
                    source,
                    opt(&e.api_user),
                    self.time(e.created_at),
                    self.until(e.expires_at),
                ]
            }
        }
    }

    pub fn tracking_header(&self) -> Vec<String> {
        [
            "lists.time",
            "lists.kind",
            "lists.link",
            "IP",
            "lists.browser",
            "lists.os",
            "message.recipient",
            "filter.api_user",
            "filter.email_id",
        ]
        .iter()
        .map(|k| {
            if k.contains('.') {
                self.t(k)
            } else {
                k.to_string()
            }
        })
        .collect()
    }

    pub fn tracking_record(&self, r: &TrackingRow) -> Vec<String> {
        let (browser, os) = browser_and_os(r.user_agent.as_deref().unwrap_or(""));
        vec![
            self.time(r.occurred_at),
            r.kind.label(self.lang).to_string(),
            r.url.clone(),
            r.ip.clone().unwrap_or_default(),
            browser.to_string(),
            os.to_string(),
            self.address(&r.recipient),
            r.api_user.clone(),
            r.email_id.clone(),
        ]
    }
}
