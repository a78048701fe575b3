//! Parsing and rendering of the e-mail template named by parameter 417: a
//! subject and a body with `${KEY}` markers that are filled from a ticket.
//! This module only turns text plus values into text; it knows nothing of
//! e-mail encoding (MIME, RFC 2047) or of the database the values come from.
//!
//! Syntax: `${KEY}` inserts a value; key names are upper case `A-Z`, `0-9`,
//! `_`. A `$` not followed by `{` is a literal `$`, and `$${` is the escape
//! for a literal `${` (so `$${NOMECONTATO}` renders as `${NOMECONTATO}`).
//! Any other text, newlines and non-ASCII included, is kept exactly.

use std::collections::BTreeMap;

/// A value a template can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    IdSolicitacaoServico,
    NomeContato,
    RegistradoPor,
    DataHora,
    Demanda,
    Servico,
    ServicoRelacionado,
    Portfolio,
    Categoria,
    TempoGastoData,
    TempoGastoHora,
    Mensagem,
}

impl Key {
    pub const ALL: [Key; 12] = [
        Key::IdSolicitacaoServico,
        Key::NomeContato,
        Key::RegistradoPor,
        Key::DataHora,
        Key::Demanda,
        Key::Servico,
        Key::ServicoRelacionado,
        Key::Portfolio,
        Key::Categoria,
        Key::TempoGastoData,
        Key::TempoGastoHora,
        Key::Mensagem,
    ];

    /// Exact (case-sensitive) canonical names, plus the CITSmart English
    /// aliases so templates copied from CITSmart work unchanged.
    pub fn from_name(name: &str) -> Option<Key> {
        match name {
            "COMMENTTEXT" => Some(Key::Mensagem),
            "IDSERVICEREQUEST" => Some(Key::IdSolicitacaoServico),
            _ => Key::ALL.into_iter().find(|k| k.name() == name),
        }
    }

    /// Canonical name, without `${` `}`.
    pub fn name(self) -> &'static str {
        NAMES[self as usize].0
    }

    /// What the key stands for, in English (for `template check` and help).
    pub fn meaning(self) -> &'static str {
        NAMES[self as usize].1
    }
}

/// (canonical name, meaning), indexed by the `Key` discriminant, so it must
/// follow the declaration order of `Key`.
const NAMES: [(&str, &str); 12] = [
    ("IDSOLICITACAOSERVICO", "ticket ID"),
    ("NOMECONTATO", "contact name"),
    ("REGISTRADOPOR", "registered by"),
    ("DATAHORA", "date and time"),
    ("DEMANDA", "activity type"),
    ("SERVICO", "activity"),
    ("SERVICORELACIONADO", "service"),
    ("PORTFOLIO", "portfolio"),
    ("CATEGORIA", "category"),
    ("TEMPOGASTODATA", "time spent (date)"),
    ("TEMPOGASTOHORA", "time spent (hours)"),
    ("MENSAGEM", "message text"),
];

/// Why a template text was rejected. Names are stored without `${` `}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown template key(s): {}; known keys: {}",
        braced(.0.iter().map(String::as_str)),
        braced(Key::ALL.iter().map(|k| k.name()))
    )]
    UnknownKeys(Vec<String>),
    #[error("\"${{\" with no closing \"}}\" at byte offset {offset}")]
    Unterminated { offset: usize },
    #[error("bad template key ${{{}}}: {}", shorten(.0), bad_key_hint(.0))]
    BadKey(String),
}

