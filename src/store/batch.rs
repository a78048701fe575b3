//! Group commit: the store's one writer on the hot path. Units of work from
//! many SMTP sessions (and the relay's claims and outcomes) that arrive
//! while a commit is in flight run in one transaction, so one disk sync
//! (SQLite WAL with synchronous=FULL) or one WAL flush (PostgreSQL)
//! acknowledges many messages. Each caller gets its result only after the
//! transaction that holds its work has committed — 250 still means durable.
//!
//! All of it runs on one connection kept for the purpose: the connection
//! that wrote last keeps its SQLite page cache (any other re-reads every
//! page it touches), and no two writers wait on each other's lock. On
//! SQLite that connection is the committer's own (`direct`), stepped on a
//! thread of its own without a hand-off per statement, so no commit waits
//! in the run queue behind the sessions' parsing. On PostgreSQL, whose
//! statements are round trips to await, the committer is a task of the
//! daemon's runtime (see `on_the_callers_runtime`).
//!
//! On PostgreSQL each statement is a round trip on the batch's path, so a
//! batch's COMMIT also begins the next batch's transaction (`COMMIT; BEGIN`
//! in one message): the next batch starts with its first write. That
//! transaction has done nothing (no snapshot, no transaction ID, no lock),
//! and it is rolled back when no unit has come for [`OPEN_IDLE`], so an
//! idle gateway leaves none open. Where the server ends idle transactions
//! sooner than [`AHEAD_ONLY_IF_ALLOWED`] (`idle_in_transaction_session_timeout`),
//! each batch begins its own.
//!
//! A unit that fails fails its whole batch (PostgreSQL aborts the
//! transaction on an error): every caller of that batch gets an error and
//! the clients retry. Nothing is acknowledged that was not committed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::Any;
use sqlx::pool::PoolConnection;
use tokio::sync::{Notify, mpsc, oneshot};

use super::checkpoint::Checkpointer;
use super::{Dialect, Store, StoreError, Tx};

/// One unit of work, run inside the batch's transaction.
pub type Work<T, E> = Box<
    dyn for<'t> FnOnce(&'t mut Tx) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>
        + Send,
>;

/// Tells a caller how its batch ended: None when it committed, else why not.
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;

/// A unit with its result type erased: Ok carries the delivery of the
/// unit's value; Err means the unit failed (its caller already knows why).
type Unit = Box<
    dyn for<'t> FnOnce(&'t mut Tx) -> Pin<Box<dyn Future<Output = Result<Deliver, ()>> + Send + 't>>
        + Send,
>;

const NOT_RUN: &str = "another unit in the same transaction failed";

/// How long a batch may wait for units announced as coming (see
/// [`Committer::coming`]) before it commits without them. tokio's timer
/// counts in milliseconds, so this is the shortest wait there is.
const GATHER: Duration = Duration::from_millis(1);

/// How long a PostgreSQL transaction begun ahead of the next batch stays
/// open while no unit comes (see `Pg`). Under load the next batch comes
/// within a few milliseconds; an idle gateway (the relay looks for due mail
/// once a second) holds the transaction a fortieth of the time at most.
const OPEN_IDLE: Duration = Duration::from_millis(25);

/// The shortest `idle_in_transaction_session_timeout` under which a
/// transaction is still begun ahead: well above [`OPEN_IDLE`].
const AHEAD_ONLY_IF_ALLOWED: Duration = Duration::from_secs(1);

enum Msg {
    /// A unit, with its announcement, which ends as the committer takes it.
    Unit(Unit, Option<Coming>),
    /// Give the kept connection back (the pool is closing); answered when done.
    Release(oneshot::Sender<()>),
}

/// Handle to the committer; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    units: mpsc::Sender<Msg>,
    /// Units announced and not yet submitted (see [`Committer::coming`]).
    coming: Arc<Expected>,
}

/// The count of units on their way, and a signal for when it falls to 0.
#[derive(Default)]
struct Expected {
    count: AtomicUsize,
    none_left: Notify,
}

/// A unit on its way: a message whose DATA has ended and which is being
/// decided. While any is, a batch waits up to [`GATHER`] for it instead of
/// committing alone, as PostgreSQL's `commit_delay` with `commit_siblings`
/// does: one sync for both. Dropped when the committer takes its unit, or
/// when the decision ends without one.
pub struct Coming(Arc<Expected>);

impl Drop for Coming {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_left.notify_one();
        }
    }
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Committer")
    }
}

