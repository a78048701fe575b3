//! The administrator's commands against a database holding queued, failed,
//! sending, sent and quarantined mail: queue show/retry/drop, quarantine
//! show/release/drop, ticket close/reopen with both closed-ticket policies
//! over SMTP, stats, and replay (which must write nothing).

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mensageria::config::{ClosedTicket, Config};
use mensageria::gateway::Gateway;
use mensageria::inbound::{Envelope, Inbound, Outcome};
use mensageria::store::Store;
use mensageria::store::tickets::TicketFields;
use serde_json::Value;
use support::sink::Sink;
use support::{Db, GATEWAY, TestDb, cli, cli_ok, wait_until};

const TECH: &str = "tec@suporte.example";
const ANA: &str = "ana@cliente.example";

struct Env {
    _tdb: TestDb,
    cfg: Config,
    conf: PathBuf,
    store: Store,
    sink: Sink,
}

/// Template 417 "[HD #id] …", ticket 77 with a technician, a relay sink.
async fn setup(db: Db) -> Env {
    let tdb = TestDb::new(db).await;
    let sink = Sink::start().await;
    let cfg = support::config(&tdb.url, sink.addr.port());
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let store = Store::connect(&tdb.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let id = store
        .template_add(
            "t",
            "[HD #${IDSOLICITACAOSERVICO}] ${SERVICO}",
            "${MENSAGEM}",
            None,
        )
        .await
        .unwrap()
        .unwrap();
    store.param_set(417, &id.to_string()).await.unwrap();
    let f = TicketFields {
        requester: Some(ANA.into()),
        service: Some("Impressora".into()),
        technicians: Some(vec![TECH.into()]),
        ..Default::default()
    };
    store
        .ticket_upsert(77, &f, "<ticket.77.x@gw.test>", "AQ==")
        .await
        .unwrap();
    Env {
        _tdb: tdb,
        cfg,
        conf,
        store,
        sink,
    }
}

/// The inbound decision in-process, as the listener would call it.
async fn accept(e: &Env, from: &str, raw: &str) -> Outcome {
    let inbound = Inbound::new(e.store.clone(), Arc::new(e.cfg.clone()), Arc::default());
    let env = Envelope {
        peer: ([127, 0, 0, 1], 1).into(),
        helo: "cliente.example".into(),
        mail_from: from.into(),
        rcpt_to: vec![GATEWAY.into()],
    };
    inbound.accept(&env, raw.as_bytes()).await.unwrap()
}

fn mail(subject: &str, message_id: &str, extra: &str) -> String {
    format!(
        "From: Ana Souza <{ANA}>\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n{extra}\r\nresposta\r\n"
    )
}

fn json(e: &Env, args: &[&str]) -> Value {
    serde_json::from_str(&cli_ok(&e.conf, args)).expect("valid JSON")
}

fn fails(e: &Env, args: &[&str], needle: &str) {
    let out = cli(&e.conf, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("mensageria: "), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
}

fn reply(e: &Env, text: &str) {
    cli_ok(
        &e.conf,
        &["ticket", "reply", "77", "--from", TECH, "--body", text],
    );
}

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Rows a, b, c, d: sent, failed, sending under a live lease, queued.
async fn seed_outbox(e: &Env) -> [i64; 4] {
    let mut ids = [0; 4];
    for (i, id) in ids.iter_mut().enumerate() {
        reply(e, &format!("mensagem {i}"));
        if i == 3 {
            *id = e.store.outbox_list().await.unwrap().last().unwrap().id;
            break;
        }
        let claimed = e.store.outbox_claim("t", 600_000, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        *id = claimed[0].id;
        match i {
            0 => e.store.outbox_sent(*id, "t").await.unwrap(),
            1 => e
                .store
                .outbox_failed(*id, "t", "550 5.1.1 no such user")
                .await
                .unwrap(),
            _ => {}
        }
    }
    ids
}

async fn queue_commands(db: Db) {
    let e = setup(db).await;
    let [sent, failed, sending, queued] = seed_outbox(&e).await;
    let list = json(&e, &["queue", "list", "--json"]);
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["sent", "failed", "sending", "queued"]);

    let show = cli_ok(&e.conf, &["queue", "show", &failed.to_string()]);
    assert!(show.contains("550 5.1.1 no such user"), "{show}");
    assert!(show.contains("Subject: [HD #77] Impressora"), "{show}");
    let j = json(&e, &["queue", "show", &failed.to_string(), "--json"]);
    assert_eq!(j["state"], "failed");
    assert_eq!(j["attempts"], 1);
    assert_eq!(j["last_error"], "550 5.1.1 no such user");
    let headers = j["headers"].as_array().unwrap();
    assert!(headers.iter().any(|h| h["name"] == "Message-ID"));
    let j = json(&e, &["queue", "show", &sending.to_string(), "--json"]);
    assert_eq!(j["claimed_by"], "t");

    // Retry: the failed row is queued and due now, attempts kept.
    let before = mensageria::store::now_ms();
    let out = cli_ok(&e.conf, &["queue", "retry", &failed.to_string()]);
    assert!(out.contains("due now"), "{out}");
    let row = e.store.outbox_get(failed).await.unwrap().unwrap();
    assert_eq!(row.state, "queued");
    assert_eq!(row.attempts, 1);
    assert!(row.next_attempt_at >= before && row.next_attempt_at <= mensageria::store::now_ms());
    fails(&e, &["queue", "retry", &sent.to_string()], "was sent at");
    fails(
        &e,
        &["queue", "retry", &sending.to_string()],
        "is being sent by t",
    );
    fails(&e, &["queue", "retry", "999"], "outbox row 999 does not exist");
    // Both due rows fail again; the live lease keeps `sending` out of it.
    let claimed = e.store.outbox_claim("t", 600_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    for c in claimed {
        e.store.outbox_failed(c.id, "t", "again").await.unwrap();
    }
    let out = cli_ok(&e.conf, &["queue", "retry", "--all"]);
    assert!(out.starts_with("2 failed row(s) queued"), "{out}");

    // Drop: queued goes; sent and a live lease stay, with the reason.
    cli_ok(&e.conf, &["queue", "drop", &queued.to_string()]);
    assert!(e.store.outbox_get(queued).await.unwrap().is_none());
    fails(&e, &["queue", "drop", &sent.to_string()], "cannot be dropped");
    fails(
        &e,
        &["queue", "drop", &sending.to_string()],
        "is being sent by t",
    );
    fails(&e, &["queue", "drop", &queued.to_string()], "does not exist");
    fails(&e, &["queue", "show", "999"], "outbox row 999 does not exist");
}

async fn quarantine_commands(db: Db) {
    let e = setup(db).await;
    let long: String = (1..=50).map(|i| format!("linha {i}\r\n")).collect();
    let raw = format!(
        "From: Ana Souza <{ANA}>\r\nSubject: =?UTF-8?Q?RE:_[HD_#999]_impress=C3=A3o?=\r\nMessage-ID: <q1@c>\r\n\r\n{long}"
    );
    let Outcome::Quarantined { id: q1, .. } = accept(&e, ANA, &raw).await else {
        panic!("quarantined");
    };
    let Outcome::Quarantined { id: q2, .. } = accept(&e, ANA, &mail("Oi", "q2@c", "")).await
    else {
        panic!("quarantined");
    };
    let list = json(&e, &["quarantine", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(cli_ok(&e.conf, &["quarantine", "list"]).contains("no ticket matches"));

    let j = json(&e, &["quarantine", "show", &q1.to_string(), "--json"]);
    assert_eq!(j["decoded_subject"], "RE: [HD #999] impressão");
    assert_eq!(j["from"], format!("Ana Souza <{ANA}>"));
    assert_eq!(j["text"].as_str().unwrap().lines().count(), 40);
    assert_eq!(j["text_truncated"], true);
    let show = cli_ok(&e.conf, &["quarantine", "show", &q1.to_string()]);
    assert!(show.contains("linha 40\n") && !show.contains("linha 41"), "{show}");
    assert!(show.contains("10 more line(s)"), "{show}");

    // Release: on the ticket, the technicians notified, the row gone.
    fails(
        &e,
        &["quarantine", "release", &q1.to_string(), "--ticket", "5"],
        "ticket 5 does not exist",
    );
    fails(
        &e,
        &["quarantine", "release", "999", "--ticket", "77"],
        "quarantine row 999 does not exist",
    );
    let out = cli_ok(
        &e.conf,
        &["quarantine", "release", &q1.to_string(), "--ticket", "77"],
    );
    assert!(out.contains("released to ticket 77 as <q1@c>"), "{out}");
    let thread = json(&e, &["ticket", "show", "77", "--json"]);
    assert_eq!(thread["messages"][0]["message_id"], "<q1@c>");
    assert_eq!(thread["messages"][0]["direction"], "in");
    let q = json(&e, &["queue", "list", "--json"]);
    assert_eq!(q[0]["kind"], "notification");
    assert_eq!(q[0]["rcpt_to"], TECH);
    assert!(e.store.quarantine_get(q1).await.unwrap().is_none());

    cli_ok(&e.conf, &["quarantine", "drop", &q2.to_string()]);
    assert_eq!(count(&e.store, "quarantine").await, 0);
    fails(
        &e,
        &["quarantine", "drop", &q2.to_string()],
        &format!("quarantine row {q2} does not exist"),
    );
    fails(&e, &["quarantine", "show", "999"], "does not exist");
}

/// Close ticket 77, then Ana answers over SMTP under `policy`.
async fn closed_reply(e: &Env, policy: ClosedTicket, n: u32) -> Gateway {
    let mut cfg = e.cfg.clone();
    cfg.inbound.closed_ticket = policy;
    let out = cli_ok(&e.conf, &["ticket", "close", "77"]);
    assert_eq!(out.trim(), "ticket 77 closed");
    assert!(cli_ok(&e.conf, &["ticket", "close", "77"]).contains("already closed"));
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    let id = format!("closed{n}@c");
    let r = support::client::deliver(
        gw.smtp_addr(),
        ANA,
        &[GATEWAY],
        mail(
            "RES: [HD #77] Impressora",
            &id,
            "References: <ticket.77.x@gw.test>\r\n",
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    gw
}

async fn closed_ticket_policies(db: Db) {
    let e = setup(db).await;
    fails(&e, &["ticket", "close", "5"], "ticket 5 does not exist");

    // reopen: stored, reopened, the technician told.
    let gw = closed_reply(&e, ClosedTicket::Reopen, 1).await;
    let t = e.store.ticket_get(77).await.unwrap().unwrap();
    assert_eq!(t.status, "open");
    let got = wait_until("notification", Duration::from_secs(10), || async {
        e.sink
            .messages()
            .into_iter()
            .find(|m| m.rcpt_to == [TECH])
    })
    .await;
    assert!(String::from_utf8_lossy(&got.data).contains("resposta"));
    gw.stop(Duration::from_secs(5)).await;

    // keep: stored, still closed, one automatic reply to Ana, nobody else.
    let gw = closed_reply(&e, ClosedTicket::Keep, 2).await;
    let t = e.store.ticket_get(77).await.unwrap().unwrap();
    assert_eq!(t.status, "closed");
    let thread = json(&e, &["ticket", "show", "77", "--json"]);
    assert_eq!(thread["messages"].as_array().unwrap().len(), 2);
    let got = wait_until("auto-reply", Duration::from_secs(10), || async {
        e.sink.messages().into_iter().find(|m| m.rcpt_to == [ANA])
    })
    .await;
    let text = String::from_utf8_lossy(&got.data).into_owned();
    assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
    assert!(text.contains("In-Reply-To: <closed2@c>"), "{text}");
    assert!(text.contains("<ticket.77.x@gw.test>"), "{text}");
    assert!(text.contains("Content-Type: text/plain"), "{text}");
    let to_tech = e.sink.messages().iter().filter(|m| m.rcpt_to == [TECH]).count();
    assert_eq!(to_tech, 1, "no second notification under keep");
    gw.stop(Duration::from_secs(5)).await;

    let out = cli_ok(&e.conf, &["ticket", "reopen", "77"]);
    assert_eq!(out.trim(), "ticket 77 reopened");
    assert_eq!(e.store.ticket_get(77).await.unwrap().unwrap().status, "open");
}

async fn stats_move(db: Db) {
    let e = setup(db).await;
    let before = json(&e, &["stats", "--json"]);
    assert_eq!(before["last_hour"]["inbound"]["stored"], 0);
    assert!(before["last_hour"]["inbound"]["duplicate"].is_null());
    assert!(before["now"]["oldest_queued_age_secs"].is_null());

    let gw = Gateway::start(e.cfg.clone()).await.expect("gateway starts");
    accept(&e, ANA, &mail("RE: [HD #77] ok", "s1@c", "")).await;
    accept(&e, ANA, &mail("Oi", "s2@c", "")).await;
    accept(&e, ANA, &mail("Ausente", "s3@c", "Auto-Submitted: auto-replied\r\n")).await;
    gw.wake.notify_one();
    wait_until("notification sent", Duration::from_secs(10), || async {
        (!e.sink.messages().is_empty()).then_some(())
    })
    .await;
    gw.stop(Duration::from_secs(5)).await;

    let after = json(&e, &["stats", "--json"]);
    for w in ["last_hour", "last_day"] {
        let i = &after[w]["inbound"];
        assert_eq!(i["stored"], 1, "{after}");
        assert_eq!(i["quarantined"], 2, "{after}");
        let by = &i["quarantined_by_reason"];
        assert_eq!(by["no ticket matches the subject or the thread headers"], 1);
        assert_eq!(by.as_object().unwrap().len(), 2, "{by}");
        assert_eq!(after[w]["outbound"]["sent"], 1, "{after}");
    }
    reply(&e, "na fila");
    let now = json(&e, &["stats", "--json"]);
    assert_eq!(now["now"]["queued"], 1);
    assert!(now["now"]["oldest_queued_age_secs"].as_i64().unwrap() >= 0);
    let human = cli_ok(&e.conf, &["stats"]);
    assert!(human.contains("inbound stored"), "{human}");
    assert!(human.contains("1 queued"), "{human}");
}

async fn replay_explains(db: Db) {
    let e = setup(db).await;
    let Outcome::Quarantined { id: lost, .. } =
        accept(&e, ANA, &mail("RE: [HD #999] nada", "r1@c", "")).await
    else {
        panic!("quarantined");
    };
    let robot = mail(
        "Fora do escritório",
        "r2@c",
        "Auto-Submitted: auto-replied\r\nIn-Reply-To: <ticket.77.x@gw.test>\r\n",
    );
    let Outcome::Quarantined { id: ooo, .. } = accept(&e, ANA, &robot).await else {
        panic!("quarantined");
    };
    accept(&e, ANA, &mail("RES: [HD #77] ok", "r3@c", "")).await;
    let tables = ["tickets", "messages", "outbox", "quarantine", "templates", "parameters"];
    let mut counts = Vec::new();
    for t in tables {
        counts.push(count(&e.store, t).await);
    }

    let x = json(&e, &["replay", &lost.to_string(), "--json"]);
    assert_eq!(x["parse"]["subject"], "RE: [HD #999] nada");
    assert_eq!(x["parse"]["message_id"], "<r1@c>");
    assert_eq!(x["classification"]["kind"], "person");
    assert!(x["matcher"]["describe"].as_str().unwrap().contains("ticket ID"));
    assert!(x["matcher"]["source"].as_str().unwrap().contains("template"));
    assert_eq!(x["subject"]["ticket_id"], 999);
    assert_eq!(x["subject"]["ticket_exists"], false);
    assert!(x["ticket"].is_null());
    assert_eq!(x["verdict"]["outcome"], "quarantined");
    let human = cli_ok(&e.conf, &["replay", &lost.to_string(), "--quarantine"]);
    assert!(human.contains("ticket 999 does not exist"), "{human}");
    assert!(human.contains("verdict:"), "{human}");

    let x = json(&e, &["replay", &ooo.to_string(), "--json"]);
    assert_eq!(x["classification"]["kind"], "auto-reply");
    assert_eq!(
        x["classification"]["decided_by"],
        "Auto-Submitted: auto-replied"
    );
    assert_eq!(x["thread_ids"][0]["root_of_ticket"], 77);
    assert_eq!(x["ticket"]["matched_by"], "references");
    assert_eq!(x["verdict"]["outcome"], "quarantined");
    assert!(
        x["verdict"]["detail"]
            .as_str()
            .unwrap()
            .contains("otherwise go to ticket 77")
    );

    let id: i64 = sqlx::query_scalar("SELECT id FROM messages WHERE message_id = '<r3@c>'")
        .fetch_one(e.store.pool())
        .await
        .unwrap();
    let thread = json(&e, &["ticket", "show", "77", "--json"]);
    assert_eq!(thread["messages"][0]["id"], id);
    let x = json(&e, &["replay", &id.to_string(), "--message", "--json"]);
    assert_eq!(x["source"]["kind"], "message");
    assert_eq!(x["subject"]["ticket_id"], 77);
    assert_eq!(x["ticket"]["id"], 77);
    assert_eq!(x["ticket"]["matched_by"], "subject");
    assert_eq!(x["ticket"]["status"], "open");
    assert_eq!(x["verdict"]["outcome"], "duplicate");
    let human = cli_ok(&e.conf, &["replay", &id.to_string(), "--message"]);
    assert!(human.contains("77 (by subject), status open"), "{human}");

    fails(&e, &["replay", "999"], "quarantine row 999 does not exist");
    fails(&e, &["replay", "999", "--message"], "message 999 does not exist");
    for (t, n) in tables.iter().zip(counts) {
        assert_eq!(count(&e.store, t).await, n, "replay wrote to {t}");
    }
}

both_databases!(
    queue_commands,
    quarantine_commands,
    closed_ticket_policies,
    stats_move,
    replay_explains
);
