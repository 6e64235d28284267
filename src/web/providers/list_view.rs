//! The view model of `/providers`: its rows, their sort and its column headers.

use super::*;

/// One row of `/providers`.
pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub href: String,
    pub requests: i64,
    pub requests_shown: String,
    pub requests_href: String,
    pub delivered: String,
    pub delivered_href: String,
    pub soft: String,
    pub soft_href: String,
    pub invalid: String,
    pub invalid_href: String,
    pub opened: String,
    pub clicked: String,
    pub top_reason: Option<(String, String, String)>,
    pub change_requests: String,
    pub change_delivered: String,
    pub change_tone: &'static str,
    pub spark: Spark,
    pub(super) sort_keys: [f64; 7],
}

pub struct SortLink {
    pub key: &'static str,
    pub label: String,
    pub href: String,
    pub aria: &'static str,
    pub numeric: bool,
}

pub(super) const SORTS: [(&str, &str); 8] = [
    ("provider", "providers.provider"),
    ("requests", "providers.requests"),
    ("delivered", "providers.delivered"),
    ("soft_bounce", "providers.soft_bounce"),
    ("invalid", "providers.invalid"),
    ("open", "providers.open"),
    ("click", "providers.click"),
    ("change", "providers.change"),
];

#[derive(Template)]
#[template(path = "providers/list.html")]
pub(super) struct ListPage {
    pub(super) ctx: PageCtx,
    pub(super) ranges: Vec<RangeChoice>,
    pub(super) period: String,
    pub(super) columns: Vec<SortLink>,
    pub(super) rows: Vec<ProviderRow>,
    pub(super) others: Option<String>,
    pub(super) is_owner: bool,
    pub(super) domains: Vec<(String, String)>,
    pub(super) message: Option<String>,
    pub(super) error: Option<String>,
}

/// The rows of `/providers` for the period, each with its change against the period before:
/// the `max` providers with the most requests (only those rows are built), and how many
/// providers and requests the rest hold.
/// What `/providers` reads: the period's counts, and the totals of the period before it.
pub(super) struct PeriodCounts<'a> {
    pub(super) current: &'a store::Period,
    pub(super) previous: &'a [store::ProviderCount],
}

pub(super) fn provider_rows(
    window: &Window,
    counts: &PeriodCounts<'_>,
    account: &str,
    max: usize,
    lang: crate::web::lang::Lang,
) -> (Vec<ProviderRow>, usize, i64) {
    let mut figures: Vec<(String, Figures)> = figures_by_provider(&counts.current.totals)
        .into_iter()
        .filter(|(_, f)| f.requests() > 0)
        .collect();
    // The biggest first; the sort asked for applies over them.
    figures.sort_by(|a, b| b.1.requests().cmp(&a.1.requests()).then(a.0.cmp(&b.0)));
    let hidden = figures.split_off(figures.len().min(max));
    let shown: HashMap<&str, usize> = figures
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i))
        .collect();
    let buckets = window.buckets().count();
    let mut points = vec![vec![(0i64, 0i64); buckets]; figures.len()];
    for r in &counts.current.buckets {
        if let (Some(&i), Ok(t)) = (shown.get(r.provider.as_str()), usize::try_from(r.time)) {
            if let Some(point) = points[i].get_mut(t) {
                add_to_bucket(point, r);
            }
        }
    }
    let mut before = figures_by_provider(counts.previous);
    let rows = figures
        .iter()
        .zip(&points)
        .map(|((id, f), series)| {
            let b = before.remove(id).unwrap_or_default();
            provider_row(window, id, f, &b, series, account, lang)
        })
        .collect();
    let hidden_requests = hidden.iter().map(|(_, f)| f.requests()).sum();
    (rows, hidden.len(), hidden_requests)
}

