//! The admin listener over HTTP: /metrics moves with the mail, /healthz,
//! and /readyz through a relay outage and a database outage.

use std::net::SocketAddr;
use std::time::Duration;

use mensageria::store::Store;

use crate::scrape::{Sample, get, parse_metrics, total};
use crate::support::client::{Client, deliver};
use crate::support::sink::{Sink, free_port};
use crate::support::{self, Db, GATEWAY, TestDb, wait_until};
use crate::{daemon_config, greets, spawn, unmatched_mail};

async fn metrics(admin: SocketAddr) -> Vec<Sample> {
    let (status, body) = get(admin, "/metrics").await.expect("/metrics answers");
    assert_eq!(status, 200);
    parse_metrics(&body)
}

async fn seed(url: &str) -> Store {
    let store = Store::connect(url, 2).await.unwrap();
    store.migrate().await.unwrap();
    crate::support::seed(&store, "Chamado ${IDSOLICITACAOSERVICO}", 5, &[]).await;
    store
}

/// Waits until `/readyz` answers `status`; returns its body.
async fn readyz(admin: SocketAddr, status: u16, timeout: Duration) -> String {
    wait_until(&format!("/readyz {status}"), timeout, || async {
        get(admin, "/readyz")
            .await
            .filter(|(s, _)| *s == status)
            .map(|(_, b)| b)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_over_http() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let sink = Sink::start().await;
    let (mut cfg, smtp, admin) = daemon_config(&tdb, sink.addr.port(), true);
    cfg.smtp.max_sessions_per_ip = 1;
    let admin = admin.unwrap();
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let mut d = spawn(&conf, smtp, &[]);
    wait_until("SMTP greeting", Duration::from_secs(20), || async {
        greets(smtp).await.then_some(())
    })
    .await;
    assert_eq!(get(admin, "/healthz").await, Some((200, "ok\n".into())));
    assert_eq!(readyz(admin, 200, Duration::from_secs(5)).await, "ready\n");
    assert_eq!(get(admin, "/nowhere").await.map(|r| r.0), Some(404));

    let before = metrics(admin).await;
    for name in [
        "mensageria_inbound_bytes_total",
        "mensageria_smtp_sessions_open",
        "mensageria_outbox_oldest_queued_seconds",
        "mensageria_relay_latency_seconds_count",
        "mensageria_db_commit_seconds_count",
    ] {
        assert!(before.iter().any(|s| s.name == name), "{name} missing");
    }
    assert_eq!(
        total(&before, "mensageria_outbox", &[("state", "queued")]),
        0.0
    );
    let inbound =
        |m: &[Sample]| total(m, "mensageria_inbound_total", &[("outcome", "quarantined")]);
    assert_eq!(inbound(&before), 0.0);

    // One session held open, a second refused at once by the per-address cap.
    let (held, greeting) = Client::connect(smtp).await;
    assert_eq!(greeting.code, 220);
    let (_, refused) = Client::connect(smtp).await;
    assert_eq!(refused.code, 421, "{refused:?}");
    let m = metrics(admin).await;
    assert_eq!(total(&m, "mensageria_smtp_sessions_open", &[]), 1.0);
    let refusals = &[("reason", "max_sessions_per_ip")];
    assert_eq!(
        total(&m, "mensageria_smtp_sessions_refused_total", refusals),
        1.0
    );
    drop(held);
    wait_until(
        "the held session to close",
        Duration::from_secs(10),
        || async {
            let m = metrics(admin).await;
            (total(&m, "mensageria_smtp_sessions_open", &[]) == 0.0).then_some(())
        },
    )
    .await;

    let r = deliver(
        smtp,
        "ana@cliente.example",
        &[GATEWAY],
        &unmatched_mail("metrics"),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let store = seed(&tdb.url).await;
    mensageria::outbound::technician_reply(&store, &cfg, 5, "tec@suporte.example", "Olá")
        .await
        .unwrap();
    let after = wait_until("counters to move", Duration::from_secs(10), || async {
        let m = metrics(admin).await;
        (total(
            &m,
            "mensageria_delivery_attempts_total",
            &[("outcome", "sent")],
        ) >= 1.0)
            .then_some(m)
    })
    .await;
    assert_eq!(inbound(&after), 1.0);
    assert!(total(&after, "mensageria_inbound_bytes_total", &[]) > 0.0);
    assert_eq!(
        total(&after, "mensageria_db_commit_seconds_count", &[]),
        1.0
    );
    assert_eq!(
        total(
            &after,
            "mensageria_db_commit_seconds_bucket",
            &[("le", "+Inf")]
        ),
        1.0
    );
    assert_eq!(
        total(&after, "mensageria_relay_latency_seconds_count", &[]),
        1.0
    );
    assert!(
        total(
            &after,
            "mensageria_relay_last_success_timestamp_seconds",
            &[]
        ) > 1e9
    );
    store.close().await;

    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_relay() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let relay_port = free_port();
    let (cfg, smtp, admin) = daemon_config(&tdb, relay_port, true);
    let admin = admin.unwrap();
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let mut d = spawn(&conf, smtp, &[]);
    // A fresh start counts as reachable, though nothing listens there yet.
    readyz(admin, 200, Duration::from_secs(20)).await;
    let store = seed(&tdb.url).await;
    mensageria::outbound::technician_reply(&store, &cfg, 5, "tec@suporte.example", "Olá")
        .await
        .unwrap();
    let why = readyz(admin, 503, Duration::from_secs(10)).await;
    assert!(
        why.starts_with(&format!("relay smtp://127.0.0.1:{relay_port} unreachable")),
        "{why}"
    );
    let m = metrics(admin).await;
    assert!(
        total(
            &m,
            "mensageria_delivery_attempts_total",
            &[("outcome", "retry")]
        ) >= 1.0
    );
    let _sink = Sink::start_on(relay_port, None).await;
    readyz(admin, 200, Duration::from_secs(15)).await;
    store.close().await;
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_database() {
    let tdb = TestDb::new(Db::Postgres).await;
    let (mut cfg, smtp, admin) = daemon_config(&tdb, free_port(), true);
    cfg.database.acquire_timeout_secs = 1;
    let admin = admin.unwrap();
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let mut d = spawn(&conf, smtp, &[]);
    readyz(admin, 200, Duration::from_secs(20)).await;

    tdb.set_available(false).await;
    let why = readyz(admin, 503, Duration::from_secs(15)).await;
    assert!(why.starts_with("database not answering"), "{why}");
    assert_eq!(why.lines().count(), 1, "{why}");
    // The process itself is fine, and says so.
    assert_eq!(get(admin, "/healthz").await.map(|r| r.0), Some(200));
    assert!(
        metrics(admin)
            .await
            .iter()
            .all(|s| s.name != "mensageria_outbox")
    );

    tdb.set_available(true).await;
    readyz(admin, 200, Duration::from_secs(20)).await;
    assert!(
        metrics(admin)
            .await
            .iter()
            .any(|s| s.name == "mensageria_outbox")
    );
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)).await.code(), Some(0));
}
