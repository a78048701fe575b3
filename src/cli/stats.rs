//! `mensageria stats`: what the gateway did over the last hour and the last
//! day, read from the tables (so it works with the daemon stopped), and
//! what waits in the outbox now. It counts rows; it never writes.
//!
//! Duplicates are acknowledged without writing a row, so the database
//! cannot count them: they are reported as unknown (null), not as zero.

use std::collections::BTreeMap;

use serde::Serialize;

use super::output::{self, age, table};
use crate::store::{Store, now_ms};

const HOUR_MS: i64 = 3600 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;

#[derive(Serialize)]
struct Stats {
    last_hour: Window,
    last_day: Window,
    now: Now,
}

#[derive(Serialize)]
struct Window {
    inbound: Inbound,
    outbound: Outbound,
}

#[derive(Serialize)]
struct Inbound {
    stored: i64,
    /// Not recorded in the database.
    duplicate: Option<i64>,
    /// Mail still in quarantine (released or dropped rows no longer count).
    quarantined: i64,
    quarantined_by_reason: BTreeMap<String, i64>,
}

#[derive(Serialize)]
struct Outbound {
    sent: i64,
    failed: i64,
}

#[derive(Serialize)]
struct Now {
    queued: i64,
    sending: i64,
    failed: i64,
    /// Seconds the oldest queued (or sending) row has waited; null when none.
    oldest_queued_age_secs: Option<i64>,
}

async fn window(store: &Store, since: i64) -> anyhow::Result<Window> {
    let reasons: BTreeMap<String, i64> = store
        .quarantine_reasons_since(since)
        .await?
        .into_iter()
        .collect();
    let out = store.outbox_counts_since(since).await?;
    Ok(Window {
        inbound: Inbound {
            stored: store.tickets_inbound_since(since).await?,
            duplicate: None,
            quarantined: reasons.values().sum(),
            quarantined_by_reason: reasons,
        },
        outbound: Outbound {
            sent: out.sent,
            failed: out.failed,
        },
    })
}

pub async fn stats(store: &Store, json: bool) -> anyhow::Result<()> {
    let now = now_ms();
    let o = store.outbox_now().await?;
    let s = Stats {
        last_hour: window(store, now - HOUR_MS).await?,
        last_day: window(store, now - DAY_MS).await?,
        now: Now {
            queued: o.queued,
            sending: o.sending,
            failed: o.failed,
            oldest_queued_age_secs: o.oldest_waiting_at.map(|t| (now - t).max(0) / 1000),
        },
    };
    if json {
        return output::json(&s);
    }
    let (h, d) = (&s.last_hour, &s.last_day);
    let row = |what: &str, a: i64, b: i64| vec![what.to_owned(), a.to_string(), b.to_string()];
    let mut rows = vec![
        row("inbound stored", h.inbound.stored, d.inbound.stored),
        vec!["inbound duplicate".into(), "n/a".into(), "n/a".into()],
        row(
            "inbound quarantined",
            h.inbound.quarantined,
            d.inbound.quarantined,
        ),
    ];
    // The day's reasons include the hour's; list each once, hour beside it.
    for (reason, n) in &d.inbound.quarantined_by_reason {
        let hour = h.inbound.quarantined_by_reason.get(reason).copied();
        rows.push(row(
            &format!("  {}", output::cell(reason, 60)),
            hour.unwrap_or(0),
            *n,
        ));
    }
    rows.push(row("outbound sent", h.outbound.sent, d.outbound.sent));
    rows.push(row("outbound failed", h.outbound.failed, d.outbound.failed));
    table(&["", "LAST HOUR", "LAST DAY"], &rows);
    println!();
    let oldest = match s.now.oldest_queued_age_secs {
        Some(secs) => format!("oldest waiting {}", age(secs * 1000)),
        None => "nothing waiting".into(),
    };
    println!(
        "outbox now: {} queued, {} sending, {} failed; {oldest}",
        s.now.queued, s.now.sending, s.now.failed
    );
    println!("(duplicates are acknowledged without a row, so they cannot be counted here)");
    Ok(())
}
