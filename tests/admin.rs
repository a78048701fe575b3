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
const ROOT: &str = "<ticket.77.x@gw.test>";

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
    let subject = "[HD #${IDSOLICITACAOSERVICO}] ${SERVICO}";
    let id = store.template_add("t", subject, "${MENSAGEM}", None);
    let id = id.await.unwrap().unwrap();
    store.param_set(417, &id.to_string()).await.unwrap();
    let f = TicketFields {
        requester: Some(ANA.into()),
        service: Some("Impressora".into()),
        technicians: Some(vec![TECH.into()]),
        ..Default::default()
    };
    store.ticket_upsert(77, &f, ROOT, "AQ==").await.unwrap();
    Env {
        _tdb: tdb,
        cfg,
        conf,
        store,
        sink,
    }
}

/// A mail the inbound path must quarantine; its row id.
async fn held(e: &Env, raw: &str) -> i64 {
    match accept(e, ANA, raw).await {
        Outcome::Quarantined { id, .. } => id,
        other => panic!("not quarantined: {other:?}"),
    }
}

/// The inbound decision in-process, as the listener would call it.
async fn accept(e: &Env, from: &str, raw: &str) -> Outcome {
    let inbound = Inbound::new(e.store.clone(), Arc::new(e.cfg.clone()), Default::default());
    let env = Envelope {
        peer: ([127, 0, 0, 1], 1).into(),
        helo: "cliente.example".into(),
        mail_from: from.into(),
        rcpt_to: vec![GATEWAY.into()],
    };
    inbound.accept(&env, raw.as_bytes()).await.unwrap()
}

async fn status(e: &Env) -> String {
    e.store.ticket_get(77).await.unwrap().unwrap().status
}

fn mail(subject: &str, message_id: &str, extra: &str) -> String {
    format!(
        "From: Ana Souza <{ANA}>\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n{extra}\r\nresposta\r\n"
    )
}

/// Runs `mensageria CMD` (split on spaces) and insists on success.
fn run(e: &Env, cmd: &str) -> String {
    cli_ok(&e.conf, &cmd.split_whitespace().collect::<Vec<_>>())
}

/// A JSON string field containing `needle`.
fn has(v: &Value, needle: &str) -> bool {
    v.as_str().is_some_and(|s| s.contains(needle))
}

fn json(e: &Env, cmd: &str) -> Value {
    serde_json::from_str(&run(e, cmd)).expect("valid JSON")
}

/// One line on stderr containing `needle`, exit status 1.
fn fails(e: &Env, cmd: &str, needle: &str) {
    let out = cli(&e.conf, &cmd.split_whitespace().collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("mensageria: "), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
}

fn reply(e: &Env, text: &str) {
    let args = ["ticket", "reply", "77", "--from", TECH, "--body", text];
    cli_ok(&e.conf, &args);
}

/// Rows in every table, to prove a command wrote nothing.
async fn counts(store: &Store) -> Vec<i64> {
    let mut n = Vec::new();
    for t in ["tickets", "messages", "outbox", "quarantine", "templates"] {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}"));
        let q = sqlx::query_scalar(sql).fetch_one(store.pool());
        n.push(q.await.unwrap());
    }
    n
}

