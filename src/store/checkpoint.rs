//! WAL checkpoints beside the committer instead of inside its commits.
//!
//! SQLite's automatic checkpoint runs in the COMMIT that takes the log past
//! 1,000 pages: that commit copies the whole log into the database file and
//! syncs it before it returns, and every session waiting on the batch waits
//! for that too. Here the committer's connection hands the copy to a thread
//! of its own, with a connection of its own, as a PASSIVE checkpoint, which
//! never blocks a writer or a reader. A passive checkpoint copies only what
//! was committed when it started, and the log starts over from the top only
//! once all of it is copied: under steady load the thread never catches up.
//! So once the thread's pass is done, the committer copies what came in
//! meanwhile (a few batches) itself, after a commit; its next transaction
//! then starts the log over. Should the log still pass [`INLINE_PAGES`] (a
//! pass that never ends, readers in the way), the committer checkpoints in
//! line as SQLite would have, so the log stays bounded whatever the load.

use std::cell::Cell;
use std::os::raw::c_int;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use rusqlite::Connection;
use rusqlite::hooks::Wal;

use super::StoreError;

/// Log size (pages) at which the thread is asked to checkpoint: SQLite's
/// own default for the automatic checkpoint.
pub const BESIDE_PAGES: c_int = 1000;

/// Log size (pages) at which the committer checkpoints in line, as a
/// bound: about 40 MB with 4 KiB pages.
pub const INLINE_PAGES: c_int = 10 * BESIDE_PAGES;

/// Where the thread is: nothing asked, a pass asked for or running, a pass
/// done (the committer copies the rest).
const IDLE: u8 = 0;
const ASKED: u8 = 1;
const COPIED: u8 = 2;

thread_local! {
    /// Pages in the log after this thread's last commit (the WAL hook's
    /// count): the committer reads it right after COMMIT, on the thread
    /// that ran it.
    static LOG_PAGES: Cell<c_int> = const { Cell::new(0) };
}

fn note_log(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    LOG_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// The committer's end: pokes the checkpoint thread. The thread ends when
/// this is dropped.
#[derive(Debug)]
pub struct Checkpointer {
    poke: SyncSender<()>,
    state: Arc<AtomicU8>,
}

impl Checkpointer {
    /// Takes over `writer`'s checkpoints (its automatic checkpoint is off
    /// from now on) and starts the thread, with a connection to `path`.
    pub fn start(writer: &Connection, path: &Path) -> Result<Checkpointer, StoreError> {
        let own = super::direct::open(path)?;
        let (poke, pokes) = sync_channel(1);
        let state = Arc::new(AtomicU8::new(IDLE));
        let shared = state.clone();
        std::thread::Builder::new()
            .name("mensageria-ckpt".into())
            .spawn(move || run(own, pokes, shared))
            .map_err(|source| StoreError::Thread {
                name: "checkpoint",
                source,
            })?;
        // Replaces the hook that runs the automatic checkpoint.
        writer.wal_hook(Some(note_log));
        Ok(Checkpointer { poke, state })
    }

    /// Called right after `writer` committed, on the thread that ran the
    /// COMMIT: asks the thread for a pass once the log is long enough,
    /// copies the rest in line once that pass is done, and everything in
    /// line when the log is far too long.
    pub fn committed(&self, writer: &Connection) {
        let pages = LOG_PAGES.with(|p| p.replace(0));
        if pages < BESIDE_PAGES {
            return;
        }
        if pages >= INLINE_PAGES {
            tracing::info!(pages, "WAL past its bound: checkpointed by the committer");
            checkpoint(writer);
            self.state.store(IDLE, Ordering::Release);
            return;
        }
        match self.state.load(Ordering::Acquire) {
            IDLE => {
                self.state.store(ASKED, Ordering::Release);
                match self.poke.try_send(()) {
                    Ok(()) | Err(TrySendError::Full(())) => {}
                    Err(TrySendError::Disconnected(())) => {
                        // The thread is gone (it never panics; a failed
                        // start returns an error): SQLite's own, then.
                        tracing::warn!("the checkpoint thread is gone: automatic checkpoints");
                        let _ = writer.pragma_update(None, "wal_autocheckpoint", BESIDE_PAGES);
                    }
                }
            }
            COPIED => {
                checkpoint(writer);
                self.state.store(IDLE, Ordering::Release);
            }
            _ => {}
        }
    }
}

/// A PASSIVE checkpoint whose failure is only logged: the log then waits
/// for the next one.
fn checkpoint(conn: &Connection) {
    if let Err(e) = passive(conn) {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
}

/// One PASSIVE checkpoint: (pages in the log, pages copied).
fn passive(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

fn run(conn: Connection, pokes: Receiver<()>, state: Arc<AtomicU8>) {
    while pokes.recv().is_ok() {
        checkpoint(&conn);
        // Done or failed, the committer takes it from here.
        state.store(COPIED, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with one table, its writer and the writer's checkpointer.
    fn writer(dir: &Path) -> (Connection, Checkpointer) {
        let path = dir.join("c.db");
        let w = super::super::direct::open(&path).unwrap();
        w.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        let ck = Checkpointer::start(&w, &path).unwrap();
        (w, ck)
    }

    fn wal_size(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("c.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// A log past the threshold is copied by the thread and then reused
    /// from the top: the file stops growing though commits go on.
    #[test]
    fn the_thread_keeps_the_log_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let (w, ck) = writer(dir.path());
        let blob = vec![7u8; 16 * 1024];
        let mut max_pages = 0;
        for _ in 0..2000 {
            w.execute("INSERT INTO t (x) VALUES (?1)", [&blob]).unwrap();
            max_pages = max_pages.max(LOG_PAGES.with(|p| p.get()));
            ck.committed(&w);
        }
        // 2,000 commits of 5 pages each: 10,000 pages without checkpoints.
        // With them the log starts over well before the in-line bound.
        assert!(max_pages < INLINE_PAGES, "log reached {max_pages} pages");
        let size = wal_size(dir.path());
        assert!(
            size < 4096 * INLINE_PAGES as u64,
            "WAL file is {size} bytes"
        );
        let n: i64 = w
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2000);
    }

    /// Past the in-line bound the committer copies the log itself.
    #[test]
    fn the_committer_checkpoints_when_far_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (w, ck) = writer(dir.path());
        // Inserted without telling the checkpointer: the log grows unchecked.
        let blob = vec![7u8; 64 * 1024];
        w.execute_batch("BEGIN").unwrap();
        for _ in 0..700 {
            w.execute("INSERT INTO t (x) VALUES (?1)", [&blob]).unwrap();
        }
        w.execute_batch("COMMIT").unwrap();
        let pages = LOG_PAGES.with(|p| p.get());
        assert!(pages >= INLINE_PAGES, "only {pages} pages");
        ck.committed(&w);
        // Copied in line: a checkpoint now finds nothing left to copy.
        let (log, copied) = passive(&w).unwrap();
        assert_eq!(log, copied);
        assert!(log > 0);
    }
}
