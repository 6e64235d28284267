//! Runtime settings, built by `main.rs` from flags and the environment and passed down; no
//! global configuration.

use std::net::IpAddr;
use std::path::PathBuf;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/mailtrail.db";

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    /// Where the session key and export files live.
    pub data_dir: PathBuf,
    /// Signing key for session cookies (≥ 64 bytes). `None`: read or create `data_dir/secret.key`.
    pub secret_key: Option<Vec<u8>>,
    /// A session not used for this long ends.
    pub session_idle_minutes: i64,
    /// Login attempts allowed per client IP in a burst, refilled one per `login_refill_seconds`.
    pub login_burst_per_ip: u32,
    /// Login attempts allowed per account (email) in a burst.
    pub login_burst_per_account: u32,
    pub login_refill_seconds: u64,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Cookies get `Secure` when the public URL is https.
    pub public_url: Option<String>,
    pub pool_size: u32,
    /// HTTP worker threads; `None`: one per core.
    pub workers: Option<usize>,
    /// Export worker tasks in this server; 0 turns them off.
    pub export_workers: usize,
    /// How often an idle export worker looks for work.
    pub export_poll_ms: u64,
    /// How often a running export writes its progress (and notices a cancel), at most: on
    /// PostgreSQL each write is a commit that waits for the disk, and the jobs page refreshes
    /// every 2 s anyway.
    pub export_progress_ms: u64,
    /// Where export files are written; default `DATA_DIR/exports`.
    pub exports_dir: Option<PathBuf>,
    /// Mail data (messages, their events, opens and clicks) older than this many days is
    /// removed by the periodic maintenance; `None` keeps everything.
    pub retention_days: Option<u32>,
    /// SendCloud API v2 calls allowed per API_USER per minute (also the burst); 0: no limit.
    /// Over it, a call answers SendCloud's `50000` ("interface frequency limited").
    pub apiv2_calls_per_minute: u32,
    /// Tests only, never read from flags or the environment: SNS SubscribeURLs (which must
    /// still be on an `sns.<region>.amazonaws.com` host) are fetched from this scheme and host.
    pub sns_confirm_via: Option<String>,
    /// Besides loopback, the client addresses `GET /metrics` answers.
    pub metrics_allow: Vec<IpAddr>,
    /// A bearer token that opens `GET /metrics` from anywhere.
    pub metrics_token: Option<String>,
    /// Alert evaluation and notifications (README, "Alerts").
    pub alerts: crate::jobs::alerts::AlertSettings,
}

impl Settings {
    pub fn new(database_url: impl Into<String>) -> Self {
        Settings {
            database_url: database_url.into(),
            data_dir: PathBuf::from("data"),
            secret_key: None,
            session_idle_minutes: 120,
            login_burst_per_ip: 20,
            login_burst_per_account: 8,
            login_refill_seconds: 15,
            trusted_proxies: Vec::new(),
            public_url: None,
            pool_size: 8,
            workers: None,
            export_workers: 1,
            export_poll_ms: 1_000,
            export_progress_ms: 250,
            exports_dir: None,
            retention_days: None,
            apiv2_calls_per_minute: 600,
            sns_confirm_via: None,
            metrics_allow: Vec::new(),
            metrics_token: None,
            alerts: crate::jobs::alerts::AlertSettings::default(),
        }
    }

    pub fn exports_dir(&self) -> PathBuf {
        self.exports_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("exports"))
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// The session key: from settings, else from `data_dir/secret.key`, created once (mode
    /// 0600) so that sessions survive a restart.
    pub fn load_or_create_secret(&self) -> std::io::Result<Vec<u8>> {
        if let Some(key) = &self.secret_key {
            return Ok(key.clone());
        }
        let path = self.data_dir.join("secret.key");
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 64 => return Ok(bytes),
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is shorter than 64 bytes", path.display()),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(&self.data_dir)?;
        let key: Vec<u8> = (0..64).map(|_| rand::random::<u8>()).collect();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        use std::io::Write;
        options.open(&path)?.write_all(&key)?;
        Ok(key)
    }
}