impl Committer {
    /// Starts the committer; it ends when every handle is dropped.
    /// `store` must not hold this committer (it would never end).
    /// `max_batch` bounds the units per transaction.
    pub(super) fn start(store: Store, max_batch: usize) -> Committer {
        Self::start_gathering(store, max_batch, GATHER)
    }

    /// [`Committer::start`] with another wait for units on their way.
    fn start_gathering(store: Store, max_batch: usize, gather: Duration) -> Committer {
        let max_batch = max_batch.max(1);
        let (units, rx) = mpsc::channel(max_batch * 4);
        let coming = Arc::new(Expected::default());
        let expected = coming.clone();
        let on_runtime = on_the_callers_runtime(store.dialect());
        let committer = run(store, rx, max_batch, expected, gather);
        if on_runtime {
            tokio::spawn(committer);
        } else {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let spawned = std::thread::Builder::new()
                        .name("mensageria-commit".into())
                        .spawn(move || rt.block_on(committer));
                    if let Err(e) = spawned {
                        // Every submit then answers Stopped (451 to a client).
                        tracing::error!(error = %e, "cannot start the commit thread");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no runtime for the commit thread; committing on the caller's");
                    tokio::spawn(committer);
                }
            }
        }
        Committer { units, coming }
    }

    /// Announces a unit that will be submitted soon (a message being
    /// decided), so that a batch about to commit waits for it.
    pub fn coming(&self) -> Coming {
        self.coming.count.fetch_add(1, Ordering::AcqRel);
        Coming(self.coming.clone())
    }

    /// Runs `work` in the next batch; returns once that batch committed.
    pub async fn submit<T, E>(&self, work: Work<T, E>) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit_coming(None, work).await
    }

    /// [`Committer::submit`] for a unit announced by `coming`: the
    /// announcement ends as the committer takes the unit.
    pub async fn submit_coming<T, E>(
        &self,
        coming: Option<Coming>,
        work: Work<T, E>,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (done, result) = oneshot::channel::<Result<T, E>>();
        let unit: Unit = Box::new(move |tx: &mut Tx| {
            Box::pin(async move {
                match work(tx).await {
                    Ok(value) => Ok(Box::new(move |failure: Option<&str>| {
                        let reply = match failure {
                            None => Ok(value),
                            Some(why) => Err(E::from(StoreError::Batch(why.to_owned()))),
                        };
                        let _ = done.send(reply);
                    }) as Deliver),
                    Err(e) => {
                        // The failing unit keeps its own error.
                        let _ = done.send(Err(e));
                        Err(())
                    }
                }
            })
        });
        // The announcement travels with the unit and ends as the committer
        // takes it: then a count of 0 there means nothing else is on its
        // way, and a lone session's unit is committed at once.
        if self.units.send(Msg::Unit(unit, coming)).await.is_err() {
            return Err(StoreError::Stopped.into());
        }
        match result.await {
            Ok(r) => r,
            // Dropped unrun: an earlier unit of its batch failed, or the
            // committer stopped.
            Err(_) => Err(StoreError::Batch(NOT_RUN.into()).into()),
        }
    }

    /// Returns the kept connection to the pool, so that closing the pool
    /// does not wait for it. Units submitted later take a new one.
    pub async fn release(&self) {
        let (done, released) = oneshot::channel();
        if self.units.send(Msg::Release(done)).await.is_ok() {
            let _ = released.await;
        }
    }
}

