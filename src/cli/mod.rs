//! The command line (DESIGN §8): the arguments, Settings from them and the environment, and
//! one function per subcommand, each calling into the library.

mod data;
mod ingest;
mod people;
mod serve;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use mailtrail::db::{DbConn, PooledConn};
use mailtrail::settings::DEFAULT_DATABASE_URL;
use mailtrail::store::accounts;
use mailtrail::store::models::Account;
use mailtrail::{AppState, Settings};

#[derive(Parser)]
#[command(
    name = "mailtrail",
    version,
    about = "Self-hosted delivery-response dashboard for email senders"
)]
pub struct Cli {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true, env = "MAILTRAIL_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database: String,
    /// Folder for the session key and export files.
    #[arg(
        long,
        global = true,
        env = "MAILTRAIL_DATA_DIR",
        default_value = "data"
    )]
    data_dir: std::path::PathBuf,
    /// Remove mail data (messages, their events, opens and clicks) older than this many days.
    /// Unset: keep everything.
    #[arg(long, global = true, env = "MAILTRAIL_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    retention_days: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the dashboard.
    Serve {
        #[arg(long, env = "MAILTRAIL_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
        /// Create the demo account, user and ~50,000 messages when the database is empty.
        #[arg(long)]
        demo: bool,
    },
    /// Bring the database schema up to date.
    Migrate,
    /// Remove the mail data older than --retention-days now, as the server does every 10
    /// minutes; prints what went.
    Prune,
    /// Manage accounts.
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage support staff: the operator's people, in no customer account.
    Staff {
        #[command(subcommand)]
        action: StaffAction,
    },
    /// Manage API users (the keys mail servers post events with).
    ApiUser {
        #[command(subcommand)]
        action: ApiUserAction,
    },
    /// Classify one raw bounce message, or an SMTP reply when the input is a single line;
    /// prints one JSON object on one line.
    Classify {
        /// The message; standard input when absent.
        file: Option<std::path::PathBuf>,
        /// An operator's rules file (format of src/classify/rules.tsv), consulted first.
        #[arg(long, env = "MAILTRAIL_CLASSIFY_RULES")]
        rules: Option<std::path::PathBuf>,
    },
    /// Generate realistic synthetic traffic into an account.
    Generate {
        #[arg(long)]
        account: String,
        #[arg(long)]
        messages: u64,
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Read Postfix's mail log (syslog or `journalctl -o short` lines; `.gz` files; `-` for
    /// standard input) into an account: a message per recipient, its deliveries, deferrals
    /// and bounces. With --follow, keep reading as the log grows and rotates, resuming where
    /// the last run stopped.
    IngestPostfix {
        #[arg(long)]
        account: String,
        /// Keep reading the (plain) files as they grow and rotate; stop with Ctrl-C or SIGTERM.
        #[arg(long)]
        follow: bool,
        /// The API_USER the messages are filed under.
        #[arg(long, default_value = "postfix")]
        api_user: String,
        /// The zone of classic syslog times, which carry none (RFC 3339 stamps carry theirs).
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Print the signed links a mail server puts into one message, one a line: the open
    /// pixel, the click link for --url (when given) and the unsubscribe page.
    SignLink {
        /// The account's name.
        #[arg(long)]
        account: String,
        /// The message's emailId, as in its request event.
        #[arg(long)]
        email_id: String,
        /// Where a click should lead (http:// or https://).
        #[arg(long)]
        url: Option<String>,
        /// This server's public address, e.g. https://track.example.com; default
        /// $MAILTRAIL_PUBLIC_URL.
        #[arg(long)]
        base_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum AccountAction {
    /// Create an account.
    Add { name: String },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user; the password is read from standard input.
    Add {
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["owner", "member", "staff"])]
        /// owner or member; staff belong to no account (`mailtrail staff add`).
        role: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum StaffAction {
    /// Create a staff user; the password is read from standard input.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Set a staff user's password (read from standard input); their sessions end.
    Password {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Remove a staff user; their sessions end.
    Remove {
        #[arg(long)]
        email: String,
    },
    /// List the staff users.
    List,
}

#[derive(Subcommand)]
enum ApiUserAction {
    /// Create an API user; prints its key once, alone on the last line.
    Add {
        #[arg(long)]
        account: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["trigger", "batch"], default_value = "trigger")]
        mail_type: String,
    },
}

/// Runs the subcommand; `classify` needs no database and no settings.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Classify { file, rules } = &cli.command {
        return data::classify(file.as_deref(), rules.as_deref());
    }
    let settings = settings(&cli)?;
    match cli.command {
        Command::Classify { .. } => unreachable!("handled above: it needs no database"),
        Command::Migrate => data::migrate(settings),
        Command::Prune => data::prune(settings),
        Command::Serve { bind, demo } => serve::serve(settings, &bind, demo),
        Command::Account {
            action: AccountAction::Add { name },
        } => people::add_account(settings, &name),
        Command::User {
            action:
                UserAction::Add {
                    account,
                    email,
                    role,
                    password_stdin: _,
                },
        } => people::add_user(settings, &account, &email, &role),
        Command::Staff { action } => people::staff(settings, action),
        Command::ApiUser {
            action:
                ApiUserAction::Add {
                    account,
                    name,
                    mail_type,
                },
        } => people::add_api_user(settings, &account, &name, &mail_type),
        Command::Generate {
            account,
            messages,
            days,
            seed,
        } => data::generate(settings, &account, messages, days, seed),
        Command::SignLink {
            account,
            email_id,
            url,
            base_url,
        } => data::sign_link(settings, &account, &email_id, url.as_deref(), base_url),
        Command::IngestPostfix {
            account,
            follow,
            api_user,
            time_zone,
            files,
        } => ingest::postfix(settings, &account, follow, api_user, &time_zone, &files),
    }
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let mut settings = Settings::new(cli.database.clone());
    settings.data_dir = cli.data_dir.clone();
    settings.retention_days = cli.retention_days;
    if let Ok(key) = std::env::var("MAILTRAIL_SECRET_KEY") {
        if key.len() < 64 {
            bail!("MAILTRAIL_SECRET_KEY must be at least 64 characters long");
        }
        settings.secret_key = Some(key.into_bytes());
    }
    settings.public_url = std::env::var("MAILTRAIL_PUBLIC_URL").ok();
    settings.alerts = mailtrail::jobs::alerts::AlertSettings::from_env();
    if let Ok(proxies) = std::env::var("MAILTRAIL_TRUSTED_PROXIES") {
        settings.trusted_proxies = proxies
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                p.trim().parse().with_context(|| {
                    format!("bad proxy address {p:?} in MAILTRAIL_TRUSTED_PROXIES")
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    if let Ok(allow) = std::env::var("MAILTRAIL_METRICS_ALLOW") {
        settings.metrics_allow = allow
            .split(',')
            .filter(|a| !a.trim().is_empty())
            .map(|a| {
                a.trim()
                    .parse()
                    .with_context(|| format!("bad address {a:?} in MAILTRAIL_METRICS_ALLOW"))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    settings.metrics_token = std::env::var("MAILTRAIL_METRICS_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    if let Ok(n) = std::env::var("MAILTRAIL_EXPORT_WORKERS") {
        settings.export_workers = n
            .parse()
            .context("MAILTRAIL_EXPORT_WORKERS must be a number")?;
    }
    if let Ok(n) = std::env::var("MAILTRAIL_APIV2_CALLS_PER_MINUTE") {
        settings.apiv2_calls_per_minute = n
            .parse()
            .context("MAILTRAIL_APIV2_CALLS_PER_MINUTE must be a number (0: no limit)")?;
    }
    if let Ok(dir) = std::env::var("MAILTRAIL_EXPORTS_DIR") {
        settings.exports_dir = Some(dir.into());
    }
    if let Ok(minutes) = std::env::var("MAILTRAIL_SESSION_IDLE_MINUTES") {
        settings.session_idle_minutes = minutes
            .parse()
            .context("MAILTRAIL_SESSION_IDLE_MINUTES must be a number")?;
    }
    Ok(settings)
}

/// Opens the database (running its migrations) and takes one connection from the pool.
fn connect(settings: Settings) -> anyhow::Result<(AppState, PooledConn)> {
    let state = AppState::open(settings)?;
    let conn = state.pool.get()?;
    Ok((state, conn))
}

/// The account of this name, or an error that says there is none.
fn account_named(conn: &mut DbConn, name: &str) -> anyhow::Result<Account> {
    accounts::find_account_by_name(conn, name)?
        .with_context(|| format!("no account named {name:?}"))
}
