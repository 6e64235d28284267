//! Sign-in, sign-out, login rate limiting, and the [`Viewer`] extractor that every page of
//! customer data takes: it proves a live session and fixes the account scope.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_session::{Session, SessionExt};
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use askama::Template;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

use super::lang::{safe_next, Lang};
use super::layout::PageCtx;
use super::session_store::USER_KEY;
use super::AppState;
use super::{csrf, with_db, AppError, AppResult};
use crate::domain::{dummy_password_hash, now_ms, verify_password, Role};
use crate::store::models::{Account, NewAuditEntry, User};
use crate::store::{accounts, audit, AccountScope};

/// The session key remembering that staff revealed masked addresses of an account.
const REVEAL_KEY: &str = "reveal_account";

#[derive(Deserialize)]
pub struct RevealForm {
    next: Option<String>,
}

/// `POST /reveal`: staff show the unmasked addresses of the account they look at, for the
/// rest of the session; written to the audit log. Customers see what their account allows.
pub async fn reveal(viewer: Viewer, form: web::Form<RevealForm>) -> AppResult<HttpResponse> {
    if !viewer.is_staff() {
        return Err(AppError::forbidden(
            "Only support staff can reveal masked addresses.",
        ));
    }
    viewer
        .audit("staff.reveal", viewer.account.name.clone())
        .await?;
    viewer
        .session
        .insert(REVEAL_KEY, viewer.account.id)
        .map_err(AppError::internal)?;
    Ok(redirect(&safe_next(form.next.as_deref())))
}

/// Login attempts, limited per client IP and per account (the email tried). Keys are a hash
/// of the normalised, length-capped input, so that a flood of long unique emails costs a few
/// bytes each, and entries whose limit has refilled are dropped as the map grows.
pub struct LoginLimiter {
    per_ip: DefaultKeyedRateLimiter<[u8; 16]>,
    per_account: DefaultKeyedRateLimiter<[u8; 16]>,
    /// Attempts since the last sweep of refilled entries.
    since_sweep: std::sync::atomic::AtomicUsize,
    refill: Duration,
}

/// Entries kept before refilled ones are swept out.
const LIMITER_SWEEP_EVERY: usize = 1024;

/// The longest email or password a login form may carry; longer is refused at once.
pub const MAX_LOGIN_EMAIL: usize = 320;
pub const MAX_LOGIN_PASSWORD: usize = 1024;

fn limiter_key(kind: u8, value: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let value = crate::domain::normalize_address(value);
    let capped: String = value.chars().take(MAX_LOGIN_EMAIL).collect();
    let digest = Sha256::new()
        .chain_update([kind])
        .chain_update(capped.as_bytes())
        .finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

impl LoginLimiter {
    pub fn new(settings: &crate::Settings) -> Self {
        let refill = Duration::from_secs(settings.login_refill_seconds.max(1));
        let quota = |burst: u32| {
            Quota::with_period(refill)
                .expect("a non-zero period")
                .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least one"))
        };
        LoginLimiter {
            per_ip: RateLimiter::keyed(quota(settings.login_burst_per_ip)),
            per_account: RateLimiter::keyed(quota(settings.login_burst_per_account)),
            since_sweep: std::sync::atomic::AtomicUsize::new(0),
            refill,
        }
    }

    /// Counts one attempt; false when either limit is exhausted.
    pub fn allow(&self, ip: &str, email: &str) -> bool {
        use std::sync::atomic::Ordering;
        if self.since_sweep.fetch_add(1, Ordering::Relaxed) >= LIMITER_SWEEP_EVERY {
            self.since_sweep.store(0, Ordering::Relaxed);
            self.per_ip.retain_recent();
            self.per_account.retain_recent();
            self.per_ip.shrink_to_fit();
            self.per_account.shrink_to_fit();
        }
        let ip_ok = self.per_ip.check_key(&limiter_key(b'i', ip)).is_ok();
        let account_ok = self
            .per_account
            .check_key(&limiter_key(b'a', email))
            .is_ok();
        ip_ok && account_ok
    }

    /// Keys held now (for tests and measurements).
    pub fn len(&self) -> usize {
        self.per_ip.len() + self.per_account.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long a refused client should wait: one refill period.
    pub fn retry_after_secs(&self) -> u64 {
        self.refill.as_secs().max(1)
    }
}

/// The client's address: the peer, or what a trusted proxy says the client was.
pub fn client_ip(req: &HttpRequest, state: &AppState) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    if let Some(peer) = peer {
        if state.settings.trusted_proxies.contains(&peer) {
            let forwarded = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok());
            if let Some(ip) = forwarded {
                return ip.to_string();
            }
        }
        return peer.to_string();
    }
    "unknown".into()
}

