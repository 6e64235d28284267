//! The command line (DESIGN §8): parses, builds Settings, calls into the library.

use std::io::Read;
use std::net::TcpListener;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use mailtrail::classify::Classifier;
use mailtrail::demo::generate;
use mailtrail::domain::{hash_password, MailType, Role};
use mailtrail::settings::DEFAULT_DATABASE_URL;
use mailtrail::store::{accounts, messages, AccountScope};
use mailtrail::{AppState, Settings};

#[derive(Parser)]
#[command(
    name = "mailtrail",
    version,
    about = "Self-hosted delivery-response dashboard for email senders"
)]
struct Cli {
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

/// The password given on standard input, without its final newline.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
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

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("mailtrail: {e:#}");
        std::process::exit(1);
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

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Classify { file, rules } = &cli.command {
        return classify(file.as_deref(), rules.as_deref());
    }
    let settings = settings(&cli)?;
    match cli.command {
        Command::Classify { .. } => unreachable!("handled above: it needs no database"),
        Command::Migrate => {
            let state = AppState::open(settings)?;
            let mut conn = state.pool.get()?;
            let ran = mailtrail::db::migrate(&mut conn)?;
            println!("database is up to date ({ran} migrations ran now)");
        }
        Command::Prune => {
            let days = settings
                .retention_days
                .context("no retention: pass --retention-days N or set MAILTRAIL_RETENTION_DAYS")?;
            let state = AppState::open(settings)?;
            let mut conn = state.pool.get()?;
            let pruned =
                mailtrail::store::retention::prune(&mut conn, days, mailtrail::domain::now_ms())?;
            if pruned.skipped {
                println!("another server is pruning now; nothing done");
            } else {
                println!(
                    "kept the last {days} days (from {}): {} messages (with their event logs) \
                     and {} other rows deleted, {} partitions dropped{}",
                    chrono::DateTime::from_timestamp_millis(pruned.cutoff)
                        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                        .unwrap_or_default(),
                    pruned.messages,
                    pruned.rows,
                    pruned.partitions.len(),
                    if pruned.partitions.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", pruned.partitions.join(", "))
                    }
                );
            }
        }
        Command::Serve { bind, demo } => {
            let state = AppState::open(settings)?;
            if demo {
                seed_demo(&state)?;
            }
            let listener =
                TcpListener::bind(&bind).with_context(|| format!("cannot listen on {bind}"))?;
            println!("mailtrail listening on http://{}", listener.local_addr()?);
            let (shutdown, tasks) = (state.shutdown.clone(), state.tasks.clone());
            actix_web::rt::System::new().block_on(async move {
                let server = mailtrail::launch(listener, state)?;
                actix_web::rt::spawn(stop_on_signal(shutdown));
                server.await?;
                // The workers have seen the same signal; a running export goes back to the
                // queue at its next step, which is well within this.
                tasks.close();
                if tokio::time::timeout(std::time::Duration::from_secs(30), tasks.wait())
                    .await
                    .is_err()
                {
                    log::warn!("background workers did not stop within 30 s");
                }
                Ok::<_, anyhow::Error>(())
            })?;
            println!("mailtrail stopped");
        }
        Command::Account {
            action: AccountAction::Add { name },
        } => {
            let state = AppState::open(settings)?;
            let mut conn = state.pool.get()?;
            if accounts::find_account_by_name(&mut conn, &name)?.is_some() {
                bail!("account {name:?} already exists");
            }
            let account = accounts::create_account(&mut conn, &name)?;
            println!("created account {} (id {})", account.name, account.id);
        }
        Command::User {
            action:
                UserAction::Add {
                    account,
                    email,
                    role,
                    password_stdin: _,
                },
        } => {
            let role = Role::from_code(&role).context("role must be owner or member")?;
            if role == Role::Staff {
                bail!(
                    "staff belong to no customer account: create them with \
                     `mailtrail staff add --email E --password-stdin`"
                );
            }
            let password = password_from_stdin()?;
            if mailtrail::domain::EmailAddress::parse(&email).is_none() {
                bail!("{email:?} is not an email address");
            }
            let state = AppState::open(settings)?;
            let mut conn = state.pool.get()?;
            let account = accounts::find_account_by_name(&mut conn, &account)?
                .with_context(|| format!("no account named {account:?}"))?;
            if accounts::find_user_by_email(&mut conn, &email)?.is_some() {
                bail!("a user with email {email:?} already exists");
            }
            let user = accounts::create_user(
                &mut conn,
                account.id,
                &email,
                role,
                &hash_password(&password),
            )?;
            println!(
                "created user {} ({}) in account {}",
                user.email, user.role, account.name
            );
        }
        Command::Staff { action } => {
            let state = AppState::open(settings)?;
            let mut conn = state.pool.get()?;
            match action {
                StaffAction::Add { email, .. } => {
                    let password = password_from_stdin()?;
                    if mailtrail::domain::EmailAddress::parse(&email).is_none() {
                        bail!("{email:?} is not an email address");
                    }
                    if accounts::find_user_by_email(&mut conn, &email)?.is_some() {
                        bail!("a user with email {email:?} already exists");
                    }
                    let user =
                        accounts::create_staff(&mut conn, &email, &hash_password(&password))?;
                    println!("created staff user {}", user.email);
                }
                StaffAction::Password { email, .. } => {
                    let password = password_from_stdin()?;
                    if !accounts::set_staff_password(&mut conn, &email, &hash_password(&password))?
                    {
                        bail!("no staff user with email {email:?}");
                    }
                    println!("new password set for staff user {email}; their sessions ended");
                }
                StaffAction::Remove { email } => {
                    if !accounts::remove_staff(&mut conn, &email)? {
                        bail!("no staff user with email {email:?}");
                    }
                    println!("removed staff user {email}; their sessions ended");
                }
                StaffAction::List => {
                    for user in accounts::list_staff(&mut conn)? {
                        println!("{}", user.email);
                    }
                }
            }
        }
        Command::ApiUser {
            action:
                ApiUserAction::Add {
                    account,
                    name,
                    mail_type,
                },
        } => {
            let state = AppState::open(settings)?;
            let mut conn = state.pool.get()?;
            let account = accounts::find_account_by_name(&mut conn, &account)?
                .with_context(|| format!("no account named {account:?}"))?;
            let mail_type =
                MailType::from_code(&mail_type).context("mail type must be trigger or batch")?;
            let (api_user, key) = accounts::create_api_user(
                &mut conn,
                &AccountScope::new(account.id),
                &name,
                mail_type,
            )
            .with_context(|| format!("cannot create API user {name:?} (does it exist already?)"))?;
            println!(
                "created API user {} ({}) in account {}; its key, shown only now:",
                api_user.name, mail_type, account.name
            );
            println!("{key}");
        }
        Command::Generate {
            account,
            messages: count,
            days,
            seed,
        } => {
            let state = AppState::open(settings)?;
            let mut conn = state.pool.get()?;
            let account = accounts::find_account_by_name(&mut conn, &account)?
                .with_context(|| format!("no account named {account:?}"))?;
            let started = Instant::now();
            let stats =
                generate::generate(&mut conn, &AccountScope::new(account.id), count, days, seed)?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "generated {} messages, {} events, {} opens/clicks, {} list entries in {:.1} s ({:.0} messages/s)",
                stats.messages, stats.events, stats.tracking, stats.list_entries, secs, stats.messages as f64 / secs.max(0.001)
            );
        }
        Command::SignLink {
            account,
            email_id,
            url,
            base_url,
        } => sign_link(settings, &account, &email_id, url.as_deref(), base_url)?,
        Command::IngestPostfix {
            account,
            follow,
            api_user,
            time_zone,
            files,
        } => ingest_postfix(settings, &account, follow, api_user, &time_zone, &files)?,
    }
    Ok(())
}

