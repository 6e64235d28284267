//! The test harness: every test gets the real app on a port of its own, over a fresh
//! database of its own — a SQLite file, or a new PostgreSQL database when
//! `MAILTRAIL_TEST_POSTGRES_URL` is set — and an HTTP client that keeps cookies.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::mpsc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use mailtrail::db::{DbConn, Pool};
use mailtrail::demo::generate;
use mailtrail::domain::{hash_password, Role};
use mailtrail::store::models::{Account, User};
use mailtrail::store::{accounts, AccountScope};
use mailtrail::{AppState, Settings};

pub const PG_ENV: &str = "MAILTRAIL_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test and is removed after it.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pg_admin: Option<(String, String)>,
}

impl TestDb {
    /// `None` when the backend is not available here (PostgreSQL without its variable).
    pub fn new(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Some(TestDb {
                url: format!("sqlite://{}", dir.path().join("test.db").display()),
                backend,
                dir,
                pg_admin: None,
            }),
            Backend::Postgres => {
                let admin_url = std::env::var(PG_ENV).ok()?;
                let name = format!(
                    "mt_test_{}",
                    mailtrail::domain::random_token(12).to_lowercase()
                );
                let mut admin = PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("{PG_ENV}={admin_url} does not answer: {e}"));
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create test database");
                let url = match admin_url.rfind('/') {
                    Some(i)
                        if admin_url[..i].contains("://")
                            && i > admin_url.find("://").unwrap() + 2 =>
                    {
                        let (base, rest) = admin_url.split_at(i);
                        let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
                        format!("{base}/{name}{query}")
                    }
                    _ => format!("{admin_url}/{name}"),
                };
                Some(TestDb {
                    url,
                    backend,
                    dir,
                    pg_admin: Some((admin_url, name)),
                })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.pg_admin {
            if let Ok(mut admin) = PgConnection::establish(admin_url) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// The real application, served on 127.0.0.1:0 in a thread of its own.
pub struct TestApp {
    pub base: String,
    pub pool: Pool,
    pub settings: Settings,
    handle: Option<actix_web::dev::ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub db: TestDb,
}

pub fn settings_for(db: &TestDb) -> Settings {
    let mut settings = Settings::new(db.url.clone());
    settings.data_dir = db.dir.path().join("data");
    settings.pool_size = 4;
    settings.workers = Some(1);
    settings.export_poll_ms = 100;
    settings
}

impl TestApp {
    pub fn start(db: TestDb) -> TestApp {
        let settings = settings_for(&db);
        Self::start_with(db, settings)
    }

    pub fn start_with(db: TestDb, settings: Settings) -> TestApp {
        let state = AppState::open(settings.clone()).expect("open app state");
        let pool = state.pool.clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = mailtrail::launch(listener, state).expect("launch");
                tx.send(server.handle()).expect("send handle");
                let _ = server.await;
            })
        });
        let handle = rx.recv().expect("server started");
        TestApp {
            base,
            pool,
            settings,
            handle: Some(handle),
            thread: Some(thread),
            db,
        }
    }

    /// Stops the server and hands back its database, e.g. to start it again.
    pub fn stop(mut self) -> TestDb {
        self.shutdown();
        std::mem::replace(
            &mut self.db,
            TestDb {
                url: String::new(),
                backend: Backend::Sqlite,
                dir: tempfile::tempdir().unwrap(),
                pg_admin: None,
            },
        )
    }

    fn shutdown(&mut self) {
        if let Some(handle) = self.handle.take() {
            actix_web::rt::System::new().block_on(handle.stop(true));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    pub fn conn(&self) -> r2d2::PooledConnection<mailtrail::db::Manager> {
        self.pool.get().expect("pooled connection")
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    pub fn account(&self, name: &str) -> Account {
        accounts::create_account(&mut self.conn(), name).expect("create account")
    }

    /// An owner or member of `account`. Staff belong to no account: `Role::Staff` makes a
    /// staff user and `account` is ignored (see [`TestApp::staff`]).
    pub fn user(&self, account: &Account, email: &str, role: Role, password: &str) -> User {
        if role == Role::Staff {
            return self.staff(email, password);
        }
        accounts::create_user(
            &mut self.conn(),
            account.id,
            email,
            role,
            &hash_password(password),
        )
        .expect("create user")
    }

    /// A staff user: the operator's people, in no customer account.
    pub fn staff(&self, email: &str, password: &str) -> User {
        accounts::create_staff(&mut self.conn(), email, &hash_password(password))
            .expect("create staff user")
    }

    pub fn generate(&self, account: &Account, messages: u64, days: u32) {
        generate::generate(
            &mut self.conn(),
            &AccountScope::new(account.id),
            messages,
            days,
            42,
        )
        .expect("generate");
    }

    /// One number from a SQL query that selects a single BIGINT column named `n`.
    pub fn count(&self, sql: &str) -> i64 {
        *self
            .numbers(sql)
            .first()
            .expect("count query answers a row")
    }

    /// The column `n` of every row a query answers.
    pub fn numbers(&self, sql: &str) -> Vec<i64> {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.conn();
        let conn: &mut DbConn = &mut conn;
        diesel::sql_query(sql)
            .load::<N>(conn)
            .expect("numbers query")
            .into_iter()
            .map(|r| r.n)
            .collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A response, whatever its status.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn location(&self) -> &str {
        self.header("location").unwrap_or("")
    }

    /// The value of the first hidden `csrf_token` field of the page.
    pub fn csrf_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("page has a csrf_token field") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }
}

/// An HTTP client with a cookie jar that never follows redirects, so tests see them.
pub struct Client {
    base: String,
    agent: ureq::Agent,
    pub cookies: HashMap<String, String>,
    pub accept_language: Option<String>,
    /// Sent as `Referer`: the page a click came from.
    pub referer: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            base: base.to_string(),
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            cookies: HashMap::new(),
            accept_language: None,
            referer: None,
        }
    }

    fn prepare(&self, method: &str, path: &str) -> ureq::Request {
        let mut req = self
            .agent
            .request(method, &format!("{}{}", self.base, path));
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.set("Cookie", &jar.join("; "));
        }
        if let Some(lang) = &self.accept_language {
            req = req.set("Accept-Language", lang);
        }
        if let Some(referer) = &self.referer {
            req = req.set("Referer", referer);
        }
        req
    }

    fn finish(&mut self, result: Result<ureq::Response, ureq::Error>) -> Resp {
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let mut headers = HashMap::new();
        for name in response.headers_names() {
            if name == "set-cookie" {
                for value in response.all("set-cookie") {
                    let pair = value.split(';').next().unwrap_or("");
                    if let Some((k, v)) = pair.split_once('=') {
                        let expired =
                            value.to_ascii_lowercase().contains("max-age=0") || v.is_empty();
                        if expired {
                            self.cookies.remove(k.trim());
                        } else {
                            self.cookies
                                .insert(k.trim().to_string(), v.trim().to_string());
                        }
                    }
                }
            }
            if let Some(v) = response.header(&name) {
                headers.insert(name.to_ascii_lowercase(), v.to_string());
            }
        }
        let status = response.status();
        let body = response.into_string().unwrap_or_default();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn get(&mut self, path: &str) -> Resp {
        let req = self.prepare("GET", path);
        let result = req.call();
        self.finish(result)
    }

    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let req = self.prepare("POST", path);
        let result = req.send_form(fields);
        self.finish(result)
    }

    /// A POST of a raw body with the given headers (content type, authorization, …).
    pub fn post_raw(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut req = self.prepare("POST", path);
        for (name, value) in headers {
            req = req.set(name, value);
        }
        let result = req.send_bytes(body);
        self.finish(result)
    }

    /// Any method without a body, with the given headers (authorization, …).
    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.prepare(method, path);
        for (name, value) in headers {
            req = req.set(name, value);
        }
        let result = req.call();
        self.finish(result)
    }

    /// A GET whose body is bytes (an image): status, content type and body.
    pub fn get_bytes(&mut self, path: &str) -> (u16, String, Vec<u8>) {
        use std::io::Read;
        let response = match self.prepare("GET", path).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = response.status();
        let content_type = response.header("content-type").unwrap_or("").to_string();
        let mut body = Vec::new();
        response
            .into_reader()
            .read_to_end(&mut body)
            .expect("read body");
        (status, content_type, body)
    }

    /// Signs in through the login form, as a browser would; answers the POST's response.
    pub fn login(&mut self, email: &str, password: &str) -> Resp {
        let page = self.get("/login");
        let token = page.csrf_token();
        self.post_form(
            "/login",
            &[
                ("email", email),
                ("password", password),
                ("csrf_token", &token),
            ],
        )
    }

    /// A CSRF token from a signed-in page.
    pub fn token(&mut self) -> String {
        self.get("/").csrf_token()
    }
}

