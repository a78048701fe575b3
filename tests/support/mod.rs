//! Test support: real databases (an SQLite file, a fresh PostgreSQL
//! database), a raw SMTP client, a loopback relay sink, the CLI binary, and
//! polling with a deadline.
#![allow(dead_code)]

pub mod client;
pub mod daemon;
pub mod sink;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mensageria::config::Config;
use mensageria::store::Store;
use mensageria::store::tickets::TicketFields;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The server the PostgreSQL tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("MENSAGERIA_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A connection to the server the PostgreSQL tests run on, as its admin.
pub async fn pg_admin() -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&pg_admin_url())
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (set MENSAGERIA_TEST_PG)")
}

/// A database of its own for one test; dropped with it.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new(kind: Db) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match kind {
            Db::Sqlite => TestDb {
                url: format!(
                    "sqlite://{}",
                    dir.path().join("var/mensageria.db").display()
                ),
                dir,
                pg_name: None,
            },
            Db::Postgres => {
                let name = format!(
                    "mtest_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    rand::random::<u32>()
                );
                let mut conn = pg_admin().await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let mut url = url::Url::parse(&pg_admin_url()).unwrap();
                url.set_path(&name);
                TestDb {
                    url: url.to_string(),
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl TestDb {
    /// PostgreSQL only: the database's name on the server.
    pub fn pg_name(&self) -> &str {
        self.pg_name.as_deref().expect("a PostgreSQL test database")
    }

    /// PostgreSQL only: refuse (and cut) or allow connections to this
    /// database, to play a database outage.
    pub async fn set_available(&self, available: bool) {
        let name = self.pg_name();
        let mut admin = pg_admin().await;
        let mut sql = format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {available};");
        if !available {
            sql += &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
            );
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async: a short-lived thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}

pub const LOCAL_DOMAIN: &str = "suporte.example";
pub const GATEWAY: &str = "chamados@suporte.example";

/// A config for tests: listener on an ephemeral loopback port, quick retries.
pub fn config(db_url: &str, relay_port: u16) -> Config {
    let mut c = Config::default();
    c.database.url = db_url.to_owned();
    c.database.max_connections = 4;
    c.smtp.listen = mensageria::config::Listen::One("127.0.0.1:0".into());
    c.smtp.hostname = "gw.test".into();
    c.smtp.local_domains = vec![LOCAL_DOMAIN.into()];
    c.mail.from = GATEWAY.into();
    c.mail.from_name = "Central de Serviços".into();
    c.relay.url = format!("smtp://127.0.0.1:{relay_port}");
    c.relay.retry_initial_ms = 200;
    c.relay.retry_max_secs = 1;
    c.relay.poll_interval_ms = 50;
    c.relay.timeout_secs = 5;
    c.relay.max_attempts = 5;
    c
}

/// The same config as a TOML file for the CLI binary.
pub fn write_config(dir: &Path, c: &Config) -> PathBuf {
    let path = dir.join("mensageria.toml");
    std::fs::write(&path, toml::to_string(c).expect("config serialises")).unwrap();
    path
}

/// Runs the built binary with `--config`.
pub fn cli(config: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mensageria"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run mensageria")
}

/// Runs the binary and insists on success; returns stdout.
pub fn cli_ok(config: &Path, args: &[&str]) -> String {
    let out = cli(config, args);
    assert!(
        out.status.success(),
        "mensageria {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `check` until it returns Some or the deadline passes.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs an async test body once per database.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Db::Postgres).await
            }
        }
    )*};
}

/// The requester of the tickets `seed` creates.
pub const REQUESTER: &str = "ana@cliente.example";

/// A template 417 subject whose ticket number follows `[HD #`.
pub const HD_SUBJECT: &str = "[HD #${IDSOLICITACAOSERVICO}] x";

/// A template with `subject` made parameter 417 (body `${MENSAGEM}`), and
/// ticket `id` for `REQUESTER` with `technicians`; its thread root is
/// `<ticket.ID.seed@gw.test>`.
pub async fn seed(store: &Store, subject: &str, id: i64, technicians: &[&str]) {
    let t = store
        .template_add("t", subject, "${MENSAGEM}", None)
        .await
        .unwrap()
        .unwrap();
    store.param_set(417, &t.to_string()).await.unwrap();
    ticket(store, id, technicians).await;
}

/// A gateway on a database of its own, relaying to a sink of its own, with
/// `seed`'s template (`subject`) and ticket `id` for `technicians`; `tune`
/// adjusts the config first.
pub async fn seeded_gateway(
    db: Db,
    subject: &str,
    id: i64,
    technicians: &[&str],
    tune: impl FnOnce(&mut Config),
) -> (TestDb, sink::Sink, mensageria::gateway::Gateway) {
    let tdb = TestDb::new(db).await;
    let sink = sink::Sink::start().await;
    let mut cfg = config(&tdb.url, sink.addr.port());
    tune(&mut cfg);
    let gw = mensageria::gateway::Gateway::start(cfg).await.unwrap();
    seed(&gw.store, subject, id, technicians).await;
    (tdb, sink, gw)
}

/// Ticket `id` for `REQUESTER` with `technicians`, as `seed` makes it
/// (thread root `<ticket.ID.seed@gw.test>`), for a test that needs more
/// than one.
pub async fn ticket(store: &Store, id: i64, technicians: &[&str]) {
    let f = TicketFields {
        requester: Some(REQUESTER.into()),
        technicians: (!technicians.is_empty())
            .then(|| technicians.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    store
        .ticket_upsert(id, &f, &format!("<ticket.{id}.seed@gw.test>"), "AQ==")
        .await
        .unwrap();
}

/// Message-IDs on a ticket's thread, oldest first.
pub async fn thread_ids(store: &Store, ticket: i64) -> Vec<String> {
    store
        .messages_of_ticket(ticket)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.message_id)
        .collect()
}
