//! The store: one sqlx pool over SQLite or PostgreSQL, and the queries of
//! every table, one file per table.
//!
//! Both dialects run the same SQL (sqlx's `Any` driver, `$n` placeholders,
//! times as Unix milliseconds); only migrations and the outbox claim differ.
//! Nothing outside this module writes SQL.

pub mod attachments;
pub mod batch;
mod checkpoint;
mod direct;
pub mod exec;
pub mod messages;
pub mod outbox;
pub mod packed;
pub mod params;
pub mod quarantine;
pub mod suppressions;
pub mod templates;
pub mod tickets;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor};

pub use exec::Tx;

/// SQLite's write transaction that waits for the lock instead of failing.
pub(crate) const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

/// How every SQLite connection that may write is set up: WAL with
/// synchronous=FULL (a commit is on disk before it returns), and statement
/// journals in memory. A statement inside a batch's transaction keeps the
/// pages it changes in a sub-journal, to undo just itself on a constraint
/// error; on file temp storage that is a temp file created, written and
/// deleted once the row and its overflow pages pass 64 KiB, which cost more
/// than the INSERT itself.
pub(crate) const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
     PRAGMA temp_store=MEMORY; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;";

/// A transaction on the store; commit it or it is rolled back on drop.
pub type Transaction = sqlx::Transaction<'static, Any>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: cannot read a column: {0}")]
    Decode(String),
    #[error("transaction not committed: {0}")]
    Batch(String),
    #[error("the store is shutting down")]
    Stopped,
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        name: &'static str,
        source: std::io::Error,
    },
    #[error("unsupported database url {0:?} (use sqlite:// or postgres://)")]
    BadUrl(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// On an SQLite file: the file, which the committer opens itself, and
    /// the per-message path's read connections on it (see `direct`); None
    /// for PostgreSQL and an in-memory database.
    readers: Option<Arc<direct::Readers>>,
    /// The group committer, started by the first caller that needs it.
    committer: Arc<OnceLock<batch::Committer>>,
}

/// A connection for the reads of the per-message path: on an SQLite file
/// one of the store's own read connections, stepped inline on the caller's
/// thread; otherwise one from the pool.
pub(crate) enum Reading<'s> {
    Direct(direct::Reader<'s>),
    Pool(sqlx::pool::PoolConnection<Any>),
}

impl Reading<'_> {
    pub(crate) fn tx(&mut self) -> &mut Tx {
        match self {
            Reading::Direct(r) => r.conn(),
            Reading::Pool(c) => c,
        }
    }
}

impl Store {
    /// Opens a pool. A SQLite file (and its folder) is created when missing;
    /// every SQLite connection runs in WAL mode with `synchronous=FULL`, so a
    /// commit is on disk before it returns.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Self::connect_with(url, max_connections, Duration::from_secs(5)).await
    }

    /// As `connect`, with how long a query may wait for a connection: when
    /// the database is down, inbound mail gets 451 after this long.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Store, StoreError> {
        install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            return Err(StoreError::BadUrl(url.into()));
        };
        let mut url = url.to_owned();
        let mut readers = None;
        if dialect == Dialect::Sqlite {
            let (prepared, path) = prepare_sqlite_url(&url)?;
            url = prepared;
            readers = path.map(|p| Arc::new(direct::Readers::new(p)));
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            // No ping before each use: every connection is already tested
            // when it goes back to the pool (sqlx always does that), and on
            // SQLite a ping is one more hand-off to the driver's thread per
            // query. A connection that broke while idle (a PostgreSQL
            // restart) fails its next query; the client gets a 451 and the
            // connection is dropped.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // These connections (the CLI, the admin, writes off
                        // the hot path) keep SQLite's automatic checkpoint;
                        // the committer's run beside it (see `checkpoint`).
                        conn.execute(SQLITE_PRAGMAS).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok(Store {
            pool,
            dialect,
            readers,
            committer: Arc::default(),
        })
    }

    /// Applies the embedded migrations of this store's dialect.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Dialect::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The store's group committer (see `batch`), started on first use with
    /// `max_batch` units per transaction at most.
    pub fn committer(&self, max_batch: usize) -> &batch::Committer {
        self.committer.get_or_init(|| {
            // The committer's own handle on the pool, without the
            // committer in it: it ends when the last Store is dropped.
            let own = Store {
                pool: self.pool.clone(),
                dialect: self.dialect,
                readers: self.readers.clone(),
                committer: Arc::default(),
            };
            batch::Committer::start(own, max_batch)
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A connection for a few reads (see [`Reading`]).
    pub(crate) async fn reader(&self) -> Result<Reading<'_>, StoreError> {
        match &self.readers {
            Some(r) => Ok(Reading::Direct(r.get()?)),
            None => Ok(Reading::Pool(self.pool.acquire().await?)),
        }
    }

    pub(crate) fn sqlite_path(&self) -> Option<&std::path::Path> {
        self.readers.as_deref().map(direct::Readers::path)
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once
    /// (BEGIN IMMEDIATE): a transaction that read first and then tries to
    /// write while another connection writes fails at once with "database
    /// is locked", without waiting out busy_timeout.
    pub async fn begin(&self) -> Result<Transaction, StoreError> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.pool.begin_with(BEGIN_IMMEDIATE).await?,
            Dialect::Postgres => self.pool.begin().await?,
        })
    }

    pub async fn close(&self) {
        if let Some(c) = self.committer.get() {
            c.release().await;
        }
        self.pool.close().await;
    }
}

/// Adds `mode=rwc` so the file is created, and creates its folder; with
/// the file's path, unless the database lives in memory.
fn prepare_sqlite_url(url: &str) -> Result<(String, Option<std::path::PathBuf>), StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or("");
    let in_memory = path.is_empty() || path == ":memory:" || rest.contains("mode=memory");
    if !in_memory
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
            path: parent.display().to_string(),
            source,
        })?;
    }
    let url = if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    };
    Ok((url, (!in_memory).then(|| std::path::PathBuf::from(path))))
}

/// Milliseconds since the Unix epoch, the store's one time format.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Addresses are kept one per line in a TEXT column.
pub fn join_lines(items: &[String]) -> String {
    items.join("\n")
}

pub fn split_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}