/// `mailtrail ingest-postfix`: the reading lives in `feeds::postfix`; this part opens the
/// database and, with --follow, polls once a second until asked to stop.
fn ingest_postfix(
    settings: Settings,
    account: &str,
    follow: bool,
    api_user: String,
    time_zone: &str,
    files: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    use mailtrail::feeds::postfix::{read_files, Follower, Reader};
    let zone: chrono_tz::Tz = time_zone
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown time zone {time_zone:?}"))?;
    let state = AppState::open(settings)?;
    let mut conn = state.pool.get()?;
    let account = accounts::find_account_by_name(&mut conn, account)?
        .with_context(|| format!("no account named {account:?}"))?;
    let sender = mailtrail::ingest::Sender {
        api_user,
        mail_type: MailType::Trigger,
    };
    let mut reader = Reader::new(AccountScope::new(account.id), sender, zone);
    if !follow {
        read_files(&mut conn, &mut reader, files)?;
    } else {
        if files
            .iter()
            .any(|f| f.as_os_str() == "-" || f.extension().is_some_and(|e| e == "gz"))
        {
            bail!(
                "--follow reads plain log files; pipe journalctl or rotated .gz files without it"
            );
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Stopping between polls is tidy; being killed mid-batch loses nothing either, since
        // each batch commits with its position.
        let signals = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let flag = stop.clone();
        signals.spawn(async move {
            let token = tokio_util::sync::CancellationToken::new();
            stop_on_signal(token.clone()).await;
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let mut followers = files
            .iter()
            .map(|f| Follower::open(&mut conn, &mut reader, f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        log::info!(
            "following {} file(s) for account {}",
            followers.len(),
            account.name
        );
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let mut read = false;
            for f in &mut followers {
                read |= f.poll(&mut conn, &mut reader)?;
            }
            if !read {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
    let s = &reader.stats;
    println!(
        "read {} lines: {} deliveries, {} events applied, {} refused, {} unparseable lines",
        s.lines, s.deliveries, s.events, s.rejected, s.unparseable
    );
    Ok(())
}

/// `mailtrail sign-link`: signs with the key the server derives from the same secret (the data
/// dir's secret.key or MAILTRAIL_SECRET_KEY), so the server accepts what this prints.
fn sign_link(
    settings: Settings,
    account: &str,
    email_id: &str,
    url: Option<&str>,
    base_url: Option<String>,
) -> anyhow::Result<()> {
    use mailtrail::domain::token::{link_url, Link, LinkKey};
    let base = base_url
        .or_else(|| settings.public_url.clone())
        .filter(|b| !b.trim().is_empty())
        .context("no base URL: pass --base-url https://… or set MAILTRAIL_PUBLIC_URL")?;
    let base = base.trim();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("the base URL {base:?} must start with http:// or https://");
    }
    let secret = settings
        .load_or_create_secret()
        .with_context(|| format!("cannot read the secret in {}", settings.data_dir.display()))?;
    let key = LinkKey::derive(&secret);
    let state = AppState::open(settings)?;
    let mut conn = state.pool.get()?;
    let account = accounts::find_account_by_name(&mut conn, account)?
        .with_context(|| format!("no account named {account:?}"))?;
    let mut links = vec![Link::open(account.id, email_id)];
    if let Some(url) = url {
        links.push(Link::click(account.id, email_id, url));
    }
    links.push(Link::unsubscribe(account.id, email_id));
    for link in links {
        let token = key.sign(&link)?;
        println!("{}", link_url(base, link.kind, &token));
    }
    Ok(())
}

/// `mailtrail classify`: needs no database; exit 0 whenever the input could be read.
fn classify(file: Option<&std::path::Path>, rules: Option<&std::path::Path>) -> anyhow::Result<()> {
    let classifier = match rules {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read rules file {}", path.display()))?;
            Classifier::with_extra_rules(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => Classifier::new(),
    };
    let input = match file {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => {
            let mut buffer = Vec::new();
            std::io::stdin().read_to_end(&mut buffer)?;
            buffer
        }
    };
    println!("{}", classifier.classify_input(&input).to_json_line());
    Ok(())
}

/// Waits for SIGTERM or SIGINT (Ctrl-C), then asks everything to stop gracefully. A second
/// signal is not waited for: the graceful stop has a deadline of its own.
async fn stop_on_signal(shutdown: tokio_util::sync::CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                log::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = term => log::info!("SIGTERM: finishing the requests in flight, then stopping"),
        _ = tokio::signal::ctrl_c() => log::info!("SIGINT: finishing the requests in flight, then stopping"),
    }
    shutdown.cancel();
}

/// `serve --demo`: on an empty database, the demo account, its user and a month of traffic.
fn seed_demo(state: &AppState) -> anyhow::Result<()> {
    let mut conn = state.pool.get()?;
    if accounts::find_account_by_name(&mut conn, "demo")?.is_some() {
        println!("demo: account demo exists; log in as demo@example.com / demo");
        return Ok(());
    }
    let started = Instant::now();
    let account = accounts::create_account(&mut conn, "demo")?;
    accounts::create_user(
        &mut conn,
        account.id,
        "demo@example.com",
        Role::Owner,
        &hash_password("demo"),
    )?;
    let scope = AccountScope::new(account.id);
    for (name, mail_type) in [
        ("notify_trigger", MailType::Trigger),
        ("marketing_batch", MailType::Batch),
    ] {
        accounts::create_api_user(&mut conn, &scope, name, mail_type)?;
    }
    if messages::is_empty(&mut conn, &scope)? {
        generate::generate(&mut conn, &scope, 50_000, 30, 7)?;
    }
    // The demo shows the S+ features too: content and send logs of the newest messages.
    accounts::set_splus(&mut conn, account.id, true, true)?;
    generate::sample_content(&mut conn, &scope, 300)?;
    println!(
        "demo: created account demo with 50,000 messages over 30 days in {:.1} s; log in as demo@example.com / demo",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
