//! Group commit: units of work from many SMTP sessions that arrive while a
//! commit is in flight run in one transaction, so one disk sync (SQLite WAL
//! with synchronous=FULL) or one WAL flush (PostgreSQL) acknowledges many
//! messages. Each caller gets its result only after the transaction that
//! holds its work has committed — 250 still means durable.
//!
//! A unit that fails fails its whole batch (PostgreSQL aborts the
//! transaction on an error): every caller of that batch gets the error and
//! answers 451, and the clients retry. Nothing is acknowledged that was not
//! committed.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

use sqlx::Any;
use sqlx::pool::PoolConnection;

use super::{Store, StoreError, Tx};

/// One unit of work, run inside the batch's transaction.
pub type Work<T, E> = Box<
    dyn for<'t> FnOnce(&'t mut Tx) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>
        + Send,
>;

type Job<T, E> = (Work<T, E>, oneshot::Sender<Result<T, E>>);

/// Handle to the committer task; cheap to clone.
pub struct Batcher<T, E> {
    jobs: mpsc::Sender<Job<T, E>>,
}

impl<T, E> Clone for Batcher<T, E> {
    fn clone(&self) -> Self {
        Batcher {
            jobs: self.jobs.clone(),
        }
    }
}

impl<T, E> Batcher<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    /// Starts the committer; it ends when every handle is dropped.
    /// `max_batch` bounds the units per transaction.
    ///
    /// The committer runs on a thread of its own. On the shared runtime its
    /// every database round trip would wait in the run queue behind the
    /// sessions' parsing, and the one serial step of the inbound path would
    /// advance only as fast as the busiest worker let it.
    pub fn start(store: Store, max_batch: usize) -> Batcher<T, E> {
        let (jobs, rx) = mpsc::channel(max_batch.max(1) * 4);
        let max_batch = max_batch.max(1);
        let own_runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match own_runtime {
            Ok(rt) => {
                let (store, rx2) = (store.clone(), rx);
                let spawned = std::thread::Builder::new()
                    .name("mensageria-commit".into())
                    .spawn(move || rt.block_on(run(store, rx2, max_batch)));
                if let Err(e) = spawned {
                    // Without a thread the batcher cannot run: say why once;
                    // every submit then answers Stopped (451 to the client).
                    tracing::error!(error = %e, "cannot start the commit thread");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no runtime for the commit thread; committing on the shared one");
                tokio::spawn(run(store, rx, max_batch));
            }
        }
        Batcher { jobs }
    }

    /// Runs `work` in the next batch; returns once that batch committed.
    pub async fn submit(&self, work: Work<T, E>) -> Result<T, E> {
        let (done, result) = oneshot::channel();
        if self.jobs.send((work, done)).await.is_err() {
            return Err(StoreError::Stopped.into());
        }
        result
            .await
            .unwrap_or_else(|_| Err(StoreError::Stopped.into()))
    }
}

async fn run<T, E>(store: Store, mut rx: mpsc::Receiver<Job<T, E>>, max_batch: usize)
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let mut batch: Vec<Job<T, E>> = Vec::with_capacity(max_batch);
    // One connection for every batch while it works: on SQLite its page
    // cache stays warm (a connection that wrote last keeps its cache; one
    // that did not re-reads every page it touches). Dropped after an
    // error, so a broken connection is replaced by the next batch.
    let mut conn: Option<PoolConnection<Any>> = None;
    while let Some(first) = rx.recv().await {
        batch.push(first);
        // Whatever queued up while the last commit was in flight joins now.
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            match store.pool().acquire().await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    fail_all(&mut batch, &StoreError::from(e).to_string());
                    continue;
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            if !commit(c, &mut batch).await {
                conn = None;
            }
        }
    }
}

fn fail_all<T, E: From<StoreError>>(batch: &mut Vec<Job<T, E>>, why: &str) {
    for (_, done) in batch.drain(..) {
        let _ = done.send(Err(E::from(StoreError::Batch(why.to_owned()))));
    }
}

/// Runs the batch in one transaction on `conn`; false when the connection
/// itself failed (begin or commit) and should be replaced.
async fn commit<T, E>(conn: &mut PoolConnection<Any>, batch: &mut Vec<Job<T, E>>) -> bool
where
    E: From<StoreError>,
{
    let mut tx = match sqlx::Connection::begin(&mut **conn).await {
        Ok(tx) => tx,
        Err(e) => {
            fail_all(batch, &StoreError::from(e).to_string());
            return false;
        }
    };
    let (started, units) = (std::time::Instant::now(), batch.len());
    // Units run in order; after a failure the rest are not run at all.
    let mut ran: Vec<(Option<T>, oneshot::Sender<Result<T, E>>)> = Vec::with_capacity(batch.len());
    let mut failed: Option<String> = None;
    for (work, done) in batch.drain(..) {
        if failed.is_some() {
            ran.push((None, done));
            continue;
        }
        match work(&mut tx).await {
            Ok(v) => ran.push((Some(v), done)),
            Err(e) => {
                // The failing unit keeps its own error.
                let _ = done.send(Err(e));
                failed = Some("another message in the same transaction failed".into());
            }
        }
    }
    let worked = started.elapsed();
    let (outcome, healthy) = match failed {
        Some(why) => (Err(why), tx.rollback().await.is_ok()),
        None => match tx.commit().await {
            Ok(()) => (Ok(()), true),
            Err(e) => (Err(e.to_string()), false),
        },
    };
    tracing::debug!(
        units,
        work_us = worked.as_micros() as u64,
        commit_us = (started.elapsed() - worked).as_micros() as u64,
        ok = outcome.is_ok(),
        "batch"
    );
    for (value, done) in ran {
        let reply = match (value, &outcome) {
            (Some(v), Ok(())) => Ok(v),
            (_, Err(why)) => Err(E::from(StoreError::Batch(why.clone()))),
            (None, Ok(())) => Err(E::from(StoreError::Batch("not run".into()))),
        };
        let _ = done.send(reply);
    }
    healthy
}

#[cfg(test)]
mod tests {
    use super::*;

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
                sqlx::query(
                    "INSERT INTO parameters (number, value, updated_at) VALUES ($1, 'x', 0)",
                )
                .bind(n)
                .execute(&mut *tx)
                .await?;
                Ok(n)
            })
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_units_all_commit() {
        let (_d, s) = store().await;
        let b: Batcher<i64, StoreError> = Batcher::start(s.clone(), 16);
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
        let b: Batcher<i64, StoreError> = Batcher::start(s.clone(), 16);
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
}