fn braced<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("${{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stray `${` can swallow a whole paragraph up to some later `}`; the
/// message only needs the start of it.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

fn bad_key_hint(name: &str) -> String {
    if name.is_empty() {
        return "a key name cannot be empty".to_string();
    }
    let upper = name.to_ascii_uppercase();
    if Key::from_name(&upper).is_some() {
        format!("key names are case-sensitive; did you mean ${{{upper}}}?")
    } else if upper.bytes().all(is_name_byte) {
        "key names are case-sensitive and written in upper case".to_string()
    } else {
        "key names use only A-Z, 0-9 and _ (write $${ for a literal ${)".to_string()
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Key(Key),
}

/// A parsed subject or body; adjacent literal text is merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parses the whole text and reports every unknown key at once (not only
    /// the first). Syntax errors (unterminated, bad key) stop at the first.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut unknown: Vec<String> = Vec::new();
        let mut rest = src;
        let mut offset = 0; // byte offset of `rest` within `src`
        // `$`, `{` and `}` are ASCII, so every slice below is on a char boundary.
        while let Some(i) = rest.find('$') {
            literal.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let consumed = if after.starts_with("${") {
                literal.push_str("${");
                i + 3
            } else if let Some(inner) = after.strip_prefix('{') {
                let Some(close) = inner.find('}') else {
                    return Err(TemplateError::Unterminated { offset: offset + i });
                };
                let name = &inner[..close];
                if name.is_empty() || !name.bytes().all(is_name_byte) {
                    return Err(TemplateError::BadKey(name.to_string()));
                }
                match Key::from_name(name) {
                    Some(key) => {
                        if !literal.is_empty() {
                            segments.push(Segment::Literal(std::mem::take(&mut literal)));
                        }
                        segments.push(Segment::Key(key));
                    }
                    None if !unknown.iter().any(|u| u == name) => unknown.push(name.to_string()),
                    None => {}
                }
                i + 2 + close + 1
            } else {
                literal.push('$');
                i + 1
            };
            rest = &rest[consumed..];
            offset += consumed;
        }
        literal.push_str(rest);
        if !unknown.is_empty() {
            return Err(TemplateError::UnknownKeys(unknown));
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Template { segments })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Distinct keys, in order of first use.
    pub fn keys(&self) -> Vec<Key> {
        let mut keys = Vec::new();
        for seg in &self.segments {
            if let Segment::Key(k) = seg
                && !keys.contains(k)
            {
                keys.push(*k);
            }
        }
        keys
    }

    pub fn contains(&self, key: Key) -> bool {
        self.segments.contains(&Segment::Key(key))
    }

    /// Body rendering: values inserted verbatim, never re-expanded (a value
    /// containing "${NOMECONTATO}" stays as that text).
    pub fn render(&self, values: &Values) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            match seg {
                Segment::Literal(text) => out.push_str(text),
                Segment::Key(k) => out.push_str(values.get(*k)),
            }
        }
        out
    }

    /// Header rendering (Subject): like `render`, but controls and whitespace
    /// runs in values become one space, so a value cannot inject a header line;
    /// the result is trimmed. Controls in literals also become spaces (not
    /// collapsed): a subject must stay one line whatever its source.
    pub fn render_header(&self, values: &Values) -> String {
        // split_whitespace misses some controls (NUL, ESC...), so fold first.
        let unctrl = |c: char| if c.is_control() { ' ' } else { c };
        let mut out = String::new();
        for seg in &self.segments {
            match seg {
                Segment::Literal(text) => out.extend(text.chars().map(unctrl)),
                Segment::Key(k) => {
                    let folded: String = values.get(*k).chars().map(unctrl).collect();
                    out.push_str(&folded.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
        }
        out.trim().to_string()
    }
}

/// The values for one message, keyed by `Key`; unset keys render as "".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    map: BTreeMap<Key, String>,
}

impl Values {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, key: Key, value: impl Into<String>) -> &mut Self {
        self.map.insert(key, value.into());
        self
    }

    /// The value of `key`, or "" when unset.
    pub fn get(&self, key: Key) -> &str {
        self.map.get(&key).map_or("", String::as_str)
    }

    /// Keys the template uses whose value is empty (so `template check` can
    /// warn "would render empty"). Whitespace-only counts as empty because
    /// that is what it renders to in a header.
    pub fn empty_keys(&self, template: &Template) -> Vec<Key> {
        let keys = template.keys().into_iter();
        keys.filter(|k| self.get(*k).trim().is_empty()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Key::*;
    use super::*;

    fn vals(pairs: &[(Key, &str)]) -> Values {
        let mut v = Values::new();
        for (k, s) in pairs {
            v.set(*k, *s);
        }
        v
    }

    #[test]
    fn all_keys_and_aliases_render() {
        let t = Template::parse(&Key::ALL.map(|k| format!("[${{{}}}]", k.name())).concat());
        let t = t.unwrap();
        assert_eq!(t.keys(), Key::ALL);
        let v = vals(&Key::ALL.map(|k| (k, k.meaning())));
        let want = Key::ALL.map(|k| format!("[{}]", k.meaning())).concat();
        assert_eq!(t.render(&v), want);
        assert_eq!(IdSolicitacaoServico.name(), "IDSOLICITACAOSERVICO");
        assert_eq!(Mensagem.name(), "MENSAGEM");
        let t = Template::parse("${IDSERVICEREQUEST}: ${COMMENTTEXT}").unwrap();
        assert_eq!(t.keys(), [IdSolicitacaoServico, Mensagem]);
        assert_eq!(t.render(&v), "ticket ID: message text");
    }

    #[test]
    fn unknown_keys_reported_together() {
        let err = Template::parse("${FOO} ${NOMECONTATO} ${BAR} ${FOO}").unwrap_err();
        let names = vec!["FOO".to_string(), "BAR".to_string()];
        assert_eq!(err, TemplateError::UnknownKeys(names));
        let msg = err.to_string();
        assert!(msg.starts_with("unknown template key(s): ${FOO}, ${BAR}; known keys: ${IDSOL"));
    }

    #[test]
    fn unterminated_and_bad_keys() {
        // "Olá " is 5 bytes: the offset counts bytes, not characters.
        let err = Template::parse("Olá ${NOMECONTATO").unwrap_err();
        assert_eq!(err, TemplateError::Unterminated { offset: 5 });
        assert!(err.to_string().contains("byte offset 5"));
        let err = Template::parse("a ${} b").unwrap_err();
        assert_eq!(err, TemplateError::BadKey(String::new()));
        let err = Template::parse("${nome}").unwrap_err();
        assert_eq!(err, TemplateError::BadKey("nome".into()));
        assert!(err.to_string().contains("case-sensitive"));
        let err = Template::parse("${nomecontato}").unwrap_err();
        assert!(err.to_string().contains("did you mean ${NOMECONTATO}?"));
        let err = Template::parse("${NOME CONTATO}").unwrap_err();
        assert_eq!(err, TemplateError::BadKey("NOME CONTATO".into()));
        let long = format!("${{{}}}", "x".repeat(500));
        assert!(Template::parse(&long).unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn literal_dollar_escape_and_no_re_expansion() {
        let t = Template::parse("R$ 10,00 $ $$${NOMECONTATO} $${X} }").unwrap();
        let want = Segment::Literal("R$ 10,00 $ $${NOMECONTATO} ${X} }".into());
        assert_eq!(t.segments(), [want]);
        let t = Template::parse("$${NOMECONTATO}=${NOMECONTATO}$").unwrap();
        let v = vals(&[(NomeContato, "Ana")]);
        assert_eq!(t.render(&v), "${NOMECONTATO}=Ana$");
        // Values are inserted verbatim, never re-expanded.
        let t = Template::parse("${NOMECONTATO}: ${MENSAGEM}").unwrap();
        let mut v = vals(&[(NomeContato, "Ana")]);
        v.set(Mensagem, "${MENSAGEM} ${NOMECONTATO}");
        assert_eq!(t.render(&v), "Ana: ${MENSAGEM} ${NOMECONTATO}");
    }

    #[test]
    fn header_folds_injection() {
        let t = Template::parse("Chamado ${IDSOLICITACAOSERVICO} - ${NOMECONTATO}").unwrap();
        let nome = "a\r\nBcc: x@y\u{0}\u{2028}  ";
        let v = vals(&[(IdSolicitacaoServico, " 42\t"), (NomeContato, nome)]);
        let h = t.render_header(&v);
        assert_eq!(h, "Chamado 42 - a Bcc: x@y");
        assert!(!h.contains('\r') && !h.contains('\n'));
        assert!(t.render(&v).contains("a\r\nBcc: x@y")); // the body keeps it verbatim
        let t = Template::parse("  Linha\r\num ${NOMECONTATO}\n").unwrap();
        assert_eq!(t.render_header(&v), "Linha  um a Bcc: x@y");
    }

    #[test]
    fn portuguese_text_preserved() {
        let src =
            "Olá ${NOMECONTATO},\n\nSolicitação nº ${IDSOLICITACAOSERVICO} — ação concluída.\n";
        let v = vals(&[(NomeContato, "João Conceição"), (IdSolicitacaoServico, "7")]);
        let t = Template::parse(src).unwrap();
        let want = "Olá João Conceição,\n\nSolicitação nº 7 — ação concluída.\n";
        assert_eq!(t.render(&v), want);
    }

    #[test]
    fn empty_keys_and_contains() {
        let t = Template::parse("${MENSAGEM} ${CATEGORIA} ${SERVICO} ${MENSAGEM}").unwrap();
        assert_eq!(t.keys(), [Mensagem, Categoria, Servico]);
        assert!(t.contains(Categoria) && !t.contains(Portfolio));
        let v = vals(&[(Mensagem, "oi"), (Categoria, " \n"), (Portfolio, "")]);
        assert_eq!(v.get(Demanda), "");
        assert_eq!(v.empty_keys(&t), [Categoria, Servico]);
    }
}
