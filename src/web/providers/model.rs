//! The figures behind the providers pages: one provider's counts, the period shown and the one
//! before it, the sparkline and the range choices.

use super::*;

/// The figures of one provider over a period.
#[derive(Debug, Clone, Default)]
pub(super) struct Figures {
    pub(super) per_status: [i64; 4],
    pub(super) reasons: BTreeMap<(i16, i16), i64>,
    pub(super) opened: i64,
    pub(super) clicked: i64,
}

impl Figures {
    pub(super) fn add(&mut self, status: i16, reason: i16, n: i64) {
        match status {
            OPENED => self.opened += n,
            CLICKED => self.clicked += n,
            s if (0..4).contains(&s) => {
                self.per_status[s as usize] += n;
                if reason != 0 {
                    *self.reasons.entry((s, reason)).or_default() += n;
                }
            }
            _ => {}
        }
    }

    pub(super) fn requests(&self) -> i64 {
        self.per_status.iter().sum()
    }

    pub(super) fn count(&self, s: Status) -> i64 {
        self.per_status[s.as_i16() as usize]
    }

    pub(super) fn rate(&self, part: i64) -> Option<f64> {
        let all = self.requests();
        (all > 0).then(|| part as f64 * 100.0 / all as f64)
    }

    /// Opens and clicks against the delivered messages.
    pub(super) fn engagement(&self, part: i64) -> Option<f64> {
        let delivered = self.count(Status::Delivered);
        (delivered > 0).then(|| part as f64 * 100.0 / delivered as f64)
    }

    pub(super) fn failures(&self) -> i64 {
        self.count(Status::SoftBounce) + self.count(Status::Invalid)
    }

    /// The most frequent (status, reason) among the failures, with its count.
    pub(super) fn top_reason(&self) -> Option<(Status, Reason, i64)> {
        self.reasons
            .iter()
            .filter(|((s, _), _)| {
                *s == Status::SoftBounce.as_i16() || *s == Status::Invalid.as_i16()
            })
            .max_by_key(|(k, n)| (**n, std::cmp::Reverse(**k)))
            .and_then(|((s, r), n)| Some((Status::from_i16(*s)?, Reason::from_i16(*r)?, *n)))
    }
}

pub(super) fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "–".into())
}

/// The period of `days` days ending today in the account's zone, and the one before it.
pub(super) struct Window {
    pub(super) days: i64,
    pub(super) from: NaiveDate,
    pub(super) to: NaiveDate,
    pub(super) from_hour: i64,
    pub(super) to_hour: i64,
    pub(super) before_hour: i64,
    /// The buckets of the trend and the sparklines: bucket `i` holds the hours
    /// `[bounds[i], bounds[i + 1])`, an hour of a one-day period or a day of the zone.
    pub(super) bounds: Vec<i64>,
}

impl Window {
    pub(super) fn of(viewer: &Viewer, days: i64) -> Window {
        let zone = viewer.account.zone();
        let to = Utc::now().with_timezone(&zone).date_naive();
        let from = to - Duration::days(days - 1);
        let from_ms = day_start(&zone, from);
        let to_ms = day_start(&zone, to + Duration::days(1));
        let from_hour = from_ms.div_euclid(HOUR_MS);
        let to_hour = (to_ms + HOUR_MS - 1).div_euclid(HOUR_MS);
        let bounds = if days > 1 {
            let mut b: Vec<i64> = (0..days)
                .map(|i| day_start(&zone, from + Duration::days(i)).div_euclid(HOUR_MS))
                .collect();
            b.push(to_hour);
            b
        } else {
            (from_hour..=to_hour).collect()
        };
        Window {
            days,
            from,
            to,
            from_hour,
            to_hour,
            before_hour: from_hour - (to_hour - from_hour),
            bounds,
        }
    }

    pub(super) fn by_day(&self) -> bool {
        self.days > 1
    }

    /// The buckets' indices: hours of the day, or days of the zone.
    pub(super) fn buckets(&self) -> std::ops::Range<i64> {
        0..self.bounds.len().saturating_sub(1) as i64
    }

    /// A link into `/status` for this period, narrowed.
    pub(super) fn status_href(
        &self,
        provider: &str,
        status: Option<Status>,
        reason: Option<Reason>,
        account: &str,
    ) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("from", &self.from.to_string());
        q.append_pair("to", &self.to.to_string());
        q.append_pair("provider", provider);
        if let Some(s) = status {
            q.append_pair("status", s.code());
        }
        if let Some(r) = reason {
            q.append_pair("reason", r.code());
        }
        if !account.is_empty() {
            q.append_pair("account", account);
        }
        format!("/status?{}", q.finish())
    }
}

