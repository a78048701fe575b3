//! The binary's edge: every bad input is one clear line on stderr and a
//! non-zero exit (78 for configuration), never a panic or a backtrace.

mod support;

use std::path::Path;

use support::{Db, TestDb, cli, cli_ok};

fn one_line_error(out: &std::process::Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line, got: {err}");
    assert!(err.starts_with("mensageria: "), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

fn config_in(dir: &Path, db: &TestDb) -> std::path::PathBuf {
    support::write_config(dir, &support::config(&db.url, 2))
}

#[test]
fn bad_config_exits_78_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "[smtp]\nlisten = \"127.0.0.1:2525\"\nlisen = 1\n").unwrap();
    one_line_error(&cli(&p, &["check-config"]), 78, "lisen");
    std::fs::write(
        &p,
        "[mail]\nfrom = \"not an address\"\n[relay]\nurl = \"http://x\"\n",
    )
    .unwrap();
    let out = cli(&p, &["serve"]);
    one_line_error(&out, 78, "mail.from");
    assert!(String::from_utf8_lossy(&out.stderr).contains("relay.url"));
    one_line_error(
        &cli(&dir.path().join("missing.toml"), &["check-config"]),
        78,
        "cannot read",
    );
}

#[test]
fn shipped_config_is_valid() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mensageria.toml");
    let text = std::fs::read_to_string(p).unwrap();
    let cfg = mensageria::config::Config::parse(&text).unwrap();
    assert_eq!(cfg.validate(), Vec::<String>::new());
    assert_eq!(cfg.database.url, "sqlite://var/mensageria.db");
    assert_eq!(cfg.smtp.listen.addresses(), vec!["127.0.0.1:2525"]);
}

async fn bad_input_is_one_line(db: Db) {
    let tdb = TestDb::new(db).await;
    let dir = tdb.dir.path().to_owned();
    let conf = config_in(&dir, &tdb);
    one_line_error(
        &cli(&conf, &["ticket", "show", "12"]),
        1,
        "ticket 12 does not exist",
    );
    one_line_error(
        &cli(
            &conf,
            &[
                "ticket",
                "reply",
                "12",
                "--from",
                "t@x.example",
                "--body",
                "oi",
            ],
        ),
        1,
        "ticket 12 does not exist",
    );
    one_line_error(
        &cli(&conf, &["ticket", "upsert", "12", "--requester", "ana"]),
        1,
        "not an e-mail address",
    );
    one_line_error(
        &cli(&conf, &["ticket", "upsert", "12"]),
        1,
        "--requester is required",
    );
    one_line_error(
        &cli(&conf, &["param", "set", "417", "9"]),
        1,
        "template 9 does not exist",
    );
    one_line_error(&cli(&conf, &["param", "get", "417"]), 1, "not set");
    let body = dir.join("b.txt");
    std::fs::write(&body, "Olá ${NOMECONTATO} ${FOO} ${BAR}").unwrap();
    one_line_error(
        &cli(
            &conf,
            &[
                "template",
                "add",
                "--name",
                "x",
                "--subject",
                "S ${IDSOLICITACAOSERVICO}",
                "--body-file",
                body.to_str().unwrap(),
            ],
        ),
        1,
        "${FOO}, ${BAR}",
    );
    one_line_error(
        &cli(
            &conf,
            &[
                "template",
                "add",
                "--name",
                "x",
                "--subject",
                "S",
                "--body-file",
                "/nonexistent",
            ],
        ),
        1,
        "cannot read /nonexistent",
    );
    // A good template, then what `check` reports about it.
    std::fs::write(&body, "Olá ${NOMECONTATO}\n${MENSAGEM}\n").unwrap();
    let id = cli_ok(
        &conf,
        &[
            "template",
            "add",
            "--name",
            "ok",
            "--subject",
            "[Chamado ${IDSOLICITACAOSERVICO}] ${SERVICO}",
            "--body-file",
            body.to_str().unwrap(),
        ],
    );
    cli_ok(
        &conf,
        &[
            "ticket",
            "upsert",
            "12",
            "--requester",
            "ana@cliente.example",
        ],
    );
    let check = cli_ok(&conf, &["template", "check", id.trim(), "--ticket", "12"]);
    assert!(check.contains("subject matcher:"), "{check}");
    assert!(
        check.contains("${NOMECONTATO} (contact name) would render empty"),
        "{check}"
    );
    assert!(check.contains("${SERVICO}"), "{check}");
    // No parameter 417 yet: the send fails with that reason and leaves a row.
    one_line_error(
        &cli(
            &conf,
            &[
                "ticket",
                "reply",
                "12",
                "--from",
                "t@x.example",
                "--body",
                "oi",
            ],
        ),
        1,
        "parameter 417",
    );
    let q: serde_json::Value =
        serde_json::from_str(&cli_ok(&conf, &["queue", "list", "--json"])).unwrap();
    assert_eq!(q[0]["state"], "failed");
    cli_ok(&conf, &["param", "set", "417", id.trim()]);
    let preview = cli_ok(
        &conf,
        &[
            "template",
            "preview",
            id.trim(),
            "--ticket",
            "12",
            "--body",
            "Teste",
        ],
    );
    assert!(preview.contains("Subject: [Chamado 12]"), "{preview}");
    let out = cli_ok(
        &conf,
        &[
            "ticket",
            "reply",
            "12",
            "--from",
            "t@x.example",
            "--body",
            "oi",
        ],
    );
    assert!(out.starts_with("queued <ms.12."), "{out}");
}

