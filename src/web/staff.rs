//! `/staff` for support staff: find an account, look up an address or an emailId across
//! every account, and read the audit log. Every look at customer data is audited.

use actix_web::http::StatusCode;
use actix_web::{web, Responder};
use askama::Template;
use askama_web::WebTemplate;
use chrono::Utc;
use serde::Deserialize;

use super::auth::Viewer;
use super::filters::text;
use super::lang::Lang;
use super::layout::PageCtx;
use super::{with_db, AppError, AppResult};
use crate::domain::{format_in_zone, normalize_address, EmailAddress, Period};
use crate::store::audit::{self, AuditFilter};
use crate::store::models::{Account, Message};
use crate::store::{accounts, messages, AccountScope};

fn require_staff(viewer: &Viewer) -> AppResult<()> {
    if viewer.is_staff() {
        Ok(())
    } else {
        Err(AppError::forbidden(viewer.lang.t("settings.staff_only")))
    }
}

#[derive(Deserialize, Default)]
pub struct StaffQuery {
    q: Option<String>,
    address: Option<String>,
    email_id: Option<String>,
}

pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub time_zone: String,
    pub created: String,
}

pub struct HitRow {
    pub account_id: i64,
    pub account: String,
    pub id: i64,
    pub email_id: String,
    pub recipient: String,
    pub status_code: &'static str,
    pub tone: &'static str,
    pub status: String,
    pub reason: String,
    pub requested: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "staff/page.html")]
pub struct StaffPage {
    ctx: PageCtx,
    q: String,
    address: String,
    email_id: String,
    accounts: Vec<AccountRow>,
    hits: Vec<HitRow>,
    searched: bool,
    error: Option<String>,
}

pub async fn page(viewer: Viewer, query: web::Query<StaffQuery>) -> AppResult<impl Responder> {
    require_staff(&viewer)?;
    let lang = viewer.lang;
    let q = query.q.clone().unwrap_or_default();
    let address = query.address.clone().unwrap_or_default();
    let email_id = query.email_id.clone().unwrap_or_default();
    let mut error = None;
    let wanted_address = if address.trim().is_empty() {
        None
    } else {
        match EmailAddress::parse(&address) {
            Some(a) => Some(a.as_str().to_string()),
            None => {
                error = Some(lang.t("lookup.bad_address"));
                None
            }
        }
    };
    let wanted_email_id = Some(email_id.trim().to_string()).filter(|s| !s.is_empty());
    let needle = q.trim().to_lowercase();
    let (all, hits) = search(&viewer, wanted_address.clone(), wanted_email_id.clone()).await?;
    if let Some(a) = &wanted_address {
        viewer
            .audit("staff.search_address", normalize_address(a))
            .await?;
    }
    if let Some(e) = &wanted_email_id {
        viewer.audit("staff.search_email_id", e.clone()).await?;
    }
    let accounts = all
        .iter()
        .filter(|a| needle.is_empty() || a.name.to_lowercase().contains(&needle))
        .map(|a| AccountRow {
            id: a.id,
            name: a.name.clone(),
            time_zone: a.time_zone.clone(),
            created: format_in_zone(a.created_at, &viewer.account.zone()),
        })
        .collect();
    let hits = hits
        .into_iter()
        .map(|(account, m)| HitRow::of(&account, &m, lang))
        .collect();
    let page = StaffPage {
        ctx: viewer.page("/staff"),
        searched: wanted_address.is_some() || wanted_email_id.is_some(),
        q,
        address,
        email_id,
        accounts,
        hits,
        error: error.clone(),
    };
    let status = match error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    Ok(page.customize().with_status(status))
}

/// Every account, and the messages of any account to `address` (its newest 20) or with
/// `email_id`: accounts are few, each is searched through its own scoped, indexed query.
async fn search(
    viewer: &Viewer,
    address: Option<String>,
    email_id: Option<String>,
) -> AppResult<(Vec<Account>, Vec<(Account, Message)>)> {
    with_db(viewer.state(), move |conn| {
        let all = accounts::list_accounts(conn)?;
        let mut hits: Vec<(Account, Message)> = Vec::new();
        for account in &all {
            let scope = AccountScope::new(account.id);
            if let Some(address) = &address {
                for m in messages::for_recipient(conn, &scope, address, 20)? {
                    hits.push((account.clone(), m));
                }
            }
            if let Some(email_id) = &email_id {
                if let Some(m) = messages::by_email_id(conn, &scope, email_id)? {
                    hits.push((account.clone(), m));
                }
            }
        }
        Ok((all, hits))
    })
    .await
}