/// Whether the committer runs as a task of the caller's runtime rather than
/// on a thread of its own: on PostgreSQL, where every statement is a round
/// trip the task awaits, under a multi-threaded runtime (the daemon's).
/// There a session's unit and its reply are handed between tasks, often on
/// the same worker, instead of waking another thread and back: measured,
/// one session +24 % replies a second and the one-session p50 −12 %, 50
/// sessions back to back +12 %. SQLite's connection is stepped without an
/// await (see `direct`), so it keeps its thread; so does a single-threaded
/// runtime, which would run the committer only while its own caller
/// awaited.
fn on_the_callers_runtime(dialect: Dialect) -> bool {
    dialect == Dialect::Postgres
        && tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// The connection the batches run on.
enum Conn {
    /// A pooled sqlx connection to SQLite in memory.
    Pool(PoolConnection<Any>),
    /// PostgreSQL, with the transaction begun ahead (see `Pg`).
    Pg(Pg),
    /// The committer's own SQLite connection (see `direct`), whose WAL
    /// checkpoints run beside it (see `checkpoint`).
    Direct(rusqlite::Connection, Checkpointer),
}

/// The committer's PostgreSQL connection. `open`: a transaction is open on
/// it, begun by the last batch's `COMMIT; BEGIN` (or its state is unknown
/// after a failure). sqlx does not know of that transaction, and its pool
/// does not roll back what it is given back, so a connection dropped while
/// open is closed rather than returned.
struct Pg {
    conn: PoolConnection<Any>,
    open: bool,
    /// The server lets a transaction idle long enough to begin one ahead.
    ahead: bool,
}

impl Drop for Pg {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

impl Pg {
    async fn connect(store: &Store) -> Result<Pg, StoreError> {
        let mut conn = store.pool().acquire().await?;
        let limit: i64 = sqlx::query_scalar(
            "SELECT setting::bigint FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'",
        )
        .fetch_one(&mut *conn)
        .await?;
        let ahead = limit == 0 || limit >= AHEAD_ONLY_IF_ALLOWED.as_millis() as i64;
        if !ahead {
            tracing::debug!(
                idle_in_transaction_session_timeout_ms = limit,
                "each batch begins its own transaction"
            );
        }
        Ok(Pg {
            conn,
            open: false,
            ahead,
        })
    }

    /// Statements with no parameters go as one simple query: one round trip.
    async fn simple(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        use sqlx::Executor;
        (&mut *self.conn).execute(sql).await.map(|_| ())
    }

    /// Rolls back the transaction begun ahead, if any; false when the
    /// connection failed doing so and should be replaced.
    async fn settle(&mut self) -> bool {
        if !self.open {
            return true;
        }
        match self.simple("ROLLBACK").await {
            Ok(()) => {
                self.open = false;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot end the transaction kept open");
                false
            }
        }
    }
}

async fn connect(store: &Store) -> Result<Conn, StoreError> {
    match (store.sqlite_path(), store.dialect()) {
        (Some(path), _) => {
            let conn = super::direct::open(path)?;
            let checkpoints = Checkpointer::start(&conn, path)?;
            Ok(Conn::Direct(conn, checkpoints))
        }
        (None, Dialect::Postgres) => Ok(Conn::Pg(Pg::connect(store).await?)),
        (None, Dialect::Sqlite) => Ok(Conn::Pool(store.pool().acquire().await?)),
    }
}

/// The next message for the committer. A PostgreSQL transaction begun ahead
/// is rolled back once [`OPEN_IDLE`] passes with none, and the connection
/// dropped if that fails.
async fn next(rx: &mut mpsc::Receiver<Msg>, conn: &mut Option<Conn>) -> Option<Msg> {
    if let Some(Conn::Pg(pg)) = conn
        && pg.open
    {
        if let Ok(m) = tokio::time::timeout(OPEN_IDLE, rx.recv()).await {
            return m;
        }
        if !pg.settle().await {
            *conn = None;
        }
    }
    rx.recv().await
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    coming: Arc<Expected>,
    gather: Duration,
) {
    let mut batch: Vec<Unit> = Vec::with_capacity(max_batch);
    let mut conn: Option<Conn> = None;
    while let Some(first) = next(&mut rx, &mut conn).await {
        let mut release = None;
        take_in(first, &mut batch, &mut release);
        // Whatever queued up while the last commit was in flight joins now;
        // then, while other messages are still being decided, the batch
        // waits a moment for them.
        let until = tokio::time::Instant::now() + gather;
        while batch.len() < max_batch && release.is_none() {
            let next = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(_) if batch.is_empty() || coming.count.load(Ordering::Acquire) == 0 => break,
                Err(_) => tokio::select! {
                    m = rx.recv() => m,
                    // The last one on its way ended without a unit: look again.
                    _ = coming.none_left.notified() => continue,
                    _ = tokio::time::sleep_until(until) => break,
                },
            };
            match next {
                Some(m) => take_in(m, &mut batch, &mut release),
                None => break,
            }
        }
        if batch.is_empty() {
            let_go(&mut conn).await;
            if let Some(done) = release {
                let _ = done.send(());
            }
            continue;
        }
        if conn.is_none() {
            match connect(&store).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    // Dropping the units tells their callers.
                    tracing::warn!(error = %e, units = batch.len(), "no connection for the batch");
                    batch.clear();
                    continue;
                }
            }
        }
        // Dropped after a failed begin or commit, so a broken connection is
        // replaced by the next batch.
        if let Some(c) = conn.as_mut()
            && !commit(c, &mut batch).await
        {
            conn = None;
        }
        if let Some(done) = release {
            let_go(&mut conn).await;
            let _ = done.send(());
        }
    }
    let_go(&mut conn).await;
}

