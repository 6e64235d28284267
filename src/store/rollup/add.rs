//! Adding counts to rollup buckets, many buckets per statement: `INSERT … VALUES (…), (…)
//! ON CONFLICT (key) DO UPDATE SET count = count + excluded.count`, in statements of a few
//! fixed sizes (100, 10, 1 rows).
//!
//! Diesel never caches an upsert's prepared statement (`DO UPDATE` marks it unsafe to cache),
//! so SQLite parsed one statement per bucket, batch after batch, and PostgreSQL paid a round
//! trip per bucket. Written by hand with a static query id, each size of each table is
//! prepared once per connection; a batch's few hundred buckets are a handful of statements.
//! The rows go in key order, so that two writers lock the buckets they share in one order.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, SmallInt, Text};

use crate::db::{db_run, DbConn};
use crate::store::StoreResult;

/// One bound value of a bucket's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value<'a> {
    Big(i64),
    Small(i16),
    Text(&'a str),
}

/// A rollup table: its columns (the count last) and its key.
pub trait CountTable: 'static {
    /// `INSERT INTO table (columns…, count) VALUES `
    const INSERT: &'static str;
    /// Values per row, the count included.
    const WIDTH: usize;
    /// ` ON CONFLICT (key…) DO UPDATE SET count = table.count + excluded.count`
    const CONFLICT: &'static str;
}

/// A rollup table of `columns` (the count follows them), which are also its key: an
/// `ON CONFLICT` names the key's columns as a set, in any order.
macro_rules! count_table {
    ($marker:ident, $table:literal, [$($column:literal),+]) => {
        pub struct $marker;
        impl CountTable for $marker {
            const INSERT: &'static str =
                concat!("INSERT INTO ", $table, " (", $($column, ", ",)+ "count) VALUES ");
            const WIDTH: usize = [$($column),+].len() + 1;
            const CONFLICT: &'static str = concat!(
                " ON CONFLICT (",
                count_table!(@list $($column),+),
                ") DO UPDATE SET count = ",
                $table,
                ".count + excluded.count"
            );
        }
    };
    (@list $first:literal $(, $rest:literal)*) => { concat!($first $(, ", ", $rest)*) };
}

count_table!(
    StatusHour,
    "status_rollup",
    [
        "account_id",
        "hour",
        "status",
        "reason",
        "api_user",
        "mail_type"
    ]
);
count_table!(
    StatusDay,
    "status_rollup_daily",
    [
        "account_id",
        "day",
        "status",
        "reason",
        "api_user",
        "mail_type"
    ]
);
count_table!(
    StatusTagHour,
    "status_rollup_tags",
    [
        "account_id",
        "tag",
        "hour",
        "status",
        "reason",
        "api_user",
        "mail_type"
    ]
);
count_table!(
    ProviderHour,
    "provider_rollup",
    ["account_id", "provider", "hour", "status", "reason"]
);
count_table!(
    ProviderDay,
    "provider_rollup_daily",
    ["account_id", "provider", "day", "status", "reason"]
);

/// `N` rows of table `T`, as one statement.
struct AddCounts<'a, T, const N: usize> {
    values: &'a [Value<'a>],
    table: PhantomData<T>,
}

/// The query id of [`AddCounts`]: one prepared statement per table and size.
pub struct AddCountsId<T, const N: usize>(PhantomData<T>);

impl<T: CountTable, const N: usize> QueryId for AddCounts<'_, T, N> {
    type QueryId = AddCountsId<T, N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB, T: CountTable, const N: usize> QueryFragment<DB> for AddCounts<'_, T, N>
where
    DB: Backend,
    i64: ToSql<BigInt, DB>,
    i16: ToSql<SmallInt, DB>,
    str: ToSql<Text, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(T::INSERT);
        for (i, row) in self.values.chunks(T::WIDTH).enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            for (j, value) in row.iter().enumerate() {
                if j > 0 {
                    out.push_sql(", ");
                }
                match value {
                    Value::Big(v) => out.push_bind_param::<BigInt, i64>(v)?,
                    Value::Small(v) => out.push_bind_param::<SmallInt, i16>(v)?,
                    Value::Text(v) => out.push_bind_param::<Text, str>(v)?,
                }
            }
            out.push_sql(")");
        }
        out.push_sql(T::CONFLICT);
        Ok(())
    }
}

impl<T, const N: usize, Conn> RunQueryDsl<Conn> for AddCounts<'_, T, N> {}

/// Adds each row's count to its bucket of table `T`, creating buckets as needed. `rows` are
/// the rows' values one after another, `T::WIDTH` each, the count last; no key twice, in the
/// order the buckets should be locked.
pub fn add_counts<T: CountTable>(conn: &mut DbConn, rows: &[Value<'_>]) -> StoreResult<()> {
    debug_assert_eq!(rows.len() % T::WIDTH, 0);
    let mut rest = rows;
    while !rest.is_empty() {
        rest = match rest.len() / T::WIDTH {
            n if n >= 100 => add_some::<T, 100>(conn, rest)?,
            n if n >= 10 => add_some::<T, 10>(conn, rest)?,
            _ => add_some::<T, 1>(conn, rest)?,
        };
    }
    Ok(())
}

/// Writes the first `N` rows; answers the rest.
fn add_some<'r, 'v, T: CountTable, const N: usize>(
    conn: &mut DbConn,
    rows: &'r [Value<'v>],
) -> StoreResult<&'r [Value<'v>]> {
    let (head, tail) = rows.split_at(N * T::WIDTH);
    let statement = AddCounts::<T, N> {
        values: head,
        table: PhantomData,
    };
    db_run!(conn, |c| statement.execute(c))?;
    Ok(tail)
}
