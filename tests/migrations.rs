//! Upgrades of a database that already holds mail: the schema as an earlier
//! release left it, with rows in it, migrated to the current one on a real
//! SQLite file and on the local PostgreSQL.

mod support;

use mensageria::store::messages::{Direction, NewMessage};
use mensageria::store::{Store, Tx};
use support::{Db, TestDb};

/// Applies the embedded migrations up to `last` only, as a release that
/// ended there would have.
async fn migrate_up_to(store: &Store, kind: Db, last: u32) {
    let dialect = match kind {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
    };
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let old = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let version: u32 = name[..4].parse().unwrap();
        if version <= last {
            std::fs::copy(&path, old.path().join(&name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(store.pool())
        .await
        .unwrap();
}

/// A row as the schema before 0009 takes it (no codec, no class).
async fn insert_old(store: &Store, ticket: i64, message_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO messages (ticket_id, direction, author, recipients, subject, body_text, \
         message_id, raw, at) VALUES ($1, 'in', 'a@cliente.example', 'b@suporte.example', 's', \
         'texto', $2, $3, 1) RETURNING id",
    )
    .bind(ticket)
    .bind(message_id)
    .bind(b"Subject: s\r\n\r\ntexto\r\n".to_vec())
    .fetch_one(store.pool())
    .await
}

async fn insert_new(store: &Store, ticket: i64, message_id: &str) -> Option<i64> {
    let mut tx = store.begin().await.unwrap();
    let stored = Store::message_insert(
        &mut tx as &mut Tx,
        &NewMessage {
            ticket_id: ticket,
            direction: Direction::In,
            author: "a@cliente.example",
            recipients: &["b@suporte.example".to_owned()],
            subject: "s",
            body_text: "texto",
            message_id,
            in_reply_to: None,
            refs: None,
            raw: b"Subject: s\r\n\r\ntexto\r\n",
            raw_codec: None,
            kind: "reply",
            matched_by: "subject",
        },
    )
    .await
    .unwrap_or_else(|e| panic!("insert of {message_id}: {e}"));
    tx.commit().await.unwrap();
    stored
}

/// Migration 0009 merges the two Message-ID indexes into one (rebuilding
/// the table on SQLite): every row keeps its id, a duplicate delivery is
/// still refused per ticket, the same Message-ID is still allowed on two
/// tickets, a lookup by Message-ID still finds the ticket, no id is handed
/// out twice, and the foreign keys are enforced again afterwards.
async fn message_id_indexes_merge_keeping_rows(kind: Db) {
    let db = TestDb::new(kind).await;
    // One connection: the one that ran the migrations is the one checked.
    let store = Store::connect(&db.url, 1).await.unwrap();
    migrate_up_to(&store, kind, 8).await;
    support::ticket(&store, 7, &[]).await;
    support::ticket(&store, 8, &[]).await;
    let a = insert_old(&store, 7, "<a@cliente.example>").await.unwrap();
    let b = insert_old(&store, 7, "<b@cliente.example>").await.unwrap();
    let c = insert_old(&store, 8, "<c@cliente.example>").await.unwrap();
    // The newest row gone: its id must not come back.
    sqlx::query("DELETE FROM messages WHERE id = $1")
        .bind(c)
        .execute(store.pool())
        .await
        .unwrap();

    store.migrate().await.unwrap();

    assert_eq!(
        support::thread_ids(&store, 7).await,
        vec!["<a@cliente.example>", "<b@cliente.example>"]
    );
    let kept: Vec<i64> = sqlx::query_scalar("SELECT id FROM messages ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(kept, vec![a, b]);
    let other = insert_new(&store, 8, "<a@cliente.example>")
        .await
        .expect("the same Message-ID on another ticket is stored");
    assert!(
        other > c,
        "id {other} handed out again (the deleted row had {c})"
    );
    assert_eq!(
        insert_new(&store, 7, "<a@cliente.example>").await,
        None,
        "a duplicate delivery on the same ticket is refused"
    );
    assert_eq!(
        store
            .ticket_by_message_ids(&["<b@cliente.example>".to_owned()])
            .await
            .unwrap(),
        Some(7)
    );
    assert!(
        store
            .ticket_holds_message(7, "<b@cliente.example>")
            .await
            .unwrap()
    );
    let orphan = insert_old(&store, 999, "<x@cliente.example>").await;
    assert!(orphan.is_err(), "a message of no ticket was accepted");
    store.close().await;
}

#[tokio::test]
async fn message_id_indexes_merge_keeping_rows_on_sqlite() {
    message_id_indexes_merge_keeping_rows(Db::Sqlite).await;
}

#[tokio::test]
async fn message_id_indexes_merge_keeping_rows_on_postgres() {
    message_id_indexes_merge_keeping_rows(Db::Postgres).await;
}
