//! `/providers` (邮箱服务商): one row per mailbox provider over 1, 7 or 30 days of the account's
//! zone — requests, delivered, soft-bounce and invalid rates, open and click rates, the top
//! reason, the change against the period before, a sparkline — and `/providers/{id}`, one
//! provider's trend, reasons, its servers' most frequent replies and its recent failures.
//! Counts come from the provider rollup; only the provider page's replies and failures read
//! messages, on the provider's own index.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::auth::Viewer;
use super::layout::{grouped, PageCtx};
use super::{with_db, AppError, AppResult};
use crate::domain::providers::{
    is_domain, is_provider_id, is_provider_name, known_provider, normalize_domain, provider_name,
};
use crate::domain::{day_start, format_in_zone, now_ms, Reason, Status};
use crate::store::providers::{self as store, CLICKED, OPENED};
use crate::store::rollup::HOUR_MS;

mod list_view;
mod model;
mod page_view;

use list_view::*;
pub use model::reply_shape;
use model::*;
use page_view::*;

const RANGES: [i64; 3] = [1, 7, 30];
/// Rows shown on `/providers`; the rest are summed in one line.
const MAX_ROWS: usize = 50;
/// Failures read for the most frequent replies, newest first.
const REPLY_SAMPLE: i64 = 500;

#[derive(Debug, Default, Deserialize)]
pub struct ProvidersQuery {
    pub days: Option<String>,
    pub sort: Option<String>,
    pub dir: Option<String>,
    pub account: Option<String>,
}

fn account_query(viewer: &Viewer) -> String {
    if viewer.is_staff_view() {
        viewer.account.id.to_string()
    } else {
        String::new()
    }
}

/// `?account=…` or `&account=…` for staff viewing an account, or nothing.
fn with_account(account: &str, sep: &str) -> String {
    if account.is_empty() {
        String::new()
    } else {
        format!("{sep}account={account}")
    }
}

fn is_owner(viewer: &Viewer) -> bool {
    viewer.role() == crate::domain::Role::Owner && !viewer.is_staff_view()
}

/// `GET /providers`.
pub async fn list(viewer: Viewer, query: web::Query<ProvidersQuery>) -> AppResult<HttpResponse> {
    render_list(&viewer, &query, None, None).await
}

async fn render_list(
    viewer: &Viewer,
    query: &ProvidersQuery,
    message: Option<String>,
    error: Option<String>,
) -> AppResult<HttpResponse> {
    let lang = viewer.lang;
    let window = Window::of(viewer, days_of(query));
    let scope = viewer.scope();
    let (from_hour, before_hour, bounds) =
        (window.from_hour, window.before_hour, window.bounds.clone());
    // The period's two halves and the period before it, read side by side.
    let (first, second, (previous, domains)) = futures_util::future::try_join3(
        half(viewer, scope, bounds.clone(), None, store::Half::First),
        half(viewer, scope, bounds, None, store::Half::Second),
        with_db(viewer.state(), move |conn| {
            Ok((
                store::totals(conn, &scope, before_hour, from_hour, None)?,
                store::account_domains(conn, &scope)?,
            ))
        }),
    )
    .await?;
    let current = first.merged(second);
    let account = account_query(viewer);
    let counts = PeriodCounts {
        current: &current,
        previous: &previous,
    };
    let (mut rows, hidden, hidden_requests) =
        provider_rows(&window, &counts, &account, MAX_ROWS, lang);
    let (sort, ascending) = sort_rows(&mut rows, query);
    let others = (hidden > 0).then(|| {
        lang.t("providers.others")
            .replace("{n}", &grouped(hidden as i64))
            .replace("{messages}", &grouped(hidden_requests))
    });
    let extra = with_account(&account, "&");
    let columns = sort_columns(sort, ascending, window.days, &extra, lang);
    let page = ListPage {
        ctx: viewer.page("/providers"),
        ranges: ranges(viewer, "/providers", window.days, &extra),
        period: format!("{} – {}", window.from, window.to),
        columns,
        rows,
        others,
        is_owner: is_owner(viewer),
        domains: domain_names(domains, lang),
        message,
        error: error.clone(),
    };
    let html = page.render().map_err(AppError::internal)?;
    let code = if error.is_some() { 400 } else { 200 };
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap_or_default())
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
}