/// Gives the kept connection up, ending a PostgreSQL transaction begun
/// ahead first so that it goes back to the pool clean (if that fails, it
/// is closed instead: see `Pg`).
async fn let_go(conn: &mut Option<Conn>) {
    if let Some(Conn::Pg(pg)) = conn {
        pg.settle().await;
    }
    *conn = None;
}

/// Takes a message into the batch being gathered. A unit's announcement
/// ends here, at once, so that the count says what is still on its way.
fn take_in(m: Msg, batch: &mut Vec<Unit>, release: &mut Option<oneshot::Sender<()>>) {
    match m {
        Msg::Unit(u, announced) => {
            drop(announced);
            batch.push(u);
        }
        Msg::Release(done) => *release = Some(done),
    }
}

/// Runs the batch in one transaction on `conn`; false when the connection
/// itself failed (begin, commit or rollback) and should be replaced.
async fn commit(conn: &mut Conn, batch: &mut Vec<Unit>) -> bool {
    match conn {
        Conn::Pg(pg) => {
            if !pg.open {
                // Unknown until BEGIN answers: a failure closes the connection.
                pg.open = true;
                if let Err(e) = pg.simple("BEGIN").await {
                    return cannot_begin(&e, batch);
                }
            }
            let ran = run_units(&mut *pg.conn, batch).await;
            let ended = match ran {
                Ran::Failed(_) => pg.simple("ROLLBACK").await.map(|()| pg.open = false),
                // A failed COMMIT stops the query there, so BEGIN runs only
                // after a commit; the connection is replaced after either
                // failure, `open` still set so that it is closed.
                Ran::All(_) if pg.ahead => pg.simple("COMMIT; BEGIN").await,
                Ran::All(_) => pg.simple("COMMIT").await.map(|()| pg.open = false),
            };
            deliver(ran, ended.map_err(|e| e.to_string()))
        }
        Conn::Pool(c) => {
            let begun = sqlx::Connection::begin_with(&mut **c, super::BEGIN_IMMEDIATE).await;
            let mut tx = match begun {
                Ok(tx) => tx,
                Err(e) => return cannot_begin(&e, batch),
            };
            let ran = run_units(&mut *tx, batch).await;
            let ended = match ran {
                Ran::Failed(_) => tx.rollback().await.map_err(|e| e.to_string()),
                Ran::All(_) => tx.commit().await.map_err(|e| e.to_string()),
            };
            deliver(ran, ended)
        }
        Conn::Direct(c, checkpoints) => {
            // The write lock at once (see Store::begin); busy_timeout waits.
            if let Err(e) = c.execute_batch(super::BEGIN_IMMEDIATE) {
                return cannot_begin(&e, batch);
            }
            let ran = run_units(c, batch).await;
            let end = match ran {
                Ran::Failed(_) => "ROLLBACK",
                Ran::All(_) => "COMMIT",
            };
            let ended = c.execute_batch(end).map_err(|e| e.to_string());
            if ended.is_err() && !c.is_autocommit() {
                // A failed COMMIT leaves the transaction open: end it.
                let _ = c.execute_batch("ROLLBACK");
            }
            // After the commit and before the callers hear of it: at most a
            // poke, unless the log is far past its bound.
            checkpoints.committed(c);
            deliver(ran, ended)
        }
    }
}

fn cannot_begin(e: &dyn std::fmt::Display, batch: &mut Vec<Unit>) -> bool {
    tracing::warn!(error = %e, "cannot begin the batch");
    batch.clear();
    false
}

/// How the units of a batch ran, with the deliveries of those that ran.
enum Ran {
    All(Timed),
    Failed(Timed),
}

struct Timed {
    ran: Vec<Deliver>,
    started: std::time::Instant,
    worked: std::time::Duration,
}

/// Runs the units in order; after a failure the rest are not run at all
/// (dropped, which tells their callers).
async fn run_units(tx: &mut Tx, batch: &mut Vec<Unit>) -> Ran {
    let started = std::time::Instant::now();
    let mut ran: Vec<Deliver> = Vec::with_capacity(batch.len());
    let mut failed = false;
    for unit in batch.drain(..) {
        if failed {
            continue;
        }
        match unit(tx).await {
            Ok(deliver) => ran.push(deliver),
            Err(()) => failed = true,
        }
    }
    let t = Timed {
        ran,
        started,
        worked: started.elapsed(),
    };
    if failed { Ran::Failed(t) } else { Ran::All(t) }
}

