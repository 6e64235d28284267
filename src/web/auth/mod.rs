//! Sign-in, sign-out, login rate limiting, and the [`Viewer`] extractor that every page of
//! customer data takes: it proves a live session and fixes the account scope.

mod limiter;
mod login;

pub use limiter::{client_ip, LoginLimiter};
pub use login::{login_page, login_submit, logout, redirect};

use actix_session::{Session, SessionExt};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::lang::{safe_next, Lang};
use super::layout::PageCtx;
use super::session_store::USER_KEY;
use super::AppState;
use super::{csrf, with_db, AppError, AppResult};
use crate::domain::{now_ms, Role};
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
        let entry = self.audit_entry(self.account.id, action, target);
        with_db(&self.state, move |conn| Ok(audit::record(conn, entry)?)).await
    }

    /// One line of the audit log, by this viewer, in `account_id`.
    fn audit_entry(&self, account_id: i64, action: &str, target: String) -> NewAuditEntry {
        NewAuditEntry {
            account_id: Some(account_id),
            actor_user_id: Some(self.user.id),
            actor_email: self.user.email.clone(),
            action: action.to_string(),
            target,
            ip: self.ip.clone(),
            occurred_at: now_ms(),
        }
    }

    /// The viewer of `req` looking at their home account (staff: at none).
    fn at_home(
        req: &HttpRequest,
        state: web::Data<AppState>,
        session: Session,
        user: User,
        home: Option<Account>,
    ) -> Viewer {
        Viewer {
            account: home.clone().unwrap_or_else(no_account),
            user,
            home,
            ip: client_ip(req, &state),
            session,
            lang: Lang::from_request(req),
            path: request_path(req),
            state,
        }
    }

    pub fn page(&self, active: &'static str) -> PageCtx {
        PageCtx::signed_in(self, active, csrf::token(&self.session))
    }

    /// Switches a staff viewer to `account_id`, writing the view to the audit log.
    pub async fn staff_open(&mut self, account_id: i64, what: String) -> AppResult<()> {
        if !self.is_staff() {
            return Err(AppError::NotFound);
        }
        let entry = self.audit_entry(account_id, "staff.view", what);
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
            let path = request_path(&req);
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
            let mut viewer = Viewer::at_home(&req, state, session, user, home);
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
    Some(Viewer::at_home(req, state, session, user, home).page(""))
}

/// The path and query of `req`, where a sign-in sends the person back to.
fn request_path(req: &HttpRequest) -> String {
    match req.uri().query() {
        Some(q) => format!("{}?{q}", req.path()),
        None => req.path().to_string(),
    }
}
