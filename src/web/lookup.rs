//! `/lookup?address=` — "why didn't this address get my mail?": its recent messages, every
//! list entry that affects it, a verdict in plain words, and removal from each list.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono_tz::Tz;
use serde::Deserialize;

use super::auth::{redirect, Viewer};
use super::filters::account_param;
use super::layout::PageCtx;
use super::{with_db, AppError, AppResult};
use crate::domain::{format_in_zone, normalize_address, now_ms, EmailAddress, Status};
use crate::domain::{suppression_among, ListEntry, ListKind, Suppression};
use crate::store::models::Message;
use crate::store::{lists, messages};

const RECENT: i64 = 20;

#[derive(Deserialize)]
pub struct LookupQuery {
    address: Option<String>,
    /// A message whose recipient to look up: the link that viewers with masking on get, so
    /// that no link carries the address.
    message: Option<i64>,
    /// A list entry whose address to look up (`bounces:12`), for the same reason.
    entry: Option<String>,
    removed: Option<String>,
}

pub struct EntryRow {
    pub list: String,
    pub list_code: &'static str,
    pub id: i64,
    pub address: String,
    pub reason: String,
    pub source: String,
    pub since: String,
    pub until: String,
    pub active: bool,
    pub blocking: bool,
    pub confirm_href: String,
}

pub struct MessageRow {
    pub id: i64,
    pub status: Status,
    pub status_label: String,
    pub reason_label: String,
    pub api_user: String,
    pub subject: String,
    pub requested: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "lookup/page.html")]
