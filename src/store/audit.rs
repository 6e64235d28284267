//! The audit log: who looked at or changed what, in which account, from where.

use diesel::prelude::*;

use super::models::NewAuditEntry;
use super::StoreResult;
use crate::db::schema::audit_log;
use crate::db::DbConn;

pub fn record(conn: &mut DbConn, entry: NewAuditEntry) -> StoreResult<()> {
    diesel::insert_into(audit_log::table)
        .values(entry)
        .execute(conn)
        .map(|_| ())
}

#[derive(Debug, Clone, Queryable)]
pub struct AuditRow {
    pub id: i64,
    pub account_id: Option<i64>,
    pub actor_email: String,
    pub action: String,
    pub target: String,
    pub ip: String,
    pub occurred_at: i64,
}

/// What `/staff/audit` filters by; every part optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub account_id: Option<i64>,
    pub actor_email: Option<String>,
    pub action: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// The newest entries matching the filter.
pub fn search(conn: &mut DbConn, f: &AuditFilter, limit: i64) -> StoreResult<Vec<AuditRow>> {
    let mut query = audit_log::table
        .select((
            audit_log::id,
            audit_log::account_id,
            audit_log::actor_email,
            audit_log::action,
            audit_log::target,
            audit_log::ip,
            audit_log::occurred_at,
        ))
        .order((audit_log::occurred_at.desc(), audit_log::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(id) = f.account_id {
        query = query.filter(audit_log::account_id.eq(id));
    }
    if let Some(actor) = &f.actor_email {
        query = query.filter(audit_log::actor_email.eq(actor.clone()));
    }
    if let Some(action) = &f.action {
        query = query.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(from) = f.from_ms {
        query = query.filter(audit_log::occurred_at.ge(from));
    }
    if let Some(to) = f.to_ms {
        query = query.filter(audit_log::occurred_at.lt(to));
    }
    query.load(conn)
}