pub(super) fn days_of(q: &ProvidersQuery) -> i64 {
    q.days
        .as_deref()
        .and_then(|d| d.parse().ok())
        .filter(|d| RANGES.contains(d))
        .unwrap_or(7)
}

/// A small SVG: requests per bucket as bars, the failure rate as a line.
pub struct Spark {
    pub bars: Vec<(String, String, String, String)>,
    pub line: String,
    pub label: String,
}

pub(super) const SPARK_W: f64 = 120.0;
pub(super) const SPARK_H: f64 = 28.0;

pub(super) fn spark(points: &[(i64, i64)], label: String) -> Spark {
    let n = points.len().max(1) as f64;
    let max = points.iter().map(|p| p.0).max().unwrap_or(0).max(1) as f64;
    let w = SPARK_W / n;
    let mut bars = Vec::new();
    let mut line = Vec::new();
    for (i, (requests, failed)) in points.iter().enumerate() {
        let x = i as f64 * w;
        let h =
            (*requests as f64 / max * (SPARK_H - 2.0)).max(if *requests > 0 { 1.0 } else { 0.0 });
        bars.push((
            format!("{x:.1}"),
            format!("{:.1}", SPARK_H - h),
            format!("{:.1}", (w - 0.5).max(0.5)),
            format!("{h:.1}"),
        ));
        if *requests > 0 {
            let rate = *failed as f64 / *requests as f64;
            line.push(format!(
                "{:.1},{:.1}",
                x + w / 2.0,
                SPARK_H - rate * (SPARK_H - 2.0) - 1.0
            ));
        }
    }
    Spark {
        bars,
        line: line.join(" "),
        label,
    }
}

pub struct RangeChoice {
    pub days: i64,
    pub label: String,
    pub href: String,
    pub active: bool,
}

pub(super) fn ranges(viewer: &Viewer, base: &str, days: i64, extra: &str) -> Vec<RangeChoice> {
    RANGES
        .iter()
        .map(|&d| RangeChoice {
            days: d,
            label: viewer.lang.t(&format!("overview.range_{d}")),
            href: format!("{base}?days={d}{extra}"),
            active: d == days,
        })
        .collect()
}

pub(super) fn change_of(
    now: &Figures,
    before: &Figures,
    lang: crate::web::lang::Lang,
) -> (String, String, &'static str) {
    let (n, b) = (now.requests(), before.requests());
    let requests = if b == 0 {
        lang.t("providers.new")
    } else {
        format!("{:+.0}%", (n - b) as f64 * 100.0 / b as f64)
    };
    let d_now = now.rate(now.count(Status::Delivered));
    let d_before = before.rate(before.count(Status::Delivered));
    match (d_now, d_before) {
        (Some(x), Some(y)) => {
            let pp = x - y;
            let tone = if pp <= -2.0 {
                "bad"
            } else if pp >= 2.0 {
                "ok"
            } else {
                "flat"
            };
            (requests, format!("{pp:+.1} pp"), tone)
        }
        _ => (requests, "–".into(), "flat"),
    }
}

/// A reply with what varies between messages (addresses, numbers, ids) put aside, so that
/// the same answer of the same server groups as one.
pub fn reply_shape(reply: &str) -> String {
    let mut out = String::with_capacity(reply.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        let digits = token.chars().filter(char::is_ascii_digit).count();
        if let Some((_, domain)) = token.rsplit_once('@') {
            out.push_str("…@");
            out.push_str(domain);
        } else if digits >= 4 || (token.len() >= 12 && digits > 0) {
            out.push('…');
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in reply.trim().chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '@' | '+' | '=') {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out.chars().take(300).collect()
}

/// Adds a request's rollup row to its bucket: (requests, soft bounces and invalid ones).
pub(super) fn add_to_bucket(bucket: &mut (i64, i64), r: &store::ProviderCount) {
    bucket.0 += r.count;
    if r.status == Status::SoftBounce.as_i16() || r.status == Status::Invalid.as_i16() {
        bucket.1 += r.count;
    }
}

/// Each provider's figures over rollup rows.
pub(super) fn figures_by_provider(rows: &[store::ProviderCount]) -> HashMap<String, Figures> {
    let mut figures: HashMap<String, Figures> = HashMap::new();
    for r in rows {
        match figures.get_mut(&r.provider) {
            Some(f) => f.add(r.status, r.reason, r.count),
            None => {
                let mut f = Figures::default();
                f.add(r.status, r.reason, r.count);
                figures.insert(r.provider.clone(), f);
            }
        }
    }
    figures
}
