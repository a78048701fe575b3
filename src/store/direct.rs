//! SQLite without sqlx's worker threads, where it counts. sqlx runs every
//! SQLite statement on a thread of its own, handed over and back per
//! statement (and pinged once more when the connection goes back to the
//! pool). The group committer already has a thread for its work, so it
//! opens the file itself and steps its statements right there; and the
//! per-message reads of the inbound path (the ticket, the thread) run
//! inline on the session's thread from a few kept read-only connections:
//! point lookups by key, which in WAL mode never wait for the writer. Same
//! file, same pragmas, same SQL text as the pool's connections.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

use super::exec::{Arg, Exec, Rows};
use super::{Dialect, StoreError};

/// Opens `path` for writing, set up as the pool's connections are
/// (`SQLITE_PRAGMAS`).
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(super::SQLITE_PRAGMAS)?;
    // Every statement of the hot path stays prepared.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Idle read connections kept for the next reader.
const IDLE_READERS: usize = 4;

/// Read-only connections for the hot path's lookups.
#[derive(Debug)]
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An idle connection, or a new one.
    pub fn get(&self) -> Result<Reader<'_>, StoreError> {
        let kept = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match kept {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                // A reader waits only while SQLite recovers the WAL after a
                // crash; it runs on a session's thread, so not for long.
                // Point lookups: a small page cache each (the OS caches the
                // file), so the idle daemon stays small.
                c.execute_batch(
                    "PRAGMA query_only=1; PRAGMA busy_timeout=1000; PRAGMA cache_size=-256;",
                )?;
                c.set_prepared_statement_cache_capacity(16);
                c
            }
        };
        Ok(Reader {
            conn: Some(conn),
            home: self,
        })
    }
}

/// A read connection on loan; it goes back to the idle list when dropped.
pub struct Reader<'a> {
    conn: Option<Connection>,
    home: &'a Readers,
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let mut idle = self.home.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < IDLE_READERS {
                idle.push(c);
            }
        }
    }
}

impl Reader<'_> {
    pub fn conn(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a reader holds its connection until dropped")
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Int(v) => ValueRef::Integer(v),
            Arg::Text(v) => ValueRef::Text(v.as_bytes()),
            Arg::Blob(v) => ValueRef::Blob(v),
            Arg::NullInt | Arg::NullText => ValueRef::Null,
        }))
    }
}

/// Prepares `sql` (cached) and binds `$n` to `args[n - 1]`, as sqlx does:
/// SQLite numbers parameters by first appearance, not by their digits.
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    for i in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix(['$', '?']))
            .and_then(|digits| digits.parse::<usize>().ok())
            .unwrap_or(i);
        let arg = args
            .get(n - 1)
            .ok_or_else(|| StoreError::Decode(format!("no value for parameter ${n}")))?;
        stmt.raw_bind_parameter(i, arg)?;
    }
    Ok(stmt)
}

fn execute(conn: &Connection, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
    Ok(prepare(conn, sql, args)?.raw_execute()? as u64)
}

fn fetch(conn: &Connection, sql: &str, args: &[Arg<'_>]) -> Result<Rows, StoreError> {
    let mut stmt = prepare(conn, sql, args)?;
    let width = stmt.column_count();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut cols = Vec::with_capacity(width);
        for i in 0..width {
            cols.push(row.get::<_, Value>(i)?);
        }
        out.push(cols);
    }
    Ok(Rows::Direct(out))
}

impl Exec for Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        // Runs now, on the caller's (the commit) thread; nothing to await.
        let done = execute(self, sql, &args);
        Box::pin(std::future::ready(done))
    }

    fn fetch<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<Rows, StoreError>> {
        let done = fetch(self, sql, &args);
        Box::pin(std::future::ready(done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::exec::{Tx, args};

    #[tokio::test]
    async fn readers_see_commits_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let mut writer = open(&path).unwrap();
        let w: &mut Tx = &mut writer;
        w.exec("CREATE TABLE t (a INTEGER)", args![]).await.unwrap();
        let readers = Readers::new(path);
        {
            let mut r = readers.get().unwrap();
            let n: i64 = (r.conn() as &mut Tx)
                .one("SELECT COUNT(*) FROM t", args![])
                .await
                .unwrap();
            assert_eq!(n, 0);
        }
        w.exec("INSERT INTO t (a) VALUES ($1)", args![7i64])
            .await
            .unwrap();
        // The connection kept from the first read sees the new row.
        let mut r = readers.get().unwrap();
        let tx: &mut Tx = r.conn();
        let a: Option<i64> = tx.optional("SELECT a FROM t", args![]).await.unwrap();
        assert_eq!(a, Some(7));
        let refused = tx.exec("DELETE FROM t", args![]).await;
        assert!(refused.is_err(), "a reader must not write");
        assert_eq!(
            readers.idle.lock().unwrap().len(),
            0,
            "the one kept connection is on loan"
        );
    }

    /// The hot path's statements stay prepared: run again with new values,
    /// none is compiled again. (A bound LIMIT was: SQLite re-prepared the
    /// relay's claim, the thread lookup and the loop caps at every bind.)
    #[tokio::test]
    async fn hot_statements_are_not_prepared_again_when_bound_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let store = crate::store::Store::connect(&format!("sqlite://{}", path.display()), 2)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let conn = open(&path).unwrap();
        let statements = [
            crate::store::outbox::claim_sql(Dialect::Sqlite, 128),
            crate::store::messages::thread_ids_sql(20),
            crate::store::suppressions::automatic_mail_sql((30, 10), ["$1", "$2", "$3", "$4"]),
        ];
        conn.execute_batch("BEGIN").unwrap();
        for sql in &statements {
            for round in 0..3i64 {
                let mut stmt = conn.prepare_cached(sql).unwrap();
                for i in 1..=stmt.parameter_count() {
                    stmt.raw_bind_parameter(i, 1_000 * round + i as i64)
                        .unwrap();
                }
                let mut rows = stmt.raw_query();
                while rows.next().unwrap().is_some() {}
            }
            let stmt = conn.prepare_cached(sql).unwrap();
            let again = stmt.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(again, 0, "prepared again {again} times: {sql}");
        }
        conn.execute_batch("ROLLBACK").unwrap();
        store.close().await;
    }

    #[tokio::test]
    async fn numbered_parameters_bind_by_number_not_position() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("d.db")).unwrap();
        let tx: &mut Tx = &mut conn;
        tx.exec("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)", args![])
            .await
            .unwrap();
        // $2 appears first and $1 twice: SQLite numbers them 1 and 2 by
        // appearance, the values must still follow the digits.
        tx.exec(
            "INSERT INTO t (b, a, c) VALUES ($2, $1 + $1, $3)",
            args![21i64, "vinte e um", &b"\x00\xff"[..]],
        )
        .await
        .unwrap();
        let (a, b, c): (i64, String, Vec<u8>) = tx
            .one("SELECT a, b, c FROM t WHERE b = $1", args!["vinte e um"])
            .await
            .unwrap();
        assert_eq!(
            (a, b.as_str(), c.as_slice()),
            (42, "vinte e um", &[0u8, 0xff][..])
        );
        let none: Option<i64> = tx
            .optional("SELECT a FROM t WHERE b = $1", args![None::<&str>])
            .await
            .unwrap();
        assert_eq!(none, None);
        let changed = tx
            .exec("UPDATE t SET b = $1", args![Some("x")])
            .await
            .unwrap();
        assert_eq!(changed, 1);
    }
}