/// A signed-in person and the account whose data this request may see.
pub struct Viewer {
    pub user: User,
    /// The customer account the user belongs to; None for staff, who belong to none.
    pub home: Option<Account>,
    /// The account being looked at: the home account, or for staff the one they chose
    /// (`?account=ID`); staff who chose none look at [`no_account`], which holds nothing.
    pub account: Account,
    pub session: Session,
    pub lang: Lang,
    pub path: String,
    pub ip: String,
    state: web::Data<AppState>,
}

impl Viewer {
    pub fn scope(&self) -> AccountScope {
        AccountScope::new(self.account.id)
    }

    pub fn role(&self) -> Role {
        self.user.role()
    }

    pub fn is_staff(&self) -> bool {
        self.role() == Role::Staff
    }

    /// True when staff are looking at a customer account's data (read-only, audited).
    pub fn is_staff_view(&self) -> bool {
        self.home.as_ref().map(|h| h.id) != Some(self.account.id) && self.account.id != NO_ACCOUNT
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// True when addresses are shown masked to this viewer: the account turned masking on,
    /// and (for staff) nobody pressed reveal in this session.
    pub fn masks(&self) -> bool {
        self.account.mask_addresses && !(self.is_staff() && self.revealed())
    }

    fn revealed(&self) -> bool {
        self.session.get::<i64>(REVEAL_KEY).ok().flatten() == Some(self.account.id)
    }

    /// How downloads and tables present values to this viewer.
    pub fn presenter(&self) -> crate::store::exports::Presenter {
        crate::store::exports::Presenter {
            lang: self.lang.code(),
            zone: self.account.zone(),
            mask: self.masks(),
        }
    }

    /// An address as this viewer may see it.
    pub fn show_address(&self, address: &str) -> String {
        // A whole `@domain` (a blacklist entry) names no one and is never masked.
        if self.masks() && !address.starts_with('@') {
            crate::domain::mask_address(address)
        } else {
            address.to_string()
        }
    }

    /// Free text (an SMTP reply, an emailId, a send log) as this viewer may see it: with
    /// masking on, every address inside it is masked.
    pub fn show_text(&self, text: &str) -> String {
        if self.masks() {
            crate::domain::mask_addresses_in(text)
        } else {
            text.to_string()
        }
    }

    /// The query of a `/lookup` link for a message's recipient: the address itself, or for a
    /// viewer who sees addresses masked the message id, which names no one.
    pub fn lookup_query(&self, address: &str, message_id: i64) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if self.masks() {
            query.append_pair("message", &message_id.to_string());
        } else {
            query.append_pair("address", address);
        }
        query.finish()
    }

    /// The query of a `/lookup` link for a list entry's address: the address itself, or for
    /// a viewer who sees addresses masked the entry (`bounces:12`), which names no one.
    pub fn entry_lookup_query(&self, address: &str, list: &str, id: i64) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if self.masks() {
            query.append_pair("entry", &format!("{list}:{id}"));
        } else {
            query.append_pair("address", address);
        }
        query.finish()
    }

    /// Writes one line to the audit log, in the viewed account.
    pub async fn audit(&self, action: &str, target: String) -> AppResult<()> {
        let entry = NewAuditEntry {
            account_id: Some(self.account.id),
            actor_user_id: Some(self.user.id),
            actor_email: self.user.email.clone(),
            action: action.to_string(),
            target,
            ip: self.ip.clone(),
            occurred_at: now_ms(),
        };
        with_db(&self.state, move |conn| Ok(audit::record(conn, entry)?)).await
    }

    pub fn page(&self, active: &'static str) -> PageCtx {
        PageCtx::signed_in(self, active, csrf::token(&self.session))
    }

    /// Switches a staff viewer to `account_id`, writing the view to the audit log.
    pub async fn staff_open(&mut self, account_id: i64, what: String) -> AppResult<()> {
        if !self.is_staff() {
            return Err(AppError::NotFound);
        }
        let entry = NewAuditEntry {
            account_id: Some(account_id),
            actor_user_id: Some(self.user.id),
            actor_email: self.user.email.clone(),
            action: "staff.view".into(),
            target: what,
            ip: self.ip.clone(),
            occurred_at: now_ms(),
        };
        let account = with_db(&self.state, move |conn| {
            let account = accounts::get_account(conn, account_id)?.ok_or(AppError::NotFound)?;
            audit::record(conn, entry)?;
            Ok(account)
        })
        .await?;
        self.account = account;
        Ok(())
    }
}

