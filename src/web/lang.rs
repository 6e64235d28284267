//! The interface language: zh-CN or en, chosen by the `lang` cookie (set by the switch),
//! else by `Accept-Language`. Texts live in `locales/*.yml` (rust-i18n).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

pub const COOKIE: &str = "lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let lower = code.trim().to_ascii_lowercase();
        if lower.starts_with("zh") {
            Some(Lang::Zh)
        } else if lower.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The cookie's choice, else the first language of `Accept-Language` we speak, else zh-CN
    /// (the product's home market).
    pub fn from_request(req: &HttpRequest) -> Lang {
        if let Some(lang) = req.cookie(COOKIE).and_then(|c| Lang::parse(c.value())) {
            return lang;
        }
        let accept = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut ranked: Vec<(f32, Lang)> = accept
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let lang = Lang::parse(pieces.next()?)?;
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                    .unwrap_or(1.0);
                Some((q, lang))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.first().map(|(_, l)| *l).unwrap_or(Lang::Zh)
    }

    /// The text for `key` in this language.
    pub fn t(&self, key: &str) -> String {
        rust_i18n::t!(key, locale = self.code()).into_owned()
    }

    /// The other language, for the switch link.
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The other language's own name, shown on the switch.
    pub fn other_name(self) -> &'static str {
        match self {
            Lang::Zh => "English",
            Lang::En => "中文",
        }
    }
}

impl actix_web::FromRequest for Lang {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Lang, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(Lang::from_request(req)))
    }
}

#[derive(serde::Deserialize)]
pub struct SwitchQuery {
    next: Option<String>,
}

/// Zero-width and bidi-control characters: they make a link read otherwise than it goes.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Only paths of this site: never an open redirect. Browsers drop tabs and newlines from a
/// URL and read `\` as `/`, so `/\t/evil.test` would lead to `//evil.test`: a target must be
/// a path with no control character, no whitespace and no backslash, and must still name this
/// site, and no other scheme or host, once resolved against it. Anything else goes to `/`.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(n) = next else {
        return "/".to_string();
    };
    let plain = n.starts_with('/')
        && !n.starts_with("//")
        && n.len() <= 2048
        && !n
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || invisible(c));
    if !plain {
        return "/".to_string();
    }
    const HERE: &str = "http://mailtrail.invalid/";
    let same_site = url::Url::parse(HERE)
        .and_then(|base| base.join(n))
        .map(|u| {
            u.scheme() == "http"
                && u.host_str() == Some("mailtrail.invalid")
                && u.port().is_none()
                && u.username().is_empty()
                && u.password().is_none()
                && !u.path().starts_with("//")
        })
        .unwrap_or(false);
    if same_site {
        n.to_string()
    } else {
        "/".to_string()
    }
}

/// `GET /lang/{code}?next=/path`: remembers the choice for a year and goes back.
pub async fn switch(
    req: HttpRequest,
    code: web::Path<String>,
    query: web::Query<SwitchQuery>,
) -> HttpResponse {
    let lang = Lang::parse(&code).unwrap_or_else(|| Lang::from_request(&req));
    let cookie = Cookie::build(COOKIE, lang.code())
        .path("/")
        .same_site(SameSite::Lax)
        .http_only(true)
        .max_age(actix_web::cookie::time::Duration::days(365))
        .finish();
    HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, safe_next(query.next.as_deref())))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        for ok in [
            "/",
            "/status?from=2026-11-01&to=2026-11-02",
            "/status/12#content",
        ] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        for bad in [
            "/\t/evil.test",
            "/\n/evil.test",
            "//evil.test",
            "/\\evil.test",
            "https://evil.test",
            " /evil.test",
            "evil.test",
            "/\u{202e}/evil.test",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
    }
}
