//! Whole mails as the store keeps them: a reply received over SMTP and the
//! notification composed for it are stored compressed by the gateway on
//! both databases (on PostgreSQL in columns that TOAST no longer tries to
//! compress again), and read back byte for byte: the thread's copy by
//! `replay`'s query, the notification by the relay, which delivers exactly
//! the stored bytes. A queued mail that cannot be read back fails its row
//! with the reason and holds up nothing else.

mod support;

use std::time::Duration;

use mensageria::store::Store;
use mensageria::store::outbox::NewOutbox;
use support::client::deliver;
use support::{Db, GATEWAY, HD_SUBJECT, REQUESTER, wait_until};

const TECH: &str = "tec@suporte.example";
const TICKET: i64 = 77;

/// A reply as mail clients write them: the answer, then the quoted thread.
fn reply() -> Vec<u8> {
    let mut m = format!(
        "From: Ana <{REQUESTER}>\r\nTo: {GATEWAY}\r\nSubject: RE: [HD #{TICKET}] Impressora sem toner\r\n\
Message-ID: <armazenada.1@cliente.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
Troquei o cartucho e a impressão voltou. Obrigada!\r\n\r\n\
Em ter., 1 de dez. de 2026 às 10:00, Central <{GATEWAY}> escreveu:\r\n"
    );
    for i in 0..300 {
        m.push_str(&format!(
            "> Linha {i}: verifique se o cartucho está bem encaixado e se há papel na bandeja.\r\n"
        ));
    }
    m.into_bytes()
}

/// The codecs of the message rows and of the queued mails, by row id.
async fn codecs(store: &Store) -> (Vec<Option<String>>, Vec<Option<String>>) {
    let messages = sqlx::query_scalar("SELECT raw_codec FROM messages ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let outbox = sqlx::query_scalar("SELECT raw_codec FROM outbox_mail ORDER BY outbox_id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    (messages, outbox)
}

async fn stored_whole(db: Db) {
    let (_tdb, sink, gw) = support::seeded_gateway(db, HD_SUBJECT, TICKET, &[TECH], |_| {}).await;

    let sent = reply();
    let r = deliver(gw.smtp_addr(), REQUESTER, &[GATEWAY], &sent).await;
    assert_eq!(r.code, 250, "{db:?}: {r:?}");
    let note = wait_until(
        "the notification at the relay",
        Duration::from_secs(15),
        || async { sink.messages().into_iter().next() },
    )
    .await;

    let expected = Some("lz4".to_owned());
    let (messages, outbox) = codecs(&gw.store).await;
    assert_eq!(messages, vec![expected.clone()], "{db:?}");
    assert_eq!(outbox, vec![expected], "{db:?}");
    if db == Db::Postgres {
        // Packed bytes: stored out of line, not compressed again (EXTERNAL).
        let storage: Vec<(String, String)> = sqlx::query_as(
            "SELECT attrelid::regclass::text, attstorage::text FROM pg_attribute \
             WHERE attname = 'raw' AND attrelid IN ('messages'::regclass, 'outbox_mail'::regclass) \
             ORDER BY 1",
        )
        .fetch_all(gw.store.pool())
        .await
        .unwrap();
        let want =
            [("messages", "e"), ("outbox_mail", "e")].map(|(t, s)| (t.to_owned(), s.to_owned()));
        assert_eq!(storage, want);
    }

    // The thread's copy: the bytes that came over SMTP.
    let rows = gw.store.messages_of_ticket(TICKET).await.unwrap();
    assert_eq!(rows.len(), 1, "{db:?}");
    let stored = gw
        .store
        .ticket_message_raw(rows[0].id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.raw.ends_with(&sent),
        "{db:?}: stored {} bytes, sent {}",
        stored.raw.len(),
        sent.len()
    );

    // The notification: what the relay delivered is the row's mail.
    let id: i64 = sqlx::query_scalar("SELECT outbox_id FROM outbox_mail")
        .fetch_one(gw.store.pool())
        .await
        .unwrap();
    let queued = gw.store.outbox_raw(id).await.unwrap().unwrap();
    assert_eq!(note.rcpt_to, [TECH], "{db:?}");
    assert_eq!(
        String::from_utf8_lossy(note.data.strip_suffix(b"\r\n").unwrap_or(&note.data)),
        String::from_utf8_lossy(queued.strip_suffix(b"\r\n").unwrap_or(&queued)),
        "{db:?}"
    );
    assert!(
        String::from_utf8_lossy(&queued).contains("Troquei o cartucho"),
        "{db:?}"
    );
    assert!(gw.stop(Duration::from_secs(10)).await, "{db:?}: drains");
}

/// Queues `raw` with `codec` as the store would, outside any session.
async fn queue(store: &Store, n: usize, raw: &[u8], codec: Option<&str>) -> i64 {
    let rcpt = [TECH.to_owned()];
    let message_id = format!("<fila.{n}@gw.test>");
    let mut tx = store.begin().await.unwrap();
    let id = Store::outbox_insert(
        &mut tx,
        &NewOutbox {
            ticket_id: Some(TICKET),
            kind: "reply",
            message_id: &message_id,
            mail_from: GATEWAY,
            rcpt_to: &rcpt,
            raw,
            raw_codec: codec,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn an_unreadable_mail_fails_its_row_alone(db: Db) {
    let (_tdb, sink, gw) = support::seeded_gateway(db, HD_SUBJECT, TICKET, &[], |_| {}).await;

    // Claims 4 GiB from six bytes: a damaged row, as a bad disk leaves one.
    let damaged = queue(
        &gw.store,
        1,
        &[0xff, 0xff, 0xff, 0xff, 0x10, 0x41],
        Some("lz4"),
    )
    .await;
    let good = queue(&gw.store, 2, b"Subject: ok\r\n\r\nok\r\n", None).await;
    gw.store.outbox_raw(good).await.unwrap().unwrap();
    assert!(gw.store.outbox_raw(damaged).await.is_err(), "{db:?}");

    let rows = wait_until("both rows settled", Duration::from_secs(15), || async {
        let rows: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT id, state, last_error FROM outbox ORDER BY id")
                .fetch_all(gw.store.pool())
                .await
                .unwrap();
        rows.iter()
            .all(|(_, state, _)| state == "sent" || state == "failed")
            .then_some(rows)
    })
    .await;
    assert_eq!(rows[0].0, damaged);
    assert_eq!(rows[0].1, "failed", "{db:?}: {rows:?}");
    let why = rows[0].2.as_deref().unwrap_or_default();
    assert!(why.contains("stored mail"), "{db:?}: {why}");
    assert_eq!((rows[1].0, rows[1].1.as_str()), (good, "sent"), "{db:?}");
    let delivered = sink.messages();
    assert_eq!(delivered.len(), 1, "{db:?}");
    assert!(delivered[0].data.starts_with(b"Subject: ok"), "{db:?}");
    assert!(gw.stop(Duration::from_secs(10)).await, "{db:?}: drains");
}

both_databases!(stored_whole, an_unreadable_mail_fails_its_row_alone);
