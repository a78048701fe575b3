//! `mensageria param …` and `mensageria template …`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::config::Config;
use crate::inbound::subject::SubjectMatcher;
use crate::outbound::template::{Key, Template};
use crate::outbound::{self, Parsed};
use crate::store::Store;
use crate::store::params::TEMPLATE_PARAM;

#[derive(Subcommand, Debug)]
pub enum ParamCmd {
    /// Print a parameter's value.
    Get { number: i64 },
    /// Set a parameter (417: the id of the technician mail template).
    Set { number: i64, value: String },
}

#[derive(Subcommand, Debug)]
pub enum TemplateCmd {
    /// Store a template and print its id.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        body_file: PathBuf,
        #[arg(long)]
        html_file: Option<PathBuf>,
    },
    List,
    Show {
        id: i64,
    },
    /// Report unknown keys, keys that would render empty, a subject without
    /// the ticket ID, and the subject matcher replies will be read with.
    Check {
        id: i64,
        /// Check the values of this ticket too.
        #[arg(long)]
        ticket: Option<i64>,
    },
    /// The mail exactly as it would go out for a ticket.
    Preview {
        id: i64,
        #[arg(long)]
        ticket: i64,
        /// Text for ${MENSAGEM}.
        #[arg(long, default_value = "(message text)")]
        body: String,
    },
}

pub async fn param(store: &Store, cmd: ParamCmd) -> anyhow::Result<()> {
    match cmd {
        ParamCmd::Get { number } => match store.param_get(number).await? {
            Some(v) => println!("{v}"),
            None => bail!("parameter {number} is not set"),
        },
        ParamCmd::Set { number, value } => {
            if number == TEMPLATE_PARAM {
                // Refuse a 417 that points nowhere: every send would fail.
                let id: i64 = value.trim().parse().with_context(|| {
                    format!("parameter 417 must be a template id, not {value:?}")
                })?;
                let row = store
                    .template_get(id)
                    .await?
                    .with_context(|| format!("template {id} does not exist"))?;
                Parsed::new(row)?;
            }
            store.param_set(number, value.trim()).await?;
            println!("parameter {number} = {}", value.trim());
        }
    }
    Ok(())
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub async fn template(store: &Store, cfg: &Config, cmd: TemplateCmd) -> anyhow::Result<()> {
    match cmd {
        TemplateCmd::Add {
            name,
            subject,
            body_file,
            html_file,
        } => {
            let body = read(&body_file)?;
            let html = html_file.as_ref().map(read).transpose()?;
            Template::parse(&subject).context("subject")?;
            Template::parse(&body).context("body")?;
            if let Some(h) = &html {
                Template::parse(h).context("HTML body")?;
            }
            let id = store
                .template_add(&name, &subject, &body, html.as_deref())
                .await?
                .with_context(|| format!("a template named {name:?} exists already"))?;
            println!("{id}");
        }
        TemplateCmd::List => {
            let current = store.param_get(TEMPLATE_PARAM).await?;
            let rows: Vec<Vec<String>> = store
                .template_list()
                .await?
                .into_iter()
                .map(|t| {
                    let mark = if current.as_deref() == Some(&t.id.to_string()) {
                        "417"
                    } else {
                        ""
                    };
                    vec![
                        t.id.to_string(),
                        mark.into(),
                        t.name,
                        super::output::cell(&t.subject, 60),
                    ]
                })
                .collect();
            super::output::table(&["ID", "PARAM", "NAME", "SUBJECT"], &rows);
        }
        TemplateCmd::Show { id } => {
            let t = store
                .template_get(id)
                .await?
                .with_context(|| format!("template {id} does not exist"))?;
            println!(
                "id: {}\nname: {}\nsubject: {}\n\n{}",
                t.id, t.name, t.subject, t.body_text
            );
            if let Some(h) = t.body_html {
                println!("\n--- HTML ---\n{h}");
            }
        }
        TemplateCmd::Check { id, ticket } => check(store, id, ticket).await?,
        TemplateCmd::Preview { id, ticket, body } => {
            let row = store
                .template_get(id)
                .await?
                .with_context(|| format!("template {id} does not exist"))?;
            let raw = outbound::preview(store, cfg, &Parsed::new(row)?, ticket, &body).await?;
            print!("{}", String::from_utf8_lossy(&raw));
        }
    }
    Ok(())
}

async fn check(store: &Store, id: i64, ticket: Option<i64>) -> anyhow::Result<()> {
    let row = store
        .template_get(id)
        .await?
        .with_context(|| format!("template {id} does not exist"))?;
    let mut problems = Vec::new();
    for (part, text) in [
        ("subject", Some(&row.subject)),
        ("body", Some(&row.body_text)),
        ("html", row.body_html.as_ref()),
    ] {
        if let Some(text) = text
            && let Err(e) = Template::parse(text)
        {
            problems.push(format!("{part}: {e}"));
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            println!("error: {p}");
        }
        bail!("template {id} has {} error(s)", problems.len());
    }
    let t = Parsed::new(row)?;
    println!("template {id} ({}): keys parse", t.row.name);
    if !t.subject.contains(Key::IdSolicitacaoServico) {
        println!(
            "warning: the subject has no ${{IDSOLICITACAOSERVICO}}: replies can be matched only by their thread headers"
        );
    }
    if !t.text.contains(Key::Mensagem) {
        println!(
            "warning: the body has no ${{MENSAGEM}}: the technician's text would not appear in the mail"
        );
    }
    match SubjectMatcher::from_template(&t.row.subject) {
        Ok(m) => println!("subject matcher: {}", m.describe()),
        Err(e) => println!(
            "warning: {e}; replies are matched with the built-in pattern {}",
            SubjectMatcher::fallback().describe()
        ),
    }
    if let Some(tid) = ticket {
        let tk = store
            .ticket_get(tid)
            .await?
            .with_context(|| format!("ticket {tid} does not exist"))?;
        let values = outbound::values_for(&tk, "x");
        let mut empty: Vec<Key> = values.empty_keys(&t.subject);
        for k in values.empty_keys(&t.text) {
            if !empty.contains(&k) {
                empty.push(k);
            }
        }
        for k in empty {
            println!(
                "warning: ${{{}}} ({}) would render empty for ticket {tid}",
                k.name(),
                k.meaning()
            );
        }
    }
    Ok(())
}