/// Sorts the rows as asked; the sort key and whether it ascends.
pub(super) fn sort_rows<'q>(
    rows: &mut [ProviderRow],
    query: &'q ProvidersQuery,
) -> (&'q str, bool) {
    let sort = query
        .sort
        .as_deref()
        .filter(|s| SORTS.iter().any(|(k, _)| k == s))
        .unwrap_or("requests");
    let ascending = query.dir.as_deref() == Some("asc");
    if sort == "provider" {
        rows.sort_by_key(|a| a.name.to_lowercase());
    } else if let Some(i) = SORTS.iter().position(|(k, _)| *k == sort) {
        let i = i - 1;
        rows.sort_by(|a, b| {
            b.sort_keys[i]
                .partial_cmp(&a.sort_keys[i])
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.requests.cmp(&a.requests))
        });
    }
    if ascending != (sort == "provider") {
        rows.reverse();
    }
    (sort, ascending)
}

/// The column headers of `/providers`, each a link that sorts by it.
pub(super) fn sort_columns(
    sort: &str,
    ascending: bool,
    days: i64,
    extra: &str,
    lang: crate::web::lang::Lang,
) -> Vec<SortLink> {
    SORTS
        .iter()
        .map(|(key, label)| {
            let active = *key == sort;
            let next_dir = match (active, ascending, *key == "provider") {
                (true, true, _) => "desc",
                (true, false, _) => "asc",
                (false, _, true) => "asc",
                (false, _, false) => "desc",
            };
            SortLink {
                key,
                label: lang.t(label),
                href: format!("/providers?days={}&sort={key}&dir={next_dir}{extra}", days),
                aria: match (active, ascending) {
                    (false, _) => "none",
                    (true, true) => "ascending",
                    (true, false) => "descending",
                },
                numeric: *key != "provider",
            }
        })
        .collect()
}

/// The account's own domains with the provider each is mapped to, named.
pub(super) fn domain_names(
    domains: Vec<(String, String)>,
    lang: crate::web::lang::Lang,
) -> Vec<(String, String)> {
    domains
        .into_iter()
        .map(|(d, p)| {
            let name = provider_name(&p, lang.code());
            (
                d,
                if name == p {
                    p
                } else {
                    format!("{name} ({p})")
                },
            )
        })
        .collect()
}

/// One provider's row of `/providers`: its figures, their change and its sparkline.
fn provider_row(
    window: &Window,
    id: &str,
    f: &Figures,
    b: &Figures,
    series: &[(i64, i64)],
    account: &str,
    lang: crate::web::lang::Lang,
) -> ProviderRow {
    let (change_requests, change_delivered, change_tone) = change_of(f, b, lang);
    let href = |s: Option<Status>, r: Option<Reason>| window.status_href(id, s, r, account);
    let name = provider_name(id, lang.code());
    let delivered = f.rate(f.count(Status::Delivered));
    let delivered_before = b.rate(b.count(Status::Delivered));
    ProviderRow {
        href: format!(
            "/providers/{}?days={}{}",
            id,
            window.days,
            with_account(account, "&")
        ),
        requests: f.requests(),
        requests_shown: grouped(f.requests()),
        requests_href: href(None, None),
        delivered: pct(delivered),
        delivered_href: href(Some(Status::Delivered), None),
        soft: pct(f.rate(f.count(Status::SoftBounce))),
        soft_href: href(Some(Status::SoftBounce), None),
        invalid: pct(f.rate(f.count(Status::Invalid))),
        invalid_href: href(Some(Status::Invalid), None),
        opened: pct(f.engagement(f.opened)),
        clicked: pct(f.engagement(f.clicked)),
        top_reason: f.top_reason().map(|(s, r, n)| {
            (
                r.label_in(s, lang.code()).to_string(),
                pct(Some(n as f64 * 100.0 / f.failures().max(1) as f64)),
                href(Some(s), Some(r)),
            )
        }),
        change_requests,
        change_delivered,
        change_tone,
        spark: spark(series, lang.t("providers.spark").replace("{name}", &name)),
        sort_keys: [
            f.requests() as f64,
            delivered.unwrap_or(-1.0),
            f.rate(f.count(Status::SoftBounce)).unwrap_or(-1.0),
            f.rate(f.count(Status::Invalid)).unwrap_or(-1.0),
            f.engagement(f.opened).unwrap_or(-1.0),
            f.engagement(f.clicked).unwrap_or(-1.0),
            match (delivered, delivered_before) {
                (Some(x), Some(y)) => x - y,
                _ => 0.0,
            },
        ],
        name,
        id: id.to_string(),
    }
}
