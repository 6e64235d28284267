//! Reading a mail server's own log into an account: `mailtrail ingest-postfix`. The reading
//! lives in `feeds::postfix`; this part opens the database and, with --follow, polls once a
//! second until asked to stop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::bail;

use super::serve::stop_on_signal;
use super::{account_named, connect};
use mailtrail::db::DbConn;
use mailtrail::domain::MailType;
use mailtrail::feeds::postfix::{read_files, Follower, Reader};
use mailtrail::ingest::Sender;
use mailtrail::store::AccountScope;
use mailtrail::Settings;

/// `mailtrail ingest-postfix`: the files once, or with `follow` as they grow and rotate.
pub fn postfix(
    settings: Settings,
    account: &str,
    follow: bool,
    api_user: String,
    time_zone: &str,
    files: &[PathBuf],
) -> anyhow::Result<()> {
    let zone: chrono_tz::Tz = time_zone
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown time zone {time_zone:?}"))?;
    let (_state, mut conn) = connect(settings)?;
    let account = account_named(&mut conn, account)?;
    let sender = Sender {
        api_user,
        mail_type: MailType::Trigger,
    };
    let mut reader = Reader::new(AccountScope::new(account.id), sender, zone);
    if follow {
        follow_files(&mut conn, &mut reader, files, &account.name)?;
    } else {
        read_files(&mut conn, &mut reader, files)?;
    }
    let s = &reader.stats;
    println!(
        "read {} lines: {} deliveries, {} events applied, {} refused, {} unparseable lines",
        s.lines, s.deliveries, s.events, s.rejected, s.unparseable
    );
    Ok(())
}

/// Polls the plain log files once a second until SIGTERM or Ctrl-C.
fn follow_files(
    conn: &mut DbConn,
    reader: &mut Reader,
    files: &[PathBuf],
    account: &str,
) -> anyhow::Result<()> {
    if files
        .iter()
        .any(|f| f.as_os_str() == "-" || f.extension().is_some_and(|e| e == "gz"))
    {
        bail!("--follow reads plain log files; pipe journalctl or rotated .gz files without it");
    }
    let stop = Arc::new(AtomicBool::new(false));
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
        flag.store(true, Ordering::Relaxed);
    });
    let mut followers = files
        .iter()
        .map(|f| Follower::open(conn, reader, f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    log::info!(
        "following {} file(s) for account {account}",
        followers.len()
    );
    while !stop.load(Ordering::Relaxed) {
        let mut read = false;
        for f in &mut followers {
            read |= f.poll(conn, reader)?;
        }
        if !read {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    Ok(())
}
