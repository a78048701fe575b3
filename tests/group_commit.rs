//! Group commit on PostgreSQL: the transaction the committer begins ahead
//! of the next batch (`COMMIT; BEGIN`, see src/store/batch.rs) is not left
//! open once the gateway is idle, and a server that ends idle transactions
//! sooner than the committer would gets a committer that begins no
//! transaction ahead at all.

mod support;

use std::time::{Duration, Instant};

use mensageria::gateway::Gateway;
use support::client::deliver;
use support::{Db, GATEWAY, REQUESTER, TestDb};

/// What the test database's backends are doing: (state, last statement,
/// inside a transaction).
async fn backends(tdb: &TestDb) -> Vec<(String, String, bool)> {
    sqlx::query_as(
        "SELECT COALESCE(state, ''), query, xact_start IS NOT NULL \
         FROM pg_stat_activity WHERE datname = $1",
    )
    .bind(tdb.pg_name())
    .fetch_all(&mut support::pg_admin().await)
    .await
    .unwrap()
}

/// The committer's connection inside the transaction its last commit began.
fn begun_ahead(b: &[(String, String, bool)]) -> bool {
    b.iter().any(|(state, query, _)| {
        state.starts_with("idle in transaction") && query == "COMMIT; BEGIN"
    })
}

/// Any backend inside a transaction, idle in it or running a statement.
fn in_transaction(b: &[(String, String, bool)]) -> bool {
    b.iter().any(|(_, _, open)| *open)
}

async fn gateway(tdb: &TestDb) -> Gateway {
    // support::config has the relay look for due mail every 50 ms: a claim,
    // and so a commit, that often.
    let cfg = support::config(&tdb.url, support::sink::free_port());
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    support::seed(&gw.store, "[HD #${IDSOLICITACAOSERVICO}]", 77, &[]).await;
    gw
}

fn reply(id: &str) -> Vec<u8> {
    format!("Subject: [HD #77] resposta\r\nMessage-ID: <{id}@cliente.example>\r\n\r\nobrigado\r\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_begun_ahead_is_not_left_open() {
    let tdb = TestDb::new(Db::Postgres).await;
    let gw = gateway(&tdb).await;
    let r = deliver(gw.smtp_addr(), REQUESTER, &[GATEWAY], &reply("um")).await;
    assert_eq!(r.code, 250, "{r:?}");
    let wait = Duration::from_secs(15);
    // The relay's claims commit every 50 ms, each beginning the next
    // transaction, which is rolled back 25 ms later when nothing comes.
    support::wait_until("a transaction begun ahead", wait, || async {
        begun_ahead(&backends(&tdb).await).then_some(())
    })
    .await;
    support::wait_until("no transaction open", wait, || async {
        (!in_transaction(&backends(&tdb).await)).then_some(())
    })
    .await;
    // The committer goes on from either state.
    let r = deliver(gw.smtp_addr(), REQUESTER, &[GATEWAY], &reply("dois")).await;
    assert_eq!(r.code, 250, "{r:?}");
    let stored = gw.store.messages_of_ticket(77).await.unwrap();
    assert_eq!(stored.len(), 2);
    gw.stop(Duration::from_secs(5)).await;
    assert!(!in_transaction(&backends(&tdb).await));
}

/// With `idle_in_transaction_session_timeout` under a second the server
/// could end a transaction begun ahead before the committer does, and the
/// next reply would get a 451: none is begun ahead. Without that rule, the
/// relay's commits every 50 ms would leave one open about half the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_transaction_is_begun_ahead_under_a_short_idle_timeout() {
    let tdb = TestDb::new(Db::Postgres).await;
    let set = format!(
        "ALTER DATABASE {} SET idle_in_transaction_session_timeout = '500ms'",
        tdb.pg_name()
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(set))
        .execute(&mut support::pg_admin().await)
        .await
        .unwrap();
    let gw = gateway(&tdb).await;
    for id in ["um", "dois", "tres"] {
        let r = deliver(gw.smtp_addr(), REQUESTER, &[GATEWAY], &reply(id)).await;
        assert_eq!(r.code, 250, "{id}: {r:?}");
    }
    // Watched for a second, i.e. about twenty of the relay's commits.
    let until = Instant::now() + Duration::from_secs(1);
    let mut looks = 0;
    while Instant::now() < until {
        let b = backends(&tdb).await;
        assert!(!begun_ahead(&b), "{b:?}");
        looks += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(looks >= 10, "only {looks} looks");
    let stored = gw.store.messages_of_ticket(77).await.unwrap();
    assert_eq!(stored.len(), 3);
    gw.stop(Duration::from_secs(5)).await;
}
