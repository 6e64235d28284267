//! `mailtrail serve`: the server until SIGTERM or Ctrl-C, and the demo data of `--demo`.

use std::net::TcpListener;
use std::time::Instant;

use anyhow::Context;

use mailtrail::demo::generate;
use mailtrail::domain::{hash_password, MailType, Role};
use mailtrail::store::{accounts, messages, AccountScope};
use mailtrail::{AppState, Settings};

/// Serves on `bind` until a signal, then lets the background workers finish.
pub fn serve(settings: Settings, bind: &str, demo: bool) -> anyhow::Result<()> {
    let state = AppState::open(settings)?;
    if demo {
        seed_demo(&state)?;
    }
    let listener = TcpListener::bind(bind).with_context(|| format!("cannot listen on {bind}"))?;
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
    Ok(())
}

/// Waits for SIGTERM or SIGINT (Ctrl-C), then asks everything to stop gracefully. A second
/// signal is not waited for: the graceful stop has a deadline of its own.
pub async fn stop_on_signal(shutdown: tokio_util::sync::CancellationToken) {
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