/// The id of [`no_account`]; no real account has it (ids start at 1 on both backends).
pub const NO_ACCOUNT: i64 = 0;

/// What staff look at before they choose an account: nothing, with every feature off.
pub fn no_account() -> Account {
    Account {
        id: NO_ACCOUNT,
        name: String::new(),
        time_zone: crate::domain::DEFAULT_TIME_ZONE.to_string(),
        mask_addresses: true,
        export_allowed: false,
        splus_content: false,
        splus_log: false,
        webhook_app_key: None,
        created_at: 0,
    }
}

#[derive(Deserialize)]
struct AccountParam {
    account: Option<i64>,
}

impl FromRequest for Viewer {
    type Error = AppError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Viewer, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let path = match req.uri().query() {
                Some(q) => format!("{}?{q}", req.path()),
                None => req.path().to_string(),
            };
            let session = req.get_session();
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| AppError::internal("application state missing"))?;
            let user_id = session.get::<i64>(USER_KEY).ok().flatten();
            let Some(user_id) = user_id else {
                return Err(AppError::LoginRequired { next: path });
            };
            let found = with_db(&state, move |conn| {
                Ok(accounts::user_with_account(conn, user_id)?)
            })
            .await?;
            let Some((user, home)) = found else {
                session.purge();
                return Err(AppError::LoginRequired { next: path });
            };
            // Staff belong to no account, and everyone else to exactly one.
            let staff = user.role() == Role::Staff;
            if staff != home.is_none() {
                session.purge();
                return Err(AppError::LoginRequired { next: path });
            }
            let ip = client_ip(&req, &state);
            let mut viewer = Viewer {
                account: home.clone().unwrap_or_else(no_account),
                user,
                home,
                session,
                lang: Lang::from_request(&req),
                path: path.clone(),
                ip,
                state,
            };
            // `?account=ID` lets staff look at another account (audited); anyone else asking
            // for an account not their own is refused.
            let wanted = web::Query::<AccountParam>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.account);
            if let Some(id) = wanted.filter(|id| Some(*id) != viewer.home.as_ref().map(|h| h.id)) {
                if !viewer.is_staff() {
                    return Err(AppError::forbidden("This account is not yours."));
                }
                viewer.staff_open(id, path).await?;
            }
            Ok(viewer)
        })
    }
}

/// The layout of an error page for whoever is signed in on `req`: navigation, sign-out and
/// the language switch, or nothing (signed out, or the database not answering). It reads the
/// session and the user only; `?account=` is not followed (no audit entry for an error page).
pub async fn error_page_ctx(req: &HttpRequest) -> Option<PageCtx> {
    let session = req.get_session();
    let user_id = session.get::<i64>(USER_KEY).ok().flatten()?;
    let state = req.app_data::<web::Data<AppState>>().cloned()?;
    let (user, home) = with_db(&state, move |conn| {
        Ok(accounts::user_with_account(conn, user_id)?)
    })
    .await
    .ok()
    .flatten()?;
    let path = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.path()),
        None => req.path().to_string(),
    };
    let viewer = Viewer {
        account: home.clone().unwrap_or_else(no_account),
        user,
        home,
        ip: client_ip(req, &state),
        session,
        lang: Lang::from_request(req),
        path,
        state,
    };
    Some(viewer.page(""))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: PageCtx,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn login_page(
    req: HttpRequest,
    session: Session,
    query: web::Query<LoginQuery>,
) -> AppResult<HttpResponse> {
    if session.get::<i64>(USER_KEY).ok().flatten().is_some() {
        return Ok(redirect(&safe_next(query.next.as_deref())));
    }
    let lang = Lang::from_request(&req);
    render_login(
        lang,
        &session,
        String::new(),
        safe_next(query.next.as_deref()),
        None,
        200,
    )
}

