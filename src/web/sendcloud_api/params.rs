//! A call's parameters: the query string and a form body, `;`-separated lists, the window
//! (`days` or `startDate` + `endDate`) and the page (`start`, `limit`).

use actix_web::http::header;
use actix_web::HttpRequest;
use chrono::{Duration, NaiveDate};

use super::answer::SendCloudError;
use super::{code, MAX_LIMIT, MAX_LIST_VALUES};
use crate::domain::Period;
use crate::store::OffsetPage;

/// The parameters of a call: the query string, then a form body. A name given twice takes
/// its last value; an empty value counts as absent.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn read(req: &HttpRequest, body: &[u8]) -> Result<Params, SendCloudError> {
        let mut pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .into_owned()
                .collect();
        if !body.is_empty() {
            let multipart = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("multipart/"));
            if multipart {
                return Err(SendCloudError::new(
                    code::BAD_PARAMETER,
                    "参数请放在查询字符串或 application/x-www-form-urlencoded 表单中",
                ));
            }
            pairs.extend(url::form_urlencoded::parse(body).into_owned());
        }
        Ok(Params(pairs))
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn list(&self, name: &str) -> Result<Vec<String>, SendCloudError> {
        split_list(self.get(name), MAX_LIST_VALUES).ok_or_else(|| {
            SendCloudError::new(
                code::BAD_PARAMETER,
                format!("{name} 最多 {MAX_LIST_VALUES} 个值"),
            )
        })
    }
}

/// `a;b;c` (also `[a;b]`, as SendCloud's own examples write it) without blanks and repeats;
/// None as soon as more than `max` distinct values are met. Linear in the input: repeats are
/// found with a set, and nothing past the cap is looked at.
pub(super) fn split_list(raw: Option<&str>, max: usize) -> Option<Vec<String>> {
    let raw = raw.unwrap_or("");
    let inner = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    let mut seen = std::collections::HashSet::new();
    let mut values: Vec<String> = Vec::new();
    for v in inner.split(';').map(str::trim).filter(|v| !v.is_empty()) {
        if seen.insert(v) {
            if values.len() == max {
                return None;
            }
            values.push(v.to_string());
        }
    }
    Some(values)
}

/// `days` (1 is today, N the last N days including today) or `startDate` + `endDate`
/// (inclusive), at most `max_days` long; `None` when neither is given.
pub(super) fn window(
    days: Option<&str>,
    start_date: Option<&str>,
    end_date: Option<&str>,
    today: NaiveDate,
    max_days: i64,
) -> Result<Option<Period>, SendCloudError> {
    let too_long = || {
        SendCloudError::new(
            code::WINDOW_TOO_LONG,
            format!("时间区间不能超过 {max_days} 天"),
        )
    };
    if let Some(days) = days {
        if start_date.is_some() || end_date.is_some() {
            return Err(SendCloudError::new(
                code::BAD_PARAMETER,
                "days 与 startDate/endDate 只能二选一",
            ));
        }
        let n: i64 = days
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| SendCloudError::new(code::BAD_DAYS, "days 须为大于 0 的整数"))?;
        if n > max_days {
            return Err(too_long());
        }
        return Ok(Some(Period {
            from: today - Duration::days(n - 1),
            to: today,
        }));
    }
    let date = |raw: Option<&str>, code: u32, name: &str| {
        let raw = raw.ok_or_else(|| {
            SendCloudError::new(
                code,
                format!("{name} 不能为空 (startDate 与 endDate 须同时给出)"),
            )
        })?;
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| SendCloudError::new(code, format!("{name} 格式不合法, 应为 yyyy-MM-dd")))
    };
    if start_date.is_none() && end_date.is_none() {
        return Ok(None);
    }
    let from = date(start_date, code::BAD_START_DATE, "startDate")?;
    let to = date(end_date, code::BAD_END_DATE, "endDate")?;
    if to < from {
        return Err(SendCloudError::new(
            code::BAD_END_DATE,
            "endDate 不能早于 startDate",
        ));
    }
    if (to - from).num_days() + 1 > max_days {
        return Err(too_long());
    }
    Ok(Some(Period { from, to }))
}