/// Rows a, b, c, d: sent, failed, sending under a live lease, queued.
async fn seed_outbox(e: &Env) -> [i64; 4] {
    let mut ids = [0; 4];
    for (i, id) in ids.iter_mut().enumerate() {
        // Long enough to be stored packed (see store::packed).
        let body = "A impressora voltou a funcionar depois da troca do toner.\n".repeat(40);
        reply(e, &format!("mensagem {i}\n{body}"));
        if i == 3 {
            *id = e.store.outbox_list().await.unwrap().last().unwrap().id;
            break;
        }
        let claimed = e.store.outbox_claim("t", 600_000, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        *id = claimed[0].id;
        let (s, err) = (&e.store, "550 5.1.1 no such user");
        match i {
            0 => s.outbox_sent(*id, "t").await.unwrap(),
            1 => s.outbox_failed(*id, "t", err).await.unwrap(),
            _ => {}
        }
    }
    ids
}

async fn queue_commands(db: Db) {
    let e = setup(db).await;
    let [sent, failed, sending, queued] = seed_outbox(&e).await;
    let list = json(&e, "queue list --json");
    for (i, state) in ["sent", "failed", "sending", "queued"].iter().enumerate() {
        assert_eq!(list[i]["state"], *state, "{list}");
    }

    let show = run(&e, &format!("queue show {failed}"));
    assert!(show.contains("550 5.1.1 no such user"), "{show}");
    assert!(show.contains("Subject: [HD #77] Impressora"), "{show}");
    let j = json(&e, &format!("queue show {failed} --json"));
    assert_eq!(j["state"], "failed");
    assert_eq!(j["attempts"], 1);
    assert_eq!(j["last_error"], "550 5.1.1 no such user");
    let headers = j["headers"].as_array().unwrap();
    assert!(headers.iter().any(|h| h["name"] == "Message-ID"));
    // The size on the wire, not that of the packed row.
    let wire = e.store.outbox_raw(failed).await.unwrap().unwrap().len();
    let (codec, stored): (Option<String>, i64) =
        sqlx::query_as("SELECT raw_codec, LENGTH(raw) FROM outbox_mail WHERE outbox_id = $1")
            .bind(failed)
            .fetch_one(e.store.pool())
            .await
            .unwrap();
    assert_eq!(codec.as_deref(), Some("lz4"));
    assert!((stored as usize) < wire, "{stored} of {wire}");
    assert_eq!(j["bytes"], wire, "{j}");
    assert!(show.contains(&format!("{wire}")), "{show}");
    let j = json(&e, &format!("queue show {sending} --json"));
    assert_eq!(j["claimed_by"], "t");

    // Retry: the failed row is queued and due now, attempts kept.
    let before = mensageria::store::now_ms();
    let out = run(&e, &format!("queue retry {failed}"));
    assert!(out.contains("due now"), "{out}");
    let row = e.store.outbox_get(failed).await.unwrap().unwrap();
    assert_eq!(row.state, "queued");
    assert_eq!(row.attempts, 1);
    assert!(row.next_attempt_at >= before && row.next_attempt_at <= mensageria::store::now_ms());
    fails(&e, &format!("queue retry {sent}"), "was sent at");
    fails(&e, &format!("queue retry {sending}"), "is being sent by t");
    fails(&e, "queue retry 999", "outbox row 999 does not exist");
    // Both due rows fail again; the live lease keeps `sending` out of it.
    let claimed = e.store.outbox_claim("t", 600_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    for c in claimed {
        e.store.outbox_failed(c.id, "t", "again").await.unwrap();
    }
    let out = run(&e, "queue retry --all");
    assert!(out.starts_with("2 failed row(s) queued"), "{out}");

    // Drop: queued goes; sent and a live lease stay, with the reason.
    run(&e, &format!("queue drop {queued}"));
    assert!(e.store.outbox_get(queued).await.unwrap().is_none());
    assert!(
        e.store.outbox_raw(queued).await.unwrap().is_none(),
        "its mail goes with it"
    );
    fails(&e, &format!("queue drop {sent}"), "cannot be dropped");
    fails(&e, &format!("queue drop {sending}"), "is being sent by t");
    fails(&e, &format!("queue drop {queued}"), "does not exist");
    fails(&e, "queue show 999", "outbox row 999 does not exist");
}

async fn quarantine_commands(db: Db) {
    let e = setup(db).await;
    let long: String = (1..=50).map(|i| format!("linha {i}\r\n")).collect();
    let raw = format!(
        "From: Ana Souza <{ANA}>\r\nSubject: =?UTF-8?Q?RE:_[HD_#999]_impress=C3=A3o?=\r\nMessage-ID: <q1@c>\r\n\r\n{long}"
    );
    let q1 = held(&e, &raw).await;
    let q2 = held(&e, &mail("Oi", "q2@c", "")).await;
    let list = json(&e, "quarantine list --json");
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(run(&e, "quarantine list").contains("no ticket matches"));

    let j = json(&e, &format!("quarantine show {q1} --json"));
    assert_eq!(j["decoded_subject"], "RE: [HD #999] impressão");
    assert_eq!(j["from"], format!("Ana Souza <{ANA}>"));
    assert_eq!(j["text"].as_str().unwrap().lines().count(), 40);
    assert_eq!(j["text_truncated"], true);
    let show = run(&e, &format!("quarantine show {q1}"));
    assert!(show.contains("linha 40\n"), "{show}");
    assert!(!show.contains("linha 41"), "{show}");
    assert!(show.contains("10 more line(s)"), "{show}");

    // Release: on the ticket, the technicians notified, the row gone.
    let release = |id: i64, t: i64| format!("quarantine release {id} --ticket {t}");
    fails(&e, &release(q1, 5), "ticket 5 does not exist");
    fails(&e, &release(999, 77), "row 999 does not exist");
    let out = run(&e, &release(q1, 77));
    assert!(out.contains("released to ticket 77 as <q1@c>"), "{out}");
    let thread = json(&e, "ticket show 77 --json");
    assert_eq!(thread["messages"][0]["message_id"], "<q1@c>");
    assert_eq!(thread["messages"][0]["direction"], "in");
    let q = json(&e, "queue list --json");
    assert_eq!(q[0]["kind"], "notification");
    assert_eq!(q[0]["rcpt_to"], TECH);
    assert!(e.store.quarantine_get(q1).await.unwrap().is_none());

    run(&e, &format!("quarantine drop {q2}"));
    assert!(e.store.quarantine_list().await.unwrap().is_empty());
    fails(&e, &format!("quarantine drop {q2}"), "does not exist");
    fails(&e, "quarantine show 999", "does not exist");
}

/// Close ticket 77, then Ana answers over SMTP under `policy`.
async fn closed_reply(e: &Env, policy: ClosedTicket, n: u32) -> Gateway {
    let mut cfg = e.cfg.clone();
    cfg.inbound.closed_ticket = policy;
    let out = run(e, "ticket close 77");
    assert_eq!(out.trim(), "ticket 77 closed");
    assert!(run(e, "ticket close 77").contains("already closed"));
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    let raw = mail(
        "RES: [HD #77] Impressora",
        &format!("closed{n}@c"),
        &format!("References: {ROOT}\r\n"),
    );
    let r = support::client::deliver(gw.smtp_addr(), ANA, &[GATEWAY], raw.as_bytes()).await;
    assert_eq!(r.code, 250, "{r:?}");
    gw
}

async fn closed_ticket_policies(db: Db) {
    let e = setup(db).await;
    fails(&e, "ticket close 5", "ticket 5 does not exist");

    // reopen: stored, reopened, the technician told.
    let gw = closed_reply(&e, ClosedTicket::Reopen, 1).await;
    assert_eq!(status(&e).await, "open");
    let got = wait_until("notification", Duration::from_secs(10), || async {
        e.sink.messages().into_iter().find(|m| m.rcpt_to == [TECH])
    })
    .await;
    assert!(String::from_utf8_lossy(&got.data).contains("resposta"));
    gw.stop(Duration::from_secs(5)).await;

    // keep: stored, still closed, one automatic reply to Ana, nobody else.
    let gw = closed_reply(&e, ClosedTicket::Keep, 2).await;
    assert_eq!(status(&e).await, "closed");
    let thread = json(&e, "ticket show 77 --json");
    assert_eq!(thread["messages"].as_array().unwrap().len(), 2);
    let got = wait_until("auto-reply", Duration::from_secs(10), || async {
        e.sink.messages().into_iter().find(|m| m.rcpt_to == [ANA])
    })
    .await;
    let text = String::from_utf8_lossy(&got.data).into_owned();
    assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
    assert!(text.contains("In-Reply-To: <closed2@c>"), "{text}");
    assert!(text.contains(ROOT), "{text}");
    assert!(text.contains("Content-Type: text/plain"), "{text}");
    let tech = |m: &&support::sink::Received| m.rcpt_to == [TECH];
    let n = e.sink.messages().iter().filter(tech).count();
    assert_eq!(n, 1, "no second notification under keep");
    gw.stop(Duration::from_secs(5)).await;

    let out = run(&e, "ticket reopen 77");
    assert_eq!(out.trim(), "ticket 77 reopened");
    assert_eq!(status(&e).await, "open");
}

async fn stats_move(db: Db) {
    let e = setup(db).await;
    let before = json(&e, "stats --json");
    assert_eq!(before["last_hour"]["inbound"]["stored"], 0);
    assert!(before["last_hour"]["inbound"]["duplicate"].is_null());
    assert!(before["now"]["oldest_queued_age_secs"].is_null());

    let gw = Gateway::start(e.cfg.clone()).await.expect("gateway starts");
    accept(&e, ANA, &mail("RE: [HD #77] ok", "s1@c", "")).await;
    held(&e, &mail("Oi", "s2@c", "")).await;
    let robot = mail("Ausente", "s3@c", "Auto-Submitted: auto-replied\r\n");
    held(&e, &robot).await;
    gw.wake.notify_one();
    wait_until("notification sent", Duration::from_secs(10), || async {
        (!e.sink.messages().is_empty()).then_some(())
    })
    .await;
    gw.stop(Duration::from_secs(5)).await;

    let after = json(&e, "stats --json");
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
    let now = json(&e, "stats --json");
    assert_eq!(now["now"]["queued"], 1);
    assert!(now["now"]["oldest_queued_age_secs"].as_i64().unwrap() >= 0);
    let human = run(&e, "stats");
    assert!(human.contains("inbound stored"), "{human}");
    assert!(human.contains("1 queued"), "{human}");
}

async fn replay_explains(db: Db) {
    let e = setup(db).await;
    let lost = held(&e, &mail("RE: [HD #999] nada", "r1@c", "")).await;
    let robot = mail(
        "Re: boletim",
        "r2@c",
        &format!("List-Id: <geral.listas.example>\r\nIn-Reply-To: {ROOT}\r\n"),
    );
    let ooo = held(&e, &robot).await;
    accept(&e, ANA, &mail("RES: [HD #77] ok", "r3@c", "")).await;
    let before = counts(&e.store).await;

    let x = json(&e, &format!("replay {lost} --json"));
    assert_eq!(x["parse"]["subject"], "RE: [HD #999] nada");
    assert_eq!(x["parse"]["message_id"], "<r1@c>");
    assert_eq!(x["classification"]["kind"], "person");
    assert!(has(&x["matcher"]["describe"], "ticket ID"), "{x}");
    assert!(has(&x["matcher"]["source"], "template"), "{x}");
    assert_eq!(x["subject"]["ticket_id"], 999);
    assert_eq!(x["subject"]["ticket_exists"], false);
    assert!(x["ticket"].is_null());
    assert_eq!(x["verdict"]["outcome"], "quarantined");
    let human = run(&e, &format!("replay {lost} --quarantine"));
    assert!(human.contains("ticket 999 does not exist"), "{human}");
    assert!(human.contains("verdict:"), "{human}");

    let x = json(&e, &format!("replay {ooo} --json"));
    assert_eq!(x["classification"]["kind"], "list");
    let why = &x["classification"]["decided_by"];
    assert_eq!(why, "List-Id: <geral.listas.example>");
    assert_eq!(x["thread_ids"][0]["root_of_ticket"], 77);
    assert_eq!(x["ticket"]["matched_by"], "references");
    assert_eq!(x["verdict"]["outcome"], "quarantined");
    assert!(has(&x["verdict"]["detail"], "otherwise go to ticket 77"));

    // `ticket show --json` gives the row id `replay --message` takes.
    let thread = json(&e, "ticket show 77 --json");
    assert_eq!(thread["messages"][0]["message_id"], "<r3@c>");
    let id = thread["messages"][0]["id"].as_i64().unwrap();
    let x = json(&e, &format!("replay {id} --message --json"));
    assert_eq!(x["source"]["kind"], "message");
    assert_eq!(x["subject"]["ticket_id"], 77);
    assert_eq!(x["ticket"]["id"], 77);
    assert_eq!(x["ticket"]["matched_by"], "subject");
    assert_eq!(x["ticket"]["status"], "open");
    assert_eq!(x["verdict"]["outcome"], "duplicate");
    let human = run(&e, &format!("replay {id} --message"));
    assert!(human.contains("77 (by subject), status open"), "{human}");
    assert!(
        human.contains("is the requester"),
        "sender check shown: {human}"
    );
    assert_eq!(x["ticket"]["sender_allowed"], true);

    fails(&e, "replay 999", "quarantine row 999 does not exist");
    fails(&e, "replay 999 --message", "message 999 does not exist");
    assert_eq!(counts(&e.store).await, before, "replay wrote");
}

both_databases!(
    queue_commands,
    quarantine_commands,
    closed_ticket_policies,
    stats_move,
    replay_explains
);