#[derive(Debug, Deserialize)]
pub struct DomainForm {
    pub domain: String,
    #[serde(default)]
    pub provider: String,
}

/// `POST /providers/domains`: an owner maps one of the account's own domains to a provider.
pub async fn add_domain(viewer: Viewer, form: web::Form<DomainForm>) -> AppResult<HttpResponse> {
    let lang = viewer.lang;
    if !is_owner(&viewer) {
        return Err(AppError::forbidden(lang.t("settings.owners_only")));
    }
    let domain = normalize_domain(form.domain.trim_start_matches('@'));
    let provider = form.provider.trim().to_lowercase();
    let query = ProvidersQuery::default();
    if !is_domain(&domain) {
        return render_list(&viewer, &query, None, Some(lang.t("providers.bad_domain"))).await;
    }
    if !is_provider_name(&provider) && !is_domain(&provider) {
        return render_list(&viewer, &query, None, Some(lang.t("providers.bad_name"))).await;
    }
    let scope = viewer.scope();
    let (d, p) = (domain.clone(), provider.clone());
    // The mail already stored of the domain moves to the new provider with its counts.
    with_db(viewer.state(), move |conn| {
        let old = mapping_of(conn, &scope, &d)?;
        store::set_account_domain(conn, &scope, &d, &p, now_ms())?;
        let mapped: Vec<&str> = old.iter().map(String::as_str).chain([p.as_str()]).collect();
        Ok(store::refile_domain(conn, &scope, &d, &mapped)?)
    })
    .await?;
    viewer
        .audit("providers.domain_set", format!("{domain} {provider}"))
        .await?;
    render_list(
        &viewer,
        &query,
        Some(lang.t("providers.domain_saved")),
        None,
    )
    .await
}

/// `POST /providers/domains/delete`.
pub async fn remove_domain(viewer: Viewer, form: web::Form<DomainForm>) -> AppResult<HttpResponse> {
    let lang = viewer.lang;
    if !is_owner(&viewer) {
        return Err(AppError::forbidden(lang.t("settings.owners_only")));
    }
    let domain = normalize_domain(&form.domain);
    let scope = viewer.scope();
    let d = domain.clone();
    with_db(viewer.state(), move |conn| {
        let old = mapping_of(conn, &scope, &d)?;
        if store::remove_account_domain(conn, &scope, &d)? {
            let mapped: Vec<&str> = old.iter().map(String::as_str).collect();
            store::refile_domain(conn, &scope, &d, &mapped)?;
        }
        Ok(())
    })
    .await?;
    viewer.audit("providers.domain_remove", domain).await?;
    render_list(
        &viewer,
        &ProvidersQuery::default(),
        Some(lang.t("providers.domain_removed")),
        None,
    )
    .await
}

/// The provider the account maps `domain` to, if it does.
fn mapping_of(
    conn: &mut crate::db::DbConn,
    scope: &crate::store::AccountScope,
    domain: &str,
) -> crate::store::StoreResult<Option<String>> {
    Ok(store::account_domains(conn, scope)?
        .into_iter()
        .find(|(d, _)| d == domain)
        .map(|(_, p)| p))
}

/// Half of a period's counts, on a connection of its own.
async fn half(
    viewer: &Viewer,
    scope: crate::store::AccountScope,
    bounds: Vec<i64>,
    provider: Option<String>,
    half: store::Half,
) -> AppResult<store::Period> {
    with_db(viewer.state(), move |conn| {
        Ok(store::period_half(
            conn,
            &scope,
            &bounds,
            provider.as_deref(),
            half,
        )?)
    })
    .await
}

