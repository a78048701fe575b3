//! Outbound: a technician's message (or a notification of a requester's
//! reply) becomes rendered bytes, written to the thread and the outbox in one
//! transaction. Relaying those bytes is `relay`'s job, never this module's.

pub mod caps;
pub mod closed;
pub mod compose;
pub mod failure;
pub mod handoff;
mod notify;
mod qp;
pub mod template;
pub mod thread;
pub mod token;

use crate::config::Config;
use crate::store::messages::{Direction, NewMessage};
use crate::store::outbox::NewOutbox;
use crate::store::params::TEMPLATE_PARAM;
use crate::store::templates::TemplateRow;
use crate::store::tickets::Ticket;
use crate::store::{Store, StoreError, Tx};
use template::{Key, Template, TemplateError, Values};

pub use notify::{Notice, Prepared, QueuedCopies, prepare_notification, queue_prepared};

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("ticket {0} does not exist")]
    UnknownTicket(i64),
    #[error("parameter 417 (the template of technician mail) is not set")]
    NoTemplateParam,
    #[error("parameter 417 is {0:?}, not a template id")]
    BadTemplateParam(String),
    #[error("parameter 417 names template {0}, which does not exist")]
    TemplateMissing(i64),
    #[error("template {id} {part}: {source}")]
    Template {
        id: i64,
        part: &'static str,
        source: TemplateError,
    },
    #[error("ticket {0} has no requester address")]
    NoRequester(i64),
    #[error(transparent)]
    Compose(#[from] compose::ComposeError),
    #[error(transparent)]
    Key(#[from] token::KeyError),
    #[error("{0}")]
    Suppressed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A template with its subject and bodies parsed.
pub struct Parsed {
    pub row: TemplateRow,
    pub subject: Template,
    pub text: Template,
    pub html: Option<Template>,
}

impl Parsed {
    pub fn new(row: TemplateRow) -> Result<Parsed, OutboundError> {
        let err = |part| {
            let id = row.id;
            move |source| OutboundError::Template { id, part, source }
        };
        let subject = Template::parse(&row.subject).map_err(err("subject"))?;
        let text = Template::parse(&row.body_text).map_err(err("text body"))?;
        let html = match &row.body_html {
            Some(h) => Some(Template::parse(h).map_err(err("HTML body"))?),
            None => None,
        };
        Ok(Parsed {
            row,
            subject,
            text,
            html,
        })
    }
}

/// The template that parameter 417 names, parsed.
pub async fn current_template(store: &Store) -> Result<Parsed, OutboundError> {
    let value = store
        .param_get(TEMPLATE_PARAM)
        .await?
        .ok_or(OutboundError::NoTemplateParam)?;
    let id: i64 = value
        .trim()
        .parse()
        .map_err(|_| OutboundError::BadTemplateParam(value.clone()))?;
    let row = store
        .template_get(id)
        .await?
        .ok_or(OutboundError::TemplateMissing(id))?;
    Parsed::new(row)
}

/// The values of every key for one ticket and one message text.
pub fn values_for(ticket: &Ticket, text: &str) -> Values {
    let mut v = Values::new();
    v.set(Key::IdSolicitacaoServico, ticket.id.to_string())
        .set(Key::NomeContato, &ticket.contact_name)
        .set(Key::RegistradoPor, &ticket.registered_by)
        .set(Key::DataHora, &ticket.opened_at_text)
        .set(Key::Demanda, &ticket.demand)
        .set(Key::Servico, &ticket.service)
        .set(Key::ServicoRelacionado, &ticket.related_service)
        .set(Key::Portfolio, &ticket.portfolio)
        .set(Key::Categoria, &ticket.category)
        .set(Key::TempoGastoData, &ticket.time_spent_date)
        .set(Key::TempoGastoHora, &ticket.time_spent_hours)
        .set(Key::Mensagem, text);
    v
}

/// A rendered technician mail, before it gets its thread headers.
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

pub fn render(t: &Parsed, ticket: &Ticket, text: &str) -> Rendered {
    let values = values_for(ticket, text);
    Rendered {
        subject: t.subject.render_header(&values),
        text: t.text.render(&values),
        html: t.html.as_ref().map(|h| h.render(&values)),
    }
}

/// What `ticket reply` did.
#[derive(Debug)]
pub struct Queued {
    pub outbox_id: i64,
    pub message_id: String,
}

/// Thread headers for the next mail on a ticket.
pub(crate) struct ThreadHeaders {
    pub in_reply_to: String,
    pub references: Vec<String>,
    pub thread_index: String,
}

pub(crate) async fn thread_headers(
    conn: &mut Tx,
    ticket: &Ticket,
) -> Result<ThreadHeaders, StoreError> {
    thread_headers_after(conn, ticket, None).await
}

/// Thread headers as they will be once `newest` (a message about to be
/// stored on the ticket) is on the thread.
pub(crate) async fn thread_headers_after(
    conn: &mut Tx,
    ticket: &Ticket,
    newest: Option<&str>,
) -> Result<ThreadHeaders, StoreError> {
    let mut ids = Store::thread_ids(conn, ticket.id, thread::MAX_REFERENCES).await?;
    if let Some(id) = newest.filter(|id| !id.is_empty()) {
        ids.retain(|i| i != id);
        ids.push(id.to_owned());
        let over = ids.len().saturating_sub(thread::MAX_REFERENCES as usize);
        ids.drain(..over);
    }
    let mut references = vec![ticket.thread_root.clone()];
    references.extend(ids.iter().filter(|i| **i != ticket.thread_root).cloned());
    let thread_index = if ids.is_empty() {
        ticket.thread_index.clone()
    } else {
        thread::child_thread_index(&ticket.thread_index)
    };
    Ok(ThreadHeaders {
        in_reply_to: references.last().cloned().unwrap_or_default(),
        references,
        thread_index,
    })
}

/// A technician's message to the requester: renders template 417, writes the
/// thread message and the outbox row in one transaction. When the template
/// cannot render, a failed outbox row records why and nothing is sent.
pub async fn technician_reply(
    store: &Store,
    cfg: &Config,
    ticket_id: i64,
    author: &str,
    text: &str,
) -> Result<Queued, OutboundError> {
    let ticket = store
        .ticket_get(ticket_id)
        .await?
        .ok_or(OutboundError::UnknownTicket(ticket_id))?;
    if ticket.requester.is_empty() {
        return Err(OutboundError::NoRequester(ticket_id));
    }
    let to = vec![ticket.requester.clone()];
    let key = token::key(cfg)?;
    let minted = token::mint(cfg, &key, ticket_id, &ticket.requester);
    let message_id = minted.message_id.clone();
    let template = {
        // A recipient that bounced permanently is not mailed again for a
        // while: the technician hears why at once.
        // A read: a plain connection, not a write transaction.
        let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
        let bounced = caps::bounced(&mut conn, &ticket.requester).await?;
        drop(conn);
        match bounced {
            Some(reason) => Err(OutboundError::Suppressed(reason)),
            None => current_template(store).await,
        }
    };
    let template = match template {
        Ok(t) => t,
        Err(e @ (OutboundError::Store(_) | OutboundError::UnknownTicket(_))) => return Err(e),
        Err(e) => {
            // Leave a row that says why this mail never left.
            let mut tx = store.begin().await?;
            let o = NewOutbox {
                ticket_id: Some(ticket_id),
                kind: "reply",
                message_id: &message_id,
                mail_from: &cfg.mail.from,
                rcpt_to: &to,
                raw: b"",
                raw_codec: None,
            };
            Store::outbox_insert_failed(&mut tx, &o, &e.to_string()).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(e);
        }
    };
    let r = render(&template, &ticket, text);
    let mut tx = store.begin().await?;
    let topic = Store::ticket_set_topic_once(&mut tx, ticket_id, &r.subject).await?;
    let th = thread_headers(&mut tx, &ticket).await?;
    let raw = compose::build(&compose::Draft {
        from_name: &cfg.mail.from_name,
        from: &cfg.mail.from,
        reply_to: &minted.reply_to,
        to: &to,
        subject: &r.subject,
        text: &r.text,
        html: r.html.as_deref(),
        message_id: &message_id,
        in_reply_to: Some(&th.in_reply_to),
        references: &th.references,
        thread_topic: &topic,
        thread_index: &th.thread_index,
        auto: None,
        attachments: &[],
    })?;
    let refs = th.references.join(" ");
    // One compressed copy for both rows (see store::packed).
    let packed = crate::store::packed::pack(&raw);
    let (stored, codec) = crate::store::packed::as_stored(&raw, packed.as_deref());
    Store::message_insert(
        &mut tx,
        &NewMessage {
            ticket_id,
            direction: Direction::Out,
            author,
            recipients: &to,
            subject: &r.subject,
            body_text: text,
            message_id: &message_id,
            in_reply_to: Some(&th.in_reply_to),
            refs: Some(&refs),
            raw: stored,
            raw_codec: codec,
            kind: "reply",
            matched_by: "",
        },
    )
    .await?;
    let outbox_id = Store::outbox_insert(
        &mut tx,
        &NewOutbox {
            ticket_id: Some(ticket_id),
            kind: "reply",
            message_id: &message_id,
            mail_from: &minted.envelope_from,
            rcpt_to: &to,
            raw: stored,
            raw_codec: codec,
        },
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Queued {
        outbox_id,
        message_id,
    })
}

/// The rendered mail exactly as `ticket reply` would queue it (not stored).
pub async fn preview(
    store: &Store,
    cfg: &Config,
    template: &Parsed,
    ticket_id: i64,
    text: &str,
) -> Result<Vec<u8>, OutboundError> {
    let ticket = store
        .ticket_get(ticket_id)
        .await?
        .ok_or(OutboundError::UnknownTicket(ticket_id))?;
    let r = render(template, &ticket, text);
    let to = vec![ticket.requester.clone()];
    let minted = token::mint(cfg, &*token::key(cfg)?, ticket_id, &ticket.requester);
    Ok(compose::build(&compose::Draft {
        from_name: &cfg.mail.from_name,
        from: &cfg.mail.from,
        reply_to: &minted.reply_to,
        to: &to,
        subject: &r.subject,
        text: &r.text,
        html: r.html.as_deref(),
        auto: None,
        message_id: &minted.message_id,
        in_reply_to: Some(&ticket.thread_root),
        references: std::slice::from_ref(&ticket.thread_root),
        thread_topic: &r.subject,
        thread_index: &ticket.thread_index,
        attachments: &[],
    })?)
}