impl HitRow {
    /// A message found, its address masked when its account masks addresses.
    fn of(account: &Account, m: &Message, lang: Lang) -> Self {
        HitRow {
            account_id: account.id,
            recipient: if account.mask_addresses {
                crate::domain::mask_address(&m.recipient)
            } else {
                m.recipient.clone()
            },
            account: account.name.clone(),
            id: m.id,
            email_id: m.email_id.clone(),
            status_code: m.status().code(),
            tone: m.status().tone(),
            status: m.status().label(lang.code()).to_string(),
            reason: m.reason_label(lang.code()),
            requested: format_in_zone(m.requested_at, &account.zone()),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    account: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub struct AuditRowView {
    pub id: i64,
    pub when: String,
    pub actor: String,
    pub action: String,
    pub account: String,
    pub target: String,
    pub ip: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "staff/audit.html")]
pub struct AuditPage {
    ctx: PageCtx,
    account: String,
    actor: String,
    action: String,
    from: String,
    to: String,
    rows: Vec<AuditRowView>,
    error: Option<String>,
}

/// `/staff/audit`: the newest 500 entries matching the filter.
pub async fn audit_page(
    viewer: Viewer,
    query: web::Query<AuditQuery>,
) -> AppResult<impl Responder> {
    require_staff(&viewer)?;
    let lang = viewer.lang;
    let zone = viewer.account.zone();
    let mut error = None;
    let (from_ms, to_ms) = audit_period(&query, &zone).unwrap_or_else(|| {
        error = Some(lang.t("staff.bad_period"));
        (None, None)
    });
    let all = with_db(viewer.state(), |conn| Ok(accounts::list_accounts(conn)?)).await?;
    let account_id = text(&query.account).map(|name| {
        all.iter()
            .find(|a| a.name == name || a.id.to_string() == name)
            .map(|a| a.id)
            .unwrap_or_else(|| {
                error = Some(lang.t("staff.no_account"));
                -1
            })
    });
    let filter = AuditFilter {
        account_id,
        actor_email: text(&query.actor).map(|a| normalize_address(&a)),
        action: text(&query.action),
        from_ms,
        to_ms,
    };
    let rows = with_db(viewer.state(), move |conn| {
        Ok(audit::search(conn, &filter, 500)?)
    })
    .await?;
    let name_of = |id: Option<i64>| {
        id.and_then(|id| all.iter().find(|a| a.id == id))
            .map(|a| a.name.clone())
            .unwrap_or_default()
    };
    let page = AuditPage {
        ctx: viewer.page("/staff"),
        account: query.account.clone().unwrap_or_default(),
        actor: query.actor.clone().unwrap_or_default(),
        action: query.action.clone().unwrap_or_default(),
        from: query.from.clone().unwrap_or_default(),
        to: query.to.clone().unwrap_or_default(),
        rows: rows
            .into_iter()
            .map(|r| AuditRowView {
                id: r.id,
                when: format_in_zone(r.occurred_at, &zone),
                account: name_of(r.account_id),
                actor: r.actor_email,
                action: r.action,
                target: r.target,
                ip: r.ip,
            })
            .collect(),
        error: error.clone(),
    };
    let status = match error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    Ok(page.customize().with_status(status))
}

/// The audit filter's `from`/`to` as UTC bounds (none when both are blank); None when they
/// do not make a period.
fn audit_period(query: &AuditQuery, zone: &chrono_tz::Tz) -> Option<(Option<i64>, Option<i64>)> {
    if text(&query.from).is_none() && text(&query.to).is_none() {
        return Some((None, None));
    }
    let today = Utc::now().with_timezone(zone).date_naive();
    let period = Period::parse(query.from.as_deref(), query.to.as_deref(), today).ok()?;
    let (a, b) = period.bounds(zone);
    Some((Some(a), Some(b)))
}
