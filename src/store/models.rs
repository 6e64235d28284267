//! Row structs: `…` for reading, `New…` for inserting.

use diesel::prelude::*;

use crate::db::schema::*;
use crate::domain::{MailType, Reason, Role, Status};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub time_zone: String,
    pub mask_addresses: bool,
    pub export_allowed: bool,
    pub splus_content: bool,
    pub splus_log: bool,
    pub webhook_app_key: Option<String>,
    pub created_at: i64,
}

impl Account {
    pub fn zone(&self) -> chrono_tz::Tz {
        crate::domain::parse_zone(&self.time_zone).unwrap_or(chrono_tz::Asia::Shanghai)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = accounts)]
pub struct NewAccount<'a> {
    pub name: &'a str,
    pub time_zone: &'a str,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    /// The customer account; None for staff, who belong to none.
    pub account_id: Option<i64>,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: i64,
    pub password_changed_at: i64,
}

impl User {
    pub fn role(&self) -> Role {
        Role::from_code(&self.role).unwrap_or(Role::Member)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub account_id: Option<i64>,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub created_at: i64,
    pub password_changed_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_users)]
pub struct ApiUser {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub key_hash: String,
    pub key_hint: String,
    pub mail_type: i16,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_users)]
pub struct NewApiUser<'a> {
    pub account_id: i64,
    pub name: &'a str,
    pub key_hash: &'a str,
    pub key_hint: &'a str,
    pub mail_type: i16,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub struct Message {
    pub id: i64,
    pub account_id: i64,
    pub email_id: String,
    pub recipient: String,
    pub api_user: String,
    pub mail_type: i16,
    pub tags: String,
    pub sender: String,
    pub subject: String,
    pub status: i16,
    pub reason: Option<i16>,
    pub smtp_reply: Option<String>,
    pub rule: Option<String>,
    pub requested_at: i64,
    pub updated_at: i64,
    /// The recipient's mailbox provider (`crate::domain::providers`).
    pub provider: String,
}

/// A message as the status table and its exports list it: every column of `messages` but
/// the sender, subject and classifying rule, which only the message's own page shows. Pages
/// and million-row exports read these, so they stay narrow.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = messages)]
pub struct StatusRow {
    pub id: i64,
    pub email_id: String,
    pub recipient: String,
    pub api_user: String,
    pub mail_type: i16,
    pub tags: String,
    pub status: i16,
    pub reason: Option<i16>,
    pub smtp_reply: Option<String>,
    pub requested_at: i64,
    pub updated_at: i64,
    pub provider: String,
}

/// The stored small integers of a message row as the codes they stand for.
macro_rules! coded_columns {
    ($row:ty) => {
        impl $row {
            pub fn status(&self) -> Status {
                Status::from_i16(self.status).unwrap_or(Status::Requesting)
            }

            pub fn reason(&self) -> Option<Reason> {
                self.reason.and_then(Reason::from_i16)
            }

            pub fn mail_type(&self) -> MailType {
                MailType::from_i16(self.mail_type).unwrap_or(MailType::Trigger)
            }
        }
    };
}

coded_columns!(Message);
coded_columns!(StatusRow);

impl Message {
    pub fn tag_list(&self) -> Vec<&str> {
        self.tags.split(',').filter(|t| !t.is_empty()).collect()
    }

    /// Each tag once, sorted: a message has one tag row and one per-tag count per tag.
    pub fn distinct_tags(&self) -> Vec<&str> {
        let mut tags = self.tag_list();
        tags.sort_unstable();
        tags.dedup();
        tags
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = message_tags, treat_none_as_default_value = false)]
pub struct MessageTag {
    pub message_id: i64,
    pub account_id: i64,
    pub tag: String,
    pub requested_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = message_events)]
pub struct MessageEvent {
    pub id: i64,
    pub account_id: i64,
    pub message_id: Option<i64>,
    pub email_id: String,
    pub event_id: Option<String>,
    pub kind: String,
    pub occurred_at: i64,
    pub smtp_reply: Option<String>,
    pub mx: Option<String>,
    pub attempt: Option<i32>,
    pub reason: Option<i16>,
    pub detail: Option<String>,
    pub received_at: i64,
}

/// `treat_none_as_default_value = false`: a `None` is bound as NULL rather than spelled
/// `DEFAULT`, which lets diesel insert a batch on SQLite as one multi-row statement instead
/// of one statement per row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = message_events, treat_none_as_default_value = false)]
pub struct NewMessageEvent {
    pub account_id: i64,
    pub message_id: Option<i64>,
    pub email_id: String,
    pub event_id: Option<String>,
    pub kind: String,
    pub occurred_at: i64,
    pub smtp_reply: Option<String>,
    pub mx: Option<String>,
    pub attempt: Option<i32>,
    pub reason: Option<i16>,
    pub detail: Option<String>,
    pub received_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = tracking_events, treat_none_as_default_value = false)]
pub struct NewTrackingEvent {
    pub account_id: i64,
    pub message_id: Option<i64>,
    pub email_id: String,
    pub recipient: String,
    pub api_user: String,
    pub tag: Option<String>,
    pub kind: i16,
    pub url: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = bounces)]
pub struct NewBounce {
    pub account_id: i64,
    pub address: String,
    pub reason_text: String,
    pub source: String,
    pub email_id: Option<String>,
    pub bounced_at: i64,
    pub bounce_count: i32,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = spam_reports)]
pub struct NewSpamReport {
    pub account_id: i64,
    pub address: String,
    pub email_id: Option<String>,
    pub api_user: Option<String>,
    pub reported_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = unsubscribes)]
pub struct NewUnsubscribe {
    pub account_id: i64,
    pub address: String,
    pub reason: String,
    pub source: String,
    pub email_id: Option<String>,
    pub api_user: Option<String>,
    pub tag: Option<String>,
    pub unsubscribed_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = blacklist)]
pub struct NewBlacklistEntry {
    pub account_id: i64,
    pub address: String,
    pub source: String,
    pub api_user: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_log)]
pub struct NewAuditEntry {
    pub account_id: Option<i64>,
    pub actor_user_id: Option<i64>,
    pub actor_email: String,
    pub action: String,
    pub target: String,
    pub ip: String,
    pub occurred_at: i64,
}
