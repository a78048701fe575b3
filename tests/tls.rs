//! TLS on the listener: STARTTLS (offered in EHLO, plaintext pipelined after
//! it dropped), the implicit-TLS port, and a certificate reload that new
//! handshakes see while old sessions go on.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mensageria::gateway::Gateway;
use rustls::pki_types::{CertificateDer, ServerName};
use support::{Db, GATEWAY, TestDb};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Writes a fresh self-signed certificate for gw.test; returns its DER.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let ck = rcgen::generate_simple_self_signed(vec!["gw.test".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    ck.cert.der().clone()
}

fn connector(trusted: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(cfg))
}

/// Reads one (possibly multi-line) reply; returns all its lines.
async fn reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut l))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed");
        let last = l.as_bytes().get(3) != Some(&b'-');
        lines.push(l.trim_end().to_owned());
        if last {
            return lines;
        }
    }
}

async fn start(tdb: &TestDb, implicit: bool) -> (Gateway, Option<SocketAddr>) {
    let mut cfg = support::config(&tdb.url, support::sink::free_port());
    cfg.tls.cert_file = Some(tdb.dir.path().join("cert.pem"));
    cfg.tls.key_file = Some(tdb.dir.path().join("key.pem"));
    if implicit {
        cfg.tls.implicit_listen = vec!["127.0.0.1:0".into()];
    }
    let gw = Gateway::start(cfg).await.unwrap();
    let implicit_addr = gw.smtp_addrs.get(1).copied();
    (gw, implicit_addr)
}

/// A TLS session that sends one message; returns the reply to end of data
/// and the certificate the server showed.
async fn mail_over_tls<S>(
    s: S,
    trusted: &CertificateDer<'static>,
    greet: bool,
) -> (String, CertificateDer<'static>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let tls = connector(trusted)
        .connect(ServerName::try_from("gw.test").unwrap(), s)
        .await
        .expect("handshake");
    let shown = tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned();
    let mut s = BufReader::new(tls);
    if greet {
        assert!(reply(&mut s).await[0].starts_with("220"));
    }
    s.write_all(b"EHLO cliente.example\r\n").await.unwrap();
    let ehlo = reply(&mut s).await;
    assert!(
        ehlo[0].starts_with("250-gw.test"),
        "the first reply inside TLS answers EHLO: {ehlo:?}"
    );
    assert!(
        !ehlo.iter().any(|l| l.contains("STARTTLS")),
        "no STARTTLS once TLS is on: {ehlo:?}"
    );
    for cmd in [
        "MAIL FROM:<a@cliente.example>".to_string(),
        format!("RCPT TO:<{GATEWAY}>"),
        "DATA".into(),
    ] {
        s.write_all(format!("{cmd}\r\n").as_bytes()).await.unwrap();
        reply(&mut s).await;
    }
    s.write_all(b"Subject: sobre TLS\r\nMessage-ID: <tls@c>\r\n\r\nok\r\n.\r\n")
        .await
        .unwrap();
    (reply(&mut s).await.join("\n"), shown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_then_mail_and_injection_dropped() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let cert = write_cert(tdb.dir.path());
    let (gw, _) = start(&tdb, false).await;
    let mut s = BufReader::new(TcpStream::connect(gw.smtp_addr()).await.unwrap());
    assert!(reply(&mut s).await[0].starts_with("220"));
    s.write_all(b"EHLO cliente.example\r\n").await.unwrap();
    let ehlo = reply(&mut s).await;
    assert!(ehlo.iter().any(|l| l.ends_with("STARTTLS")), "{ehlo:?}");
    // A command pipelined after STARTTLS must not be answered inside TLS.
    s.write_all(b"STARTTLS\r\nNOOP\r\n").await.unwrap();
    assert!(reply(&mut s).await[0].starts_with("220"));
    let (end, _) = mail_over_tls(s.into_inner(), &cert, false).await;
    // The first reply inside TLS was to our EHLO (checked above); the mail goes through.
    assert!(end.starts_with("250"), "{end}");
    gw.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_port_and_reload() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let first = write_cert(tdb.dir.path());
    let (gw, implicit) = start(&tdb, true).await;
    let implicit = implicit.expect("implicit TLS listener");
    // An open session on the old certificate.
    let old = TcpStream::connect(implicit).await.unwrap();
    let old = connector(&first)
        .connect(ServerName::try_from("gw.test").unwrap(), old)
        .await
        .unwrap();
    let mut old = BufReader::new(old);
    assert!(reply(&mut old).await[0].starts_with("220"));

    let (end, shown) =
        mail_over_tls(TcpStream::connect(implicit).await.unwrap(), &first, true).await;
    assert!(end.starts_with("250"), "{end}");
    assert_eq!(shown, first);

    let second = write_cert(tdb.dir.path());
    gw.tls.as_ref().unwrap().reload().expect("reload");
    let (_, shown) =
        mail_over_tls(TcpStream::connect(implicit).await.unwrap(), &second, true).await;
    assert_eq!(shown, second, "new handshakes use the new certificate");
    // The old session is still alive.
    old.write_all(b"NOOP\r\n").await.unwrap();
    assert!(reply(&mut old).await[0].starts_with("250"));
    gw.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_without_dropping_sessions() {
    let tdb = TestDb::new(Db::Sqlite).await;
    let first = write_cert(tdb.dir.path());
    let mut cfg = support::config(&tdb.url, support::sink::free_port());
    let (port, tls_port) = (support::sink::free_port(), support::sink::free_port());
    cfg.smtp.listen = mensageria::config::Listen::One(format!("127.0.0.1:{port}"));
    cfg.tls.cert_file = Some(tdb.dir.path().join("cert.pem"));
    cfg.tls.key_file = Some(tdb.dir.path().join("key.pem"));
    cfg.tls.implicit_listen = vec![format!("127.0.0.1:{tls_port}")];
    let conf = support::write_config(tdb.dir.path(), &cfg);
    let d =
        support::daemon::Daemon::spawn(&conf, format!("127.0.0.1:{port}").parse().unwrap()).await;
    let implicit: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();

    let old = TcpStream::connect(implicit).await.unwrap();
    let old = connector(&first)
        .connect(ServerName::try_from("gw.test").unwrap(), old)
        .await
        .unwrap();
    assert_eq!(old.get_ref().1.peer_certificates().unwrap()[0], first);
    let mut old = BufReader::new(old);
    assert!(reply(&mut old).await[0].starts_with("220"));

    let second = write_cert(tdb.dir.path());
    d.signal("HUP");
    // New handshakes see the new certificate once the reload is done.
    let shown = support::wait_until("the new certificate", Duration::from_secs(10), || async {
        let s = TcpStream::connect(implicit).await.ok()?;
        let tls = connector(&second)
            .connect(ServerName::try_from("gw.test").unwrap(), s)
            .await
            .ok()?;
        Some(
            tls.get_ref().1.peer_certificates().unwrap()[0]
                .clone()
                .into_owned(),
        )
    })
    .await;
    assert_eq!(shown, second);
    // The session opened before the reload goes on.
    old.write_all(b"NOOP\r\n").await.unwrap();
    assert!(reply(&mut old).await[0].starts_with("250"));
}