both_databases!(bad_input_is_one_line);

#[test]
fn check_config_prints_one_line_per_problem_and_probes_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    let bad = [
        ("[database]\nurl = \"mysql://x\"\n", "database.url"),
        ("[smtp]\nlisten = \"nowhere\"\n", "smtp.listen"),
        (
            "[smtp]\nmax_command_length = 10\n",
            "smtp.max_command_length",
        ),
        ("[mail]\nfrom = \"nobody\"\n", "mail.from"),
        (
            "[relay]\nurl = \"smtp://u:secret@relay.example\"\n",
            "password_file",
        ),
        (
            "[relay]\nusername = \"u\"\npassword_file = \"/nonexistent/pw\"\n",
            "relay.password_file",
        ),
        ("[tls]\ncert_file = \"/nonexistent/c.pem\"\n", "tls"),
        (
            "[inbound]\nsubject_pattern = \"(a)(b)\"\n",
            "inbound.subject_pattern",
        ),
        ("[inbound]\nunmatched = \"drop\"\n", "unmatched"),
        ("[log]\nfilter = \"=[\"\n", "log.filter"),
    ];
    for (text, key) in bad {
        std::fs::write(&p, text).unwrap();
        let out = cli(&p, &["check-config"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{text}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{text}: one line: {err}");
        assert!(err.contains(key), "{key} not in {err}");
    }
    // Two problems, two lines.
    std::fs::write(
        &p,
        "[database]\nurl = \"mysql://x\"\n[mail]\nfrom = \"nobody\"\n",
    )
    .unwrap();
    let out = cli(&p, &["check-config"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .lines()
            .count(),
        2
    );
    // A valid file; the relay probe fails on a closed port (exit 1, one line).
    let db = dir.path().join("m.db");
    let port = support::sink::free_port();
    std::fs::write(
        &p,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[relay]\nurl = \"smtp://127.0.0.1:{port}\"\n[security]\nkey_file = \"{}\"\n",
            db.display(),
            dir.path().join("k").display()
        ),
    )
    .unwrap();
    let ok = cli_ok(&p, &["check-config"]);
    assert!(ok.contains("database") && ok.contains("reachable"), "{ok}");
    let out = cli(&p, &["check-config", "--probe-relay"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("relay smtp://127.0.0.1"), "{err}");
}