struct LookupPage {
    ctx: PageCtx,
    typed: String,
    shown: String,
    error: Option<String>,
    searched: bool,
    verdict: String,
    blocked: bool,
    entries: Vec<EntryRow>,
    messages: Vec<MessageRow>,
    removed: Option<String>,
    account_param: String,
    read_only: bool,
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// `GET /lookup`: parse (the address, or the message or entry that names it) → query (its
/// list entries and recent messages) → view model (the verdict and the rows) → render.
pub async fn page(viewer: Viewer, query: web::Query<LookupQuery>) -> AppResult<HttpResponse> {
    let (typed, by_reference) = typed_address(&viewer, &query).await?;
    let mut page = LookupPage::empty(&viewer, &query, &typed, by_reference);
    if typed.trim().is_empty() {
        return render(page, 200);
    }
    let Some(address) = EmailAddress::parse(&typed) else {
        page.error = Some(viewer.lang.t("lookup.bad_address"));
        return render(page, 400);
    };
    let scope = viewer.scope();
    let wanted = address.as_str().to_string();
    let (entries, recent) = with_db(viewer.state(), move |conn| {
        let entries = lists::entries_for_address(conn, &scope, &wanted)?;
        let recent = messages::for_recipient(conn, &scope, &wanted, RECENT)?;
        Ok((entries, recent))
    })
    .await?;
    page.fill(&viewer, &address, &entries, &recent);
    render(page, 200)
}

/// The address to look up as typed, or that of the message or list entry the link names
/// (then true: the link carried no address).
async fn typed_address(viewer: &Viewer, query: &LookupQuery) -> AppResult<(String, bool)> {
    if let Some(address) = &query.address {
        return Ok((address.clone(), false));
    }
    let scope = viewer.scope();
    if let Some(id) = query.message {
        let message = with_db(viewer.state(), move |conn| {
            Ok(messages::get(conn, &scope, id)?)
        })
        .await?
        .ok_or(AppError::NotFound)?;
        return Ok((message.recipient, true));
    }
    let Some(entry) = query.entry.as_deref() else {
        return Ok((String::new(), false));
    };
    let (list, id) = entry
        .split_once(':')
        .and_then(|(l, i)| Some((ListKind::from_code(l)?, i.parse::<i64>().ok()?)))
        .ok_or(AppError::NotFound)?;
    let address = with_db(viewer.state(), move |conn| {
        Ok(crate::store::refs::entry_address(conn, &scope, list, id)?)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    Ok((address, true))
}

impl LookupPage {
    /// The page before any search: the form, with what was typed.
    fn empty(viewer: &Viewer, query: &LookupQuery, typed: &str, by_reference: bool) -> Self {
        let lang = viewer.lang;
        LookupPage {
            ctx: viewer.page("/lookup"),
            // Reached by a message, the address is the viewer's to see only as they may.
            typed: if by_reference {
                viewer.show_address(typed)
            } else {
                typed.to_string()
            },
            shown: String::new(),
            error: None,
            searched: false,
            verdict: String::new(),
            blocked: false,
            entries: Vec::new(),
            messages: Vec::new(),
            removed: query.removed.as_ref().map(|_| lang.t("lookup.removed")),
            account_param: match account_param(viewer) {
                p if p.is_empty() => p,
                p => format!("&{p}"),
            },
            read_only: viewer.is_staff_view(),
        }
    }

    /// The search's answer: the verdict, the address's list entries and recent messages.
    fn fill(
        &mut self,
        viewer: &Viewer,
        address: &EmailAddress,
        entries: &[ListEntry],
        recent: &[Message],
    ) {
        let zone = viewer.account.zone();
        let now = now_ms();
        let blocking = suppression_among(entries, address.as_str(), now);
        self.verdict = verdict(viewer, blocking.as_ref(), recent.first());
        self.blocked = blocking.is_some();
        let is_blocking = |e: &ListEntry| {
            blocking
                .as_ref()
                .is_some_and(|b| b.entry.list == e.list && b.entry.id == e.id)
        };
        self.entries = entries
            .iter()
            .map(|e| {
                let mut row = EntryRow::of(viewer, e, &zone, now);
                row.blocking = is_blocking(e);
                // With masking on the entry alone names what to remove: no link carries the
                // address.
                let (list, id) = (e.list.code(), e.id.to_string());
                let pairs = if viewer.masks() {
                    query_string(&[("list", list), ("id", &id)])
                } else {
                    query_string(&[("list", list), ("id", &id), ("address", address.as_str())])
                };
                row.confirm_href = format!("/lookup/remove?{pairs}{}", self.account_param);
                row
            })
            .collect();
        self.messages = recent
            .iter()
            .map(|m| MessageRow::of(viewer, m, &zone))
            .collect();
        self.shown = viewer.show_address(address.as_str());
        self.searched = true;
    }
}

/// The answer in plain words: blocked by which entry until when, or else how its last
/// message went.
fn verdict(viewer: &Viewer, blocking: Option<&Suppression>, last: Option<&Message>) -> String {
    let lang = viewer.lang;
    let zone = viewer.account.zone();
    match (blocking, last) {
        (Some(s), _) => {
            let (key, until) = match s.until() {
                Some(until) => ("lookup.verdict_blocked", format_in_zone(until, &zone)),
                None => ("lookup.verdict_blocked_forever", String::new()),
            };
            lang.t(key)
                .replace("{list}", s.entry.list.label(lang.code()))
                .replace("{entry}", &entry_address(viewer, &s.entry))
                .replace("{since}", &format_in_zone(s.since(), &zone))
                .replace("{until}", &until)
        }
        (None, Some(last)) => lang
            .t(if last.status() == Status::Delivered {
                "lookup.verdict_ok_delivered"
            } else {
                "lookup.verdict_ok_last"
            })
            .replace("{status}", last.status().label(lang.code()))
            .replace(
                "{reason}",
                &last
                    .reason()
                    .map(|r| format!(" · {}", r.label(lang.code())))
                    .unwrap_or_default(),
            )
            .replace("{time}", &format_in_zone(last.updated_at, &zone)),
        (None, None) => lang.t("lookup.verdict_ok_never"),
    }
}

impl EntryRow {
    /// A list entry as the viewer may see it; not blocking, and no removal link yet.
    fn of(viewer: &Viewer, e: &ListEntry, zone: &Tz, now: i64) -> Self {
        let lang = viewer.lang;
        EntryRow {
            list: e.list.label(lang.code()).to_string(),
            list_code: e.list.code(),
            id: e.id,
            address: entry_address(viewer, e),
            reason: viewer.show_text(&e.reason.clone().unwrap_or_default()),
            source: source_shown(lang, e.source.as_deref().unwrap_or_default()),
            since: format_in_zone(e.created_at, zone),
            until: e
                .expires_at
                .map(|t| format_in_zone(t, zone))
                .unwrap_or_else(|| lang.t("lookup.forever")),
            active: e.is_active(now),
            blocking: false,
            confirm_href: String::new(),
        }
    }
}

impl MessageRow {
    fn of(viewer: &Viewer, m: &Message, zone: &Tz) -> Self {
        let lang = viewer.lang;
        MessageRow {
            id: m.id,
            status: m.status(),
            status_label: m.status().label(lang.code()).to_string(),
            reason_label: m.reason_label(lang.code()),
            api_user: m.api_user.clone(),
            subject: viewer.show_text(&m.subject),
            requested: format_in_zone(m.requested_at, zone),
            updated: format_in_zone(m.updated_at, zone),
        }
    }
}

/// A domain entry shows as it is; an address entry as the viewer may see addresses.
fn entry_address(viewer: &Viewer, entry: &ListEntry) -> String {
    if entry.address.starts_with('@') {
        entry.address.clone()
    } else {
        viewer.show_address(&entry.address)
    }
}

fn render<T: Template>(page: T, status: u16) -> AppResult<HttpResponse> {
    let html = page.render().map_err(AppError::internal)?;
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    list: String,
    id: String,
    /// Absent for viewers who see addresses masked: the entry is resolved in the account.
    address: Option<String>,
}

#[derive(Template)]
#[template(path = "lookup/confirm.html")]
struct ConfirmPage {
    ctx: PageCtx,
    entry: EntryRow,
    list: String,
    id: i64,
    address: String,
    spam_warning: bool,
    back: String,
}

fn parse_remove(q: &RemoveQuery) -> AppResult<(ListKind, i64, Option<String>)> {
    let list = ListKind::from_code(&q.list).ok_or(AppError::NotFound)?;
    let id = q.id.parse::<i64>().map_err(|_| AppError::NotFound)?;
    let address = q
        .address
        .as_deref()
        .map(normalize_address)
        .filter(|a| !a.is_empty());
    Ok((list, id, address))
}

/// The address a removal is about: the one sent, else the entry's own, in the account.
async fn removal_address(
    viewer: &Viewer,
    list: ListKind,
    id: i64,
    sent: Option<String>,
) -> AppResult<String> {
    if let Some(address) = sent {
        return Ok(address);
    }
    let scope = viewer.scope();
    with_db(viewer.state(), move |conn| {
        Ok(crate::store::refs::entry_address(conn, &scope, list, id)?)
    })
    .await?
    .ok_or(AppError::NotFound)
}

/// `GET /lookup/remove`: says what will be removed and asks to confirm.
pub async fn confirm(viewer: Viewer, query: web::Query<RemoveQuery>) -> AppResult<HttpResponse> {
    if viewer.is_staff_view() {
        return Err(AppError::forbidden(viewer.lang.t("staff.read_only")));
    }
    let (list, id, sent) = parse_remove(&query)?;
    let address = removal_address(&viewer, list, id, sent).await?;
    let scope = viewer.scope();
    let lookup_address = address.clone();
    let entries = with_db(viewer.state(), move |conn| {
        Ok(lists::entries_for_address(conn, &scope, &lookup_address)?)
    })
    .await?;
    let entry = entries
        .into_iter()
        .find(|e| e.list == list && e.id == id)
        .ok_or(AppError::NotFound)?;
    let zone = viewer.account.zone();
    let back = if viewer.masks() {
        format!(
            "/lookup?{}",
            query_string(&[("entry", &format!("{}:{id}", list.code()))])
        )
    } else {
        format!("/lookup?{}", query_string(&[("address", &address)]))
    };
    let row = EntryRow::of(&viewer, &entry, &zone, now_ms());
    let page = ConfirmPage {
        ctx: viewer.page("/lookup"),
        spam_warning: list == ListKind::SpamReports,
        entry: row,
        list: list.code().to_string(),
        id,
        address: if viewer.masks() {
            String::new()
        } else {
            address
        },
        back,
    };
    render(page, 200)
}

#[derive(Deserialize)]
pub struct RemoveForm {
    list: String,
    id: String,
    address: Option<String>,
}

/// `POST /lookup/remove`: removes the entry (CSRF-checked), audited, and goes back.
pub async fn remove(viewer: Viewer, form: web::Form<RemoveForm>) -> AppResult<HttpResponse> {
    if viewer.is_staff_view() {
        return Err(AppError::forbidden(viewer.lang.t("staff.read_only")));
    }
    let form = form.into_inner();
    let (list, id, sent) = parse_remove(&RemoveQuery {
        list: form.list,
        id: form.id,
        address: form.address,
    })?;
    let address = removal_address(&viewer, list, id, sent).await?;
    let scope = viewer.scope();
    let removed = with_db(viewer.state(), move |conn| {
        Ok(lists::remove_entry(conn, &scope, list, id)?)
    })
    .await?;
    if !removed {
        return Err(AppError::NotFound);
    }
    viewer
        .audit("list.remove", format!("{} #{id} {address}", list.code()))
        .await?;
    if viewer.masks() {
        return Ok(redirect("/lookup?removed=1"));
    }
    Ok(redirect(&format!(
        "/lookup?{}",
        query_string(&[("address", &address), ("removed", "1")])
    )))
}

/// Where a list entry came from, in the viewer's language (`ui`, `api`, `delivery`, …).
pub fn source_shown(lang: super::lang::Lang, source: &str) -> String {
    match source {
        "ui" | "api" | "delivery" | "recipient" => lang.t(&format!("lookup.source_{source}")),
        other => other.to_string(),
    }
}