/// `start` (an offset, 0 when absent) and `limit` (0–100, 100 when absent).
pub(super) fn offset_page(
    start: Option<&str>,
    limit: Option<&str>,
) -> Result<OffsetPage, SendCloudError> {
    let start = match start {
        None => 0,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| SendCloudError::new(code::BAD_START, "start 须为不小于 0 的整数"))?,
    };
    let limit = match limit {
        None => MAX_LIMIT,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                SendCloudError::new(
                    code::BAD_LIMIT,
                    format!("limit 须为 0 到 {MAX_LIMIT} 的整数"),
                )
            })?,
    };
    Ok(OffsetPage { start, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn code_of<T: std::fmt::Debug>(r: Result<T, SendCloudError>) -> u32 {
        r.expect_err("an error").code
    }

    #[test]
    fn windows_follow_sendcloud() {
        let today = d("2026-11-27");
        assert_eq!(window(None, None, None, today, 30).unwrap(), None);
        assert_eq!(
            window(Some("1"), None, None, today, 30).unwrap(),
            Some(Period::today(today))
        );
        assert_eq!(
            window(Some("30"), None, None, today, 30).unwrap(),
            Some(Period {
                from: d("2026-10-29"),
                to: today
            })
        );
        assert_eq!(
            code_of(window(Some("31"), None, None, today, 30)),
            code::WINDOW_TOO_LONG
        );
        assert_eq!(
            code_of(window(Some("0"), None, None, today, 30)),
            code::BAD_DAYS
        );
        assert_eq!(
            code_of(window(Some("x"), None, None, today, 30)),
            code::BAD_DAYS
        );
        assert_eq!(
            code_of(window(Some("99999999999999"), None, None, today, 30)),
            code::WINDOW_TOO_LONG
        );
        assert_eq!(
            window(None, Some("2026-11-01"), Some("2026-11-30"), today, 30).unwrap(),
            Some(Period {
                from: d("2026-11-01"),
                to: d("2026-11-30")
            })
        );
        assert_eq!(
            code_of(window(
                None,
                Some("2026-11-01"),
                Some("2026-12-01"),
                today,
                30
            )),
            code::WINDOW_TOO_LONG
        );
        assert_eq!(
            code_of(window(None, Some("2026-11-01"), None, today, 30)),
            code::BAD_END_DATE
        );
        assert_eq!(
            code_of(window(None, None, Some("2026-11-01"), today, 30)),
            code::BAD_START_DATE
        );
        assert_eq!(
            code_of(window(
                None,
                Some("2026/11/01"),
                Some("2026-11-02"),
                today,
                30
            )),
            code::BAD_START_DATE
        );
        assert_eq!(
            code_of(window(
                None,
                Some("2026-11-05"),
                Some("2026-11-02"),
                today,
                30
            )),
            code::BAD_END_DATE
        );
        assert_eq!(
            code_of(window(Some("1"), Some("2026-11-05"), None, today, 30)),
            code::BAD_PARAMETER
        );
    }

    #[test]
    fn paging_and_lists() {
        assert_eq!(
            offset_page(None, None).unwrap(),
            OffsetPage {
                start: 0,
                limit: 100
            }
        );
        assert_eq!(
            offset_page(Some("200"), Some("0")).unwrap(),
            OffsetPage {
                start: 200,
                limit: 0
            }
        );
        assert_eq!(code_of(offset_page(Some("-1"), None)), code::BAD_START);
        assert_eq!(code_of(offset_page(None, Some("101"))), code::BAD_LIMIT);
        assert_eq!(code_of(offset_page(None, Some("ten"))), code::BAD_LIMIT);
        assert_eq!(
            split_list(Some("a; b;;a;c"), 10).unwrap(),
            vec!["a", "b", "c"]
        );
        assert_eq!(split_list(Some("[x;y]"), 10).unwrap(), vec!["x", "y"]);
        assert!(split_list(None, 10).unwrap().is_empty());
        assert!(split_list(Some("a;b;a;b"), 2).is_some());
        assert!(split_list(Some("a;b;c"), 2).is_none());
    }
}
