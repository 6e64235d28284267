//! Accounts, their users and API users, and the operator's support staff.

use std::io::Read;

use anyhow::{bail, Context};

use super::{account_named, connect, StaffAction};
use mailtrail::domain::{hash_password, EmailAddress, MailType, Role};
use mailtrail::store::{accounts, AccountScope};
use mailtrail::Settings;

/// `mailtrail account add NAME`.
pub fn add_account(settings: Settings, name: &str) -> anyhow::Result<()> {
    let (_state, mut conn) = connect(settings)?;
    if accounts::find_account_by_name(&mut conn, name)?.is_some() {
        bail!("account {name:?} already exists");
    }
    let account = accounts::create_account(&mut conn, name)?;
    println!("created account {} (id {})", account.name, account.id);
    Ok(())
}

/// `mailtrail user add`: an owner or member of a customer account; never staff.
pub fn add_user(settings: Settings, account: &str, email: &str, role: &str) -> anyhow::Result<()> {
    let role = Role::from_code(role).context("role must be owner or member")?;
    if role == Role::Staff {
        bail!(
            "staff belong to no customer account: create them with \
             `mailtrail staff add --email E --password-stdin`"
        );
    }
    let password = password_from_stdin()?;
    if EmailAddress::parse(email).is_none() {
        bail!("{email:?} is not an email address");
    }
    let (_state, mut conn) = connect(settings)?;
    let account = account_named(&mut conn, account)?;
    if accounts::find_user_by_email(&mut conn, email)?.is_some() {
        bail!("a user with email {email:?} already exists");
    }
    let user = accounts::create_user(
        &mut conn,
        account.id,
        email,
        role,
        &hash_password(&password),
    )?;
    println!(
        "created user {} ({}) in account {}",
        user.email, user.role, account.name
    );
    Ok(())
}

/// `mailtrail staff add|password|remove|list`.
pub fn staff(settings: Settings, action: StaffAction) -> anyhow::Result<()> {
    let (_state, mut conn) = connect(settings)?;
    match action {
        StaffAction::Add { email, .. } => {
            let password = password_from_stdin()?;
            if EmailAddress::parse(&email).is_none() {
                bail!("{email:?} is not an email address");
            }
            if accounts::find_user_by_email(&mut conn, &email)?.is_some() {
                bail!("a user with email {email:?} already exists");
            }
            let user = accounts::create_staff(&mut conn, &email, &hash_password(&password))?;
            println!("created staff user {}", user.email);
        }
        StaffAction::Password { email, .. } => {
            let password = password_from_stdin()?;
            if !accounts::set_staff_password(&mut conn, &email, &hash_password(&password))? {
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
    Ok(())
}

/// `mailtrail api-user add`: prints the key once, alone on the last line.
pub fn add_api_user(
    settings: Settings,
    account: &str,
    name: &str,
    mail_type: &str,
) -> anyhow::Result<()> {
    let (_state, mut conn) = connect(settings)?;
    let account = account_named(&mut conn, account)?;
    let mail_type = MailType::from_code(mail_type).context("mail type must be trigger or batch")?;
    let (api_user, key) =
        accounts::create_api_user(&mut conn, &AccountScope::new(account.id), name, mail_type)
            .with_context(|| format!("cannot create API user {name:?} (does it exist already?)"))?;
    println!(
        "created API user {} ({}) in account {}; its key, shown only now:",
        api_user.name, mail_type, account.name
    );
    println!("{key}");
    Ok(())
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