fn render_login(
    lang: Lang,
    session: &Session,
    email: String,
    next: String,
    error: Option<String>,
    status: u16,
) -> AppResult<HttpResponse> {
    let page = LoginPage {
        ctx: PageCtx::anonymous(lang, csrf::token(session)),
        email,
        next,
        error,
    };
    let html = page.render().map_err(AppError::internal)?;
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

pub async fn login_submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    let lang = Lang::from_request(&req);
    let form = form.into_inner();
    let email = crate::domain::normalize_address(&form.email);
    let next = safe_next(form.next.as_deref());
    let ip = client_ip(&req, &state);
    // Logs get the email as text of a sane length on one line, never the raw input.
    let logged = crate::domain::log_text(&email, 100);
    if !state.login_limiter.allow(&ip, &email) {
        log::warn!("login rate limit hit for {logged} from {ip}");
        let mut page = render_login(
            lang,
            &session,
            crate::domain::log_text(&form.email, MAX_LOGIN_EMAIL),
            next,
            Some(lang.t("login.too_many")),
            429,
        )?;
        page.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(state.login_limiter.retry_after_secs()),
        );
        return Ok(page);
    }
    if email.chars().count() > MAX_LOGIN_EMAIL || form.password.len() > MAX_LOGIN_PASSWORD {
        log::info!("failed login (oversized fields) for {logged} from {ip}");
        return render_login(
            lang,
            &session,
            String::new(),
            next,
            Some(lang.t("login.wrong")),
            401,
        );
    }
    let password = form.password;
    let email_for_db = email.clone();
    let user = with_db(&state, move |conn| {
        let user = accounts::find_user_by_email(conn, &email_for_db)?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| dummy_password_hash().to_string());
        let ok = verify_password(&password, &hash);
        Ok(user.filter(|_| ok))
    })
    .await?;
    let Some(user) = user else {
        log::info!("failed login for {logged} from {ip}");
        return render_login(
            lang,
            &session,
            form.email,
            next,
            Some(lang.t("login.wrong")),
            401,
        );
    };
    // A fresh session id at login defeats fixation; the CSRF token is renewed with it.
    session.renew();
    session.remove("csrf");
    session
        .insert(USER_KEY, user.id)
        .map_err(AppError::internal)?;
    log::info!("login {} from {ip}", user.email);
    Ok(redirect(&next))
}

pub async fn logout(session: Session) -> HttpResponse {
    session.purge();
    redirect("/login")
}

#[cfg(test)]
mod tests {
    use super::LoginLimiter;

    #[test]
    fn the_login_limiter_keeps_small_keys_and_forgets_refilled_ones() {
        let mut settings = crate::Settings::new("sqlite://unused.db");
        settings.login_refill_seconds = 1;
        settings.login_burst_per_account = 1;
        let limiter = LoginLimiter::new(&settings);
        let long = "x".repeat(60_000);
        for i in 0..1_000 {
            limiter.allow("192.0.2.1", &format!("{i}-{long}@example.com"));
        }
        // One key per distinct email, each a 16-byte hash, and the one IP.
        assert_eq!(limiter.len(), 1_001);
        // The same email, however long, cased or padded, is one key.
        assert!(!limiter.allow(
            "192.0.2.2",
            &format!(" 0-{}@EXAMPLE.com ", long.to_uppercase())
        ));
        // A key is forgotten two refill periods after its last use.
        std::thread::sleep(std::time::Duration::from_millis(2_100));
        for i in 0..100 {
            limiter.allow("192.0.2.3", &format!("late-{i}@example.com"));
        }
        assert!(
            limiter.len() < 300,
            "refilled keys are swept: {} kept",
            limiter.len()
        );
    }
}
