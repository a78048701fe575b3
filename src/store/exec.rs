//! The statements of a unit of work, on whichever connection runs it: a
//! sqlx connection (PostgreSQL, and SQLite outside the committer) or the
//! group committer's own SQLite connection (`direct`), which runs them on
//! the commit thread itself. Writes that may run inside the shared commit
//! take `&mut Tx` and speak only through this trait, so the same SQL text
//! (`$n` placeholders) serves both.

use futures_util::future::BoxFuture;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use super::{Dialect, StoreError};

/// One bound value. A NULL keeps its column's type: PostgreSQL will not
/// put a NULL typed as an integer into a text column.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
    NullInt,
    NullText,
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Blob(v)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Arg::NullInt, Arg::Int)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Arg::NullText, Arg::Text)
    }
}

/// `args![a, b, c]`: the values of `$1`, `$2`, `$3`.
macro_rules! args {
    ($($v:expr),* $(,)?) => { vec![$($crate::store::exec::Arg::from($v)),*] };
}
pub(crate) use args;

/// Rows as the driver returned them; decoded by [`Decode`].
pub enum Rows {
    Sqlx(Vec<AnyRow>),
    Direct(Vec<Vec<rusqlite::types::Value>>),
}

/// A connection a unit of work can run statements on. Object-safe, so a
/// unit takes `&mut Tx` whatever the driver.
pub trait Exec: Send {
    fn dialect(&self) -> Dialect;
    /// Runs a statement that returns no rows; the number of rows changed.
    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
    /// Runs a statement and returns all its rows.
    fn fetch<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<Rows, StoreError>>;
}

/// A connection inside a transaction: what the writes of one unit of work
/// take. A sqlx `Transaction`, a pooled connection and the committer's own
/// SQLite connection all are one.
pub type Tx = dyn Exec;

impl dyn Exec + '_ {
    pub async fn exec(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<u64, StoreError> {
        self.execute(sql, args).await
    }

    pub async fn all<T: Decode>(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> Result<Vec<T>, StoreError> {
        match self.fetch(sql, args).await? {
            Rows::Sqlx(rows) => rows
                .iter()
                .map(|r| T::from_sqlx(r).map_err(StoreError::from))
                .collect(),
            Rows::Direct(rows) => rows.into_iter().map(T::from_direct).collect(),
        }
    }

    pub async fn optional<T: Decode>(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.all(sql, args).await?.into_iter().next())
    }

    pub async fn one<T: Decode>(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<T, StoreError> {
        self.optional(sql, args)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }
}

/// A row type: a column, or a tuple of columns.
pub trait Decode: Sized {
    fn from_sqlx(row: &AnyRow) -> Result<Self, sqlx::Error>;
    fn from_direct(row: Vec<rusqlite::types::Value>) -> Result<Self, StoreError>;
}

/// One column's Rust type.
pub trait Column: Sized {
    fn sqlx(row: &AnyRow, i: usize) -> Result<Self, sqlx::Error>;
    fn direct(v: rusqlite::types::Value) -> Result<Self, StoreError>;
}

fn mismatch(want: &str, got: &rusqlite::types::Value) -> StoreError {
    StoreError::Decode(format!("expected {want}, found {:?}", got.data_type()))
}

macro_rules! column {
    ($t:ty, $want:literal, $($pat:pat => $v:expr),+) => {
        impl Column for $t {
            fn sqlx(row: &AnyRow, i: usize) -> Result<Self, sqlx::Error> {
                row.try_get::<$t, _>(i)
            }
            fn direct(v: rusqlite::types::Value) -> Result<Self, StoreError> {
                use rusqlite::types::Value as V;
                match v {
                    $($pat => Ok($v),)+
                    other => Err(mismatch($want, &other)),
                }
            }
        }
    };
}

column!(i64, "integer", V::Integer(n) => n);
column!(Option<i64>, "integer or null", V::Integer(n) => Some(n), V::Null => None);
column!(String, "text", V::Text(s) => s);
column!(Option<String>, "text or null", V::Text(s) => Some(s), V::Null => None);
column!(Vec<u8>, "blob", V::Blob(b) => b, V::Text(s) => s.into_bytes());

impl<T: Column> Decode for T {
    fn from_sqlx(row: &AnyRow) -> Result<Self, sqlx::Error> {
        T::sqlx(row, 0)
    }
    fn from_direct(row: Vec<rusqlite::types::Value>) -> Result<Self, StoreError> {
        next(&mut row.into_iter())
    }
}

/// The next column of a direct row: every `from_direct` decodes with it.
pub fn next<T: Column>(
    cols: &mut impl Iterator<Item = rusqlite::types::Value>,
) -> Result<T, StoreError> {
    T::direct(
        cols.next()
            .ok_or_else(|| StoreError::Decode("a column is missing".into()))?,
    )
}

macro_rules! tuple {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Column),+> Decode for ($($t,)+) {
            fn from_sqlx(row: &AnyRow) -> Result<Self, sqlx::Error> {
                Ok(($($t::sqlx(row, $i)?,)+))
            }
            fn from_direct(row: Vec<rusqlite::types::Value>) -> Result<Self, StoreError> {
                let mut cols = row.into_iter();
                Ok(($(next::<$t>(&mut cols)?,)+))
            }
        }
    };
}

tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);

fn query<'a>(
    sql: &'a str,
    args: Vec<Arg<'a>>,
) -> sqlx::query::Query<'a, Any, sqlx::any::AnyArguments> {
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for a in args {
        q = match a {
            Arg::Int(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
            Arg::Blob(v) => q.bind(v),
            Arg::NullInt => q.bind(None::<i64>),
            Arg::NullText => q.bind(None::<&str>),
        };
    }
    q
}

fn sqlx_dialect(conn: &AnyConnection) -> Dialect {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        Dialect::Sqlite
    } else {
        Dialect::Postgres
    }
}

impl Exec for AnyConnection {
    fn dialect(&self) -> Dialect {
        sqlx_dialect(self)
    }

    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move { Ok(query(sql, args).execute(self).await?.rows_affected()) })
    }

    fn fetch<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<Rows, StoreError>> {
        Box::pin(async move { Ok(Rows::Sqlx(query(sql, args).fetch_all(self).await?)) })
    }
}

/// A sqlx transaction or pooled connection runs on the connection inside.
macro_rules! via_connection {
    ($t:ty) => {
        impl Exec for $t {
            fn dialect(&self) -> Dialect {
                sqlx_dialect(self)
            }
            fn execute<'a>(
                &'a mut self,
                sql: &'a str,
                args: Vec<Arg<'a>>,
            ) -> BoxFuture<'a, Result<u64, StoreError>> {
                let conn: &'a mut AnyConnection = self;
                Exec::execute(conn, sql, args)
            }
            fn fetch<'a>(
                &'a mut self,
                sql: &'a str,
                args: Vec<Arg<'a>>,
            ) -> BoxFuture<'a, Result<Rows, StoreError>> {
                let conn: &'a mut AnyConnection = self;
                Exec::fetch(conn, sql, args)
            }
        }
    };
}

via_connection!(sqlx::Transaction<'static, Any>);
via_connection!(sqlx::pool::PoolConnection<Any>);
