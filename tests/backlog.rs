//! A backlog on PostgreSQL (the relay was down, mail piled up) while the
//! outbox's statistics still say the queue is empty, as they do between two
//! autoanalyze runs: each claim takes the next rows in queue order by
//! walking `outbox_queued` and stopping at its limit, instead of reading
//! every due row and sorting them all for each batch.

mod support;

use mensageria::store::Store;
use support::{Db, TestDb};

const BACKLOG: i64 = 5_000;
const LIMIT: i64 = 100;
const CLAIMS: i64 = 8;

#[tokio::test]
async fn a_backlog_is_claimed_in_order_without_reading_all_of_it() {
    let tdb = TestDb::new(Db::Postgres).await;
    let store = Store::connect(&tdb.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    // Statistics taken while the queue was empty, then the backlog.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ANALYZE outbox; \
         INSERT INTO outbox (kind, message_id, mail_from, rcpt_to, state, attempts, next_attempt_at, created_at) \
         SELECT 'reply', 'm' || i || '@suporte.example', 'chamados@suporte.example', \
         'requerente@cliente.example', 'queued', 0, {BACKLOG} - i, i FROM generate_series(1, {BACKLOG}) AS i; \
         INSERT INTO outbox_mail (outbox_id, raw) SELECT id, convert_to('Subject: x' || E'\\r\\n\\r\\ny\\r\\n', 'UTF8') FROM outbox;"
    )))
    .execute(store.pool())
    .await
    .unwrap();

    let mut tx = store.begin().await.unwrap();
    let mut claimed = Vec::new();
    // More claims than PostgreSQL makes custom plans for (5), so the
    // statement's generic plan is measured too.
    for _ in 0..CLAIMS {
        let batch = Store::outbox_claim_in(&mut tx, "t", 600_000, LIMIT)
            .await
            .unwrap();
        assert_eq!(batch.len() as i64, LIMIT);
        claimed.extend(batch.into_iter().map(|c| c.message_id));
    }
    // The index entries this transaction's scans of outbox_queued returned.
    let read: i64 =
        sqlx::query_scalar("SELECT pg_stat_get_xact_tuples_returned('outbox_queued'::regclass)")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();

    // The rows due soonest (the last inserted is due first), whatever the
    // order the UPDATE returned them in.
    let mut expected: Vec<String> = (0..LIMIT * CLAIMS)
        .map(|k| format!("m{}@suporte.example", BACKLOG - k))
        .collect();
    expected.sort();
    claimed.sort();
    assert_eq!(claimed, expected, "the rows due first are claimed first");
    // A bitmap scan returns every due entry for each claim: one claim alone
    // reads the whole backlog. The ordered walk reads what it takes, plus
    // the entries of the rows this transaction claimed before (still in
    // the index until it ends): 100 + 200 + … + 800 here.
    assert!(
        read < BACKLOG,
        "{read} index entries read for {} rows claimed out of {BACKLOG}",
        LIMIT * CLAIMS
    );
    store.close().await;
}
