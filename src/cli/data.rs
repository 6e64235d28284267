//! The database and the mail data: `migrate`, `prune`, `generate`, `sign-link`, and
//! `classify`, which needs no database.

use std::io::Read;
use std::time::Instant;

use anyhow::{bail, Context};

use super::{account_named, connect};
use mailtrail::classify::Classifier;
use mailtrail::demo::generate as demo;
use mailtrail::store::AccountScope;
use mailtrail::Settings;

/// `mailtrail migrate`.
pub fn migrate(settings: Settings) -> anyhow::Result<()> {
    let (_state, mut conn) = connect(settings)?;
    let ran = mailtrail::db::migrate(&mut conn)?;
    println!("database is up to date ({ran} migrations ran now)");
    Ok(())
}

/// `mailtrail prune`: what a server with this retention removes every 10 minutes, now.
pub fn prune(settings: Settings) -> anyhow::Result<()> {
    let days = settings
        .retention_days
        .context("no retention: pass --retention-days N or set MAILTRAIL_RETENTION_DAYS")?;
    let (_state, mut conn) = connect(settings)?;
    let pruned = mailtrail::store::retention::prune(&mut conn, days, mailtrail::domain::now_ms())?;
    if pruned.skipped {
        println!("another server is pruning now; nothing done");
        return Ok(());
    }
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
    Ok(())
}

/// `mailtrail generate`: synthetic traffic into an account.
pub fn generate(
    settings: Settings,
    account: &str,
    count: u64,
    days: u32,
    seed: u64,
) -> anyhow::Result<()> {
    let (_state, mut conn) = connect(settings)?;
    let account = account_named(&mut conn, account)?;
    let started = Instant::now();
    let stats = demo::generate(&mut conn, &AccountScope::new(account.id), count, days, seed)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "generated {} messages, {} events, {} opens/clicks, {} list entries in {:.1} s ({:.0} messages/s)",
        stats.messages, stats.events, stats.tracking, stats.list_entries, secs, stats.messages as f64 / secs.max(0.001)
    );
    Ok(())
}

/// `mailtrail sign-link`: signs with the key the server derives from the same secret (the data
/// dir's secret.key or MAILTRAIL_SECRET_KEY), so the server accepts what this prints.
pub fn sign_link(
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
    let (_state, mut conn) = connect(settings)?;
    let account = account_named(&mut conn, account)?;
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
pub fn classify(
    file: Option<&std::path::Path>,
    rules: Option<&std::path::Path>,
) -> anyhow::Result<()> {
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
