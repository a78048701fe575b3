//! Hand-off: a notification queued by this process goes to this process's
//! relay worker already claimed — the owner and the lease are written by the
//! transaction that queues it — instead of waiting for the worker's next
//! claim, one transaction later. The row is an ordinary claimed row: if the
//! process dies before the relay's 250, the lease runs out and the next
//! claim of any instance takes it. When the worker has no room (a backlog,
//! or it is stopping) the row is queued unclaimed and the worker is woken.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use crate::store::now_ms;
use crate::store::outbox::{Claimed, NewClaim};

/// The inbound side's handle. The default one hands nothing over (a CLI
/// command has no relay worker): rows are queued, the wake-up goes nowhere.
#[derive(Clone, Default)]
pub struct Handoff {
    to_worker: Option<ToWorker>,
    wake: Arc<Notify>,
}

#[derive(Clone)]
struct ToWorker {
    owner: Arc<str>,
    lease_ms: i64,
    rows: mpsc::Sender<Claimed>,
}

/// The worker's side: rows to send, handed over or claimed by the worker
/// itself (`claimed` feeds the same queue), and the wake-up for rows queued
/// for its claim.
pub struct Handed {
    pub rows: mpsc::Receiver<Claimed>,
    pub claimed: mpsc::Sender<Claimed>,
    pub wake: Arc<Notify>,
}

/// Room for one mail in the worker's queue, taken before the transaction
/// that writes the row claimed; given back unused if that row is not
/// written or not committed.
pub struct Slot {
    permit: mpsc::OwnedPermit<Claimed>,
    owner: Arc<str>,
    lease_ms: i64,
}

impl Handoff {
    /// A hand-off to a worker of `owner` whose queue holds `capacity` rows;
    /// handed rows are leased for `lease_ms` from their insert.
    pub fn channel(owner: &str, lease_ms: i64, capacity: usize) -> (Handoff, Handed) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let wake = Arc::<Notify>::default();
        let handoff = Handoff {
            to_worker: Some(ToWorker {
                owner: owner.into(),
                lease_ms,
                rows: tx.clone(),
            }),
            wake: wake.clone(),
        };
        (
            handoff,
            Handed {
                rows: rx,
                claimed: tx,
                wake,
            },
        )
    }

    /// Room for one more row, if the worker has it.
    pub fn reserve(&self) -> Option<Slot> {
        let w = self.to_worker.as_ref()?;
        let permit = w.rows.clone().try_reserve_owned().ok()?;
        Some(Slot {
            permit,
            owner: w.owner.clone(),
            lease_ms: w.lease_ms,
        })
    }

    /// Tells the worker that rows were queued for its next claim.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The worker's wake-up, for tests.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

impl Slot {
    /// The claim to write the row with, its lease starting now.
    pub fn lease(&self) -> NewClaim<'_> {
        NewClaim {
            owner: &self.owner,
            until: now_ms() + self.lease_ms,
        }
    }

    /// Hands the committed row to the worker.
    pub fn send(self, row: Claimed) {
        crate::admin::metrics::RELAY_ROWS.inc(&["handed"]);
        self.permit.send(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64) -> Claimed {
        Claimed {
            id,
            message_id: format!("<{id}@t>"),
            mail_from: "a@t".into(),
            rcpt_to: vec!["b@t".into()],
            raw: b"x".to_vec(),
            attempts: 1,
            lease_until: 0,
            kind: "notification".into(),
            ticket_id: Some(1),
        }
    }

    #[test]
    fn the_default_hands_nothing_over() {
        assert!(Handoff::default().reserve().is_none());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_a_slot_until_a_row_is_taken() {
        let (h, mut handed) = Handoff::channel("me", 60_000, 2);
        let a = h.reserve().expect("room for the first");
        let b = h.reserve().expect("room for the second");
        assert!(h.reserve().is_none(), "two slots out of two");
        let lease = a.lease();
        assert_eq!(lease.owner, "me");
        assert!(lease.until >= now_ms() + 59_000);
        a.send(row(1));
        drop(b); // not committed: its room comes back
        assert_eq!(handed.rows.recv().await.unwrap().id, 1);
        assert!(h.reserve().is_some());
    }

    #[tokio::test]
    async fn a_closed_queue_refuses_slots_but_delivers_those_taken() {
        let (h, mut handed) = Handoff::channel("me", 60_000, 4);
        let taken = h.reserve().unwrap();
        handed.rows.close();
        assert!(h.reserve().is_none());
        taken.send(row(7));
        assert_eq!(handed.rows.recv().await.unwrap().id, 7);
        drop(handed.claimed);
        drop(h);
        assert!(handed.rows.recv().await.is_none());
    }
}