/// Says a test is skipped; under `MAILTRAIL_TEST_REQUIRE_ALL` (CI) a skip is a failure.
pub fn skip(what: &str) {
    if std::env::var_os("MAILTRAIL_TEST_REQUIRE_ALL").is_some() {
        panic!("MAILTRAIL_TEST_REQUIRE_ALL is set but this test cannot run: {what}");
    }
    eprintln!("SKIPPED {what}");
}

/// Runs a test body on SQLite and on PostgreSQL: `both_backends!(name, |app| { ... });`
/// makes `name::sqlite` and `name::postgres`. Without `MAILTRAIL_TEST_POSTGRES_URL` the
/// PostgreSQL run says it is skipped.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn sqlite() {
                let db = $crate::common::TestDb::new($crate::common::Backend::Sqlite).unwrap();
                let f: fn($crate::common::TestDb) = $body;
                f(db);
            }

            #[test]
            fn postgres() {
                match $crate::common::TestDb::new($crate::common::Backend::Postgres) {
                    Some(db) => {
                        let f: fn($crate::common::TestDb) = $body;
                        f(db);
                    }
                    None => $crate::common::skip(&format!(
                        "{}::postgres: set {} to run it on PostgreSQL",
                        module_path!(),
                        $crate::common::PG_ENV
                    )),
                }
            }
        }
    };
}