/// `GET /providers/{id}`.
pub async fn page(
    viewer: Viewer,
    id: web::Path<String>,
    query: web::Query<ProvidersQuery>,
) -> AppResult<HttpResponse> {
    let lang = viewer.lang;
    let id = id.into_inner().to_lowercase();
    if !is_provider_id(&id) {
        return Err(AppError::NotFound);
    }
    let window = Window::of(&viewer, days_of(&query));
    let zone = viewer.account.zone();
    let scope = viewer.scope();
    let from_ms = window.from_hour * HOUR_MS;
    let to_ms = window.to_hour * HOUR_MS;
    let (bounds, by_day) = (window.bounds.clone(), window.by_day());
    let pid = id.clone();
    // The period's two halves and the newest failures, read side by side.
    let (first, second, failures) = futures_util::future::try_join3(
        half(
            &viewer,
            scope,
            bounds.clone(),
            Some(pid.clone()),
            store::Half::First,
        ),
        half(
            &viewer,
            scope,
            bounds,
            Some(pid.clone()),
            store::Half::Second,
        ),
        with_db(viewer.state(), move |conn| {
            Ok(store::recent_failures(
                conn,
                &scope,
                &pid,
                from_ms,
                to_ms,
                REPLY_SAMPLE,
            )?)
        }),
    )
    .await?;
    let series = first.merged(second);
    let account = account_query(&viewer);
    let account_param = with_account(&account, "?");
    let extra = with_account(&account, "&");
    let mut f = Figures::default();
    let mut per_bucket: HashMap<i64, (i64, i64)> = HashMap::new();
    for r in &series.totals {
        f.add(r.status, r.reason, r.count);
    }
    for r in &series.buckets {
        add_to_bucket(per_bucket.entry(r.time).or_default(), r);
    }
    let href = |s: Option<Status>, r: Option<Reason>| window.status_href(&id, s, r, &account);
    let kpis = kpis(&f, &href, lang);
    let trend = trend_bars(&window, &per_bucket, lang, &zone);
    let reasons = reason_rows(&f, &href, lang);
    let replies = reply_rows(&viewer, &failures, &zone);
    let failures = failure_rows(&viewer, &failures, &zone, &account_param);
    let known = known_provider(&id);
    let page = ProviderPage {
        ctx: viewer.page("/providers"),
        name: provider_name(&id, lang.code()),
        known: known.is_some(),
        domains: known.map(|p| p.domains.join(", ")).unwrap_or_default(),
        ranges: ranges(&viewer, &format!("/providers/{id}"), window.days, &extra),
        period: format!("{} – {}", window.from, window.to),
        kpis,
        trend_title: lang.t(if by_day {
            "providers.trend_days"
        } else {
            "providers.trend_hours"
        }),
        trend,
        reasons,
        replies,
        replies_note: lang
            .t("providers.replies_note")
            .replace("{n}", &grouped(REPLY_SAMPLE)),
        failures,
        failures_href: format!(
            "{}&status=invalid",
            window.status_href(&id, None, None, &account)
        ),
        back_href: format!("/providers?days={}{extra}", window.days),
        id,
    };
    let html = page.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

#[cfg(test)]
mod tests {
    use super::reply_shape;

    #[test]
    fn replies_group_by_shape() {
        let a =
            reply_shape("550 5.1.1 <alice.1@163.com>: Recipient address rejected: User unknown");
        let b = reply_shape("550 5.1.1 <bob.22@163.com>: Recipient address rejected: User unknown");
        assert_eq!(a, b);
        assert!(a.contains("…@163.com") && !a.contains("alice"), "{a}");
        assert_eq!(
            reply_shape("451 4.7.1 queued as 8F3A2B1C9D"),
            reply_shape("451 4.7.1 queued as 1234ABCD77")
        );
        assert_ne!(reply_shape("550 5.1.1 no"), reply_shape("554 5.7.1 spam"));
    }
}