/// Tells every caller whose unit ran how the transaction ended (`ended`:
/// the commit's, or the rollback's, result); true when the connection is
/// fit for the next batch.
fn deliver(ran: Ran, ended: Result<(), String>) -> bool {
    let (t, outcome, healthy) = match ran {
        Ran::Failed(t) => (t, Err(NOT_RUN.to_owned()), ended.is_ok()),
        Ran::All(t) => {
            let healthy = ended.is_ok();
            (t, ended, healthy)
        }
    };
    tracing::debug!(
        units = t.ran.len(),
        work_us = t.worked.as_micros() as u64,
        commit_us = (t.started.elapsed() - t.worked).as_micros() as u64,
        ok = outcome.is_ok(),
        "batch"
    );
    for deliver in t.ran {
        deliver(outcome.as_ref().err().map(String::as_str));
    }
    healthy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::exec::args;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::connect(
            &format!("sqlite://{}", dir.path().join("b.db").display()),
            4,
        )
        .await
        .unwrap();
        s.migrate().await.unwrap();
        (dir, s)
    }

    fn insert(n: i64) -> Work<i64, StoreError> {
        Box::new(move |tx: &mut Tx| {
            Box::pin(async move {
                tx.exec(
                    "INSERT INTO parameters (number, value, updated_at) VALUES ($1, 'x', 0)",
                    args![n],
                )
                .await?;
                Ok(n)
            })
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_units_all_commit() {
        let (_d, s) = store().await;
        let b = s.committer(16);
        let handles: Vec<_> = (0..100)
            .map(|n| {
                let b = b.clone();
                tokio::spawn(async move { b.submit(insert(n)).await })
            })
            .collect();
        for (n, h) in handles.into_iter().enumerate() {
            assert_eq!(h.await.unwrap().unwrap(), n as i64);
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM parameters")
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(count, 100);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_unit_gets_its_error_and_commits_nothing() {
        let (_d, s) = store().await;
        let b = s.committer(16);
        b.submit(insert(1)).await.unwrap();
        // Primary key clash: the unit fails, its caller hears why.
        let err = b.submit(insert(1)).await.unwrap_err();
        assert!(err.to_string().to_lowercase().contains("unique"), "{err}");
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM parameters")
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(count, 1);
        // The committer keeps serving after a failed batch.
        assert_eq!(b.submit(insert(2)).await.unwrap(), 2);
    }

    /// A batch waits for a unit announced as coming, even one sent 200 ms
    /// late (the wait here is long, so nothing depends on timing but that
    /// gap); an announcement that ends without a unit lets the batch go at
    /// once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_waits_for_the_unit_announced() {
        let (_d, s) = store().await;
        let b = Committer::start_gathering(s.clone(), 16, Duration::from_secs(600));
        b.submit(insert(1)).await.unwrap();
        // Both announced before either is sent: whichever comes first
        // waits for the other. Primary key 1 again fails, and with it the
        // batch; so insert(2) fails too only if it shared that batch.
        let (one, two) = (b.coming(), b.coming());
        let clash = tokio::spawn({
            let b = b.clone();
            async move { b.submit_coming(Some(one), insert(1)).await }
        });
        // Late, by design: a batch that did not wait has long committed.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let other = b.submit_coming(Some(two), insert(2)).await;
        assert!(clash.await.unwrap().is_err());
        let why = other
            .expect_err("insert(2) shared the failed batch")
            .to_string();
        assert!(why.contains(NOT_RUN), "{why}");

        let coming = b.coming();
        let alone = tokio::spawn({
            let b = b.clone();
            async move { b.submit(insert(3)).await }
        });
        drop(coming);
        let done = tokio::time::timeout(Duration::from_secs(60), alone).await;
        assert_eq!(
            done.expect("committed without waiting").unwrap().unwrap(),
            3
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn units_of_different_types_share_the_committer() {
        let (_d, s) = store().await;
        let b = s.committer(16);
        let text: Work<String, StoreError> = Box::new(|tx: &mut Tx| {
            Box::pin(async move {
                let n: i64 = tx.one("SELECT COUNT(*) FROM parameters", args![]).await?;
                Ok(format!("{n} rows"))
            })
        });
        let (a, t) = tokio::join!(b.submit(insert(7)), b.submit(text));
        assert_eq!(a.unwrap(), 7);
        assert!(t.unwrap().ends_with(" rows"));
    }
}
