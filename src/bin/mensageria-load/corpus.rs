//! Requesters' replies that look like the real thing: a greeting, a few
//! paragraphs of Portuguese-looking text, a signature, the quoted mail they
//! answer, and now and then a base64 attachment. Bodies are made once, up
//! front (dot-stuffed, CRLF), so the client spends its CPU on the wire and
//! not on writing prose; each message only gets fresh headers.

use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, RngCore};

const WORDS: &[&str] = &[
    "impressora",
    "chamado",
    "acesso",
    "sistema",
    "senha",
    "usuário",
    "rede",
    "computador",
    "setor",
    "atendimento",
    "problema",
    "solicitação",
    "equipamento",
    "configuração",
    "servidor",
    "arquivo",
    "pasta",
    "compartilhada",
    "licença",
    "instalação",
    "técnico",
    "manutenção",
    "monitor",
    "teclado",
    "conexão",
    "internet",
    "lentidão",
    "erro",
    "mensagem",
    "tela",
    "relatório",
    "planilha",
    "contrato",
    "prazo",
    "reunião",
    "ontem",
    "hoje",
    "amanhã",
    "ainda",
    "também",
    "porém",
    "então",
    "quando",
    "depois",
    "antes",
    "sempre",
    "nunca",
    "funciona",
    "voltou",
    "parou",
    "aparece",
    "consegui",
    "tentei",
    "reiniciei",
    "verifiquei",
    "precisamos",
    "gostaria",
    "poderia",
    "favor",
    "obrigado",
    "novamente",
    "urgente",
    "o",
    "a",
    "os",
    "as",
    "de",
    "do",
    "da",
    "no",
    "na",
    "em",
    "com",
    "para",
    "por",
    "que",
    "não",
    "mas",
    "e",
    "um",
    "uma",
    "se",
    "já",
    "mais",
    "muito",
    "só",
    "está",
    "foi",
    "é",
];

const GREETINGS: &[&str] = &[
    "Bom dia,",
    "Boa tarde,",
    "Olá,",
    "Prezados,",
    "Oi, tudo bem?",
];
const CLOSINGS: &[&str] = &[
    "Atenciosamente,",
    "Obrigado,",
    "Att.,",
    "Grato,",
    "Abraços,",
];
const NAMES: &[&str] = &[
    "Ana Luíza Ferreira",
    "João Batista Conceição",
    "Márcia Gonçalves",
    "Sérgio Araújo",
    "Patrícia Lima",
    "Fábio Magalhães",
    "Luciana Simões",
    "Antônio Brandão",
];
const SECTORS: &[&str] = &[
    "Coordenação de Compras",
    "Secretaria Acadêmica",
    "Departamento Jurídico",
    "Gerência de Logística",
    "Núcleo de Atendimento",
];
/// `{topic}` in the subject template.
pub const TOPICS: &[&str] = &[
    "Impressora do 3º andar sem toner",
    "Acesso à VPN",
    "Senha do e-mail expirada",
    "Computador não liga",
    "Instalação do pacote Office",
    "Erro no sistema de ponto",
    "Troca de monitor",
    "Lentidão na rede do almoxarifado",
    "Pasta compartilhada inacessível",
];

/// A body made up front: the Content-Type it needs and its wire bytes.
pub struct Body {
    pub content_type: String,
    /// Dot-stuffed, CRLF line ends, ending with CRLF.
    pub bytes: Vec<u8>,
}

fn sentence(rng: &mut StdRng) -> String {
    let n = rng.random_range(6..=16);
    let mut s = String::new();
    for i in 0..n {
        let w = WORDS[rng.random_range(0..WORDS.len())];
        if i == 0 {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                s.extend(f.to_uppercase());
                s.push_str(c.as_str());
            }
        } else {
            s.push(' ');
            s.push_str(w);
        }
    }
    s.push(if rng.random_bool(0.15) { '?' } else { '.' });
    s
}

/// Appends `text` wrapped at 72 columns, each line with `prefix`.
fn wrap(out: &mut String, text: &str, prefix: &str) {
    let mut col = 0;
    for w in text.split(' ') {
        let len = w.chars().count();
        if col > 0 && col + 1 + len > 72 {
            out.push_str("\r\n");
            col = 0;
        }
        if col == 0 {
            out.push_str(prefix);
        } else {
            out.push(' ');
            col += 1;
        }
        out.push_str(w);
        col += len;
    }
    out.push_str("\r\n");
}

fn paragraph(rng: &mut StdRng) -> String {
    let n = rng.random_range(2..=5);
    (0..n).map(|_| sentence(rng)).collect::<Vec<_>>().join(" ")
}

/// A reply of about `target` bytes of text.
fn reply_text(rng: &mut StdRng, target: usize) -> String {
    let name = NAMES[rng.random_range(0..NAMES.len())];
    let mut out = String::with_capacity(target + 512);
    out.push_str(GREETINGS[rng.random_range(0..GREETINGS.len())]);
    out.push_str("\r\n\r\n");
    // The new words take about a third; the quoted mail the rest.
    while out.len() < target / 3 {
        wrap(&mut out, &paragraph(rng), "");
        out.push_str("\r\n");
    }
    out.push_str(CLOSINGS[rng.random_range(0..CLOSINGS.len())]);
    out.push_str("\r\n");
    out.push_str(name);
    out.push_str("\r\n");
    out.push_str(SECTORS[rng.random_range(0..SECTORS.len())]);
    out.push_str("\r\n\r\n");
    out.push_str("Em seg., 23 de nov. de 2026 às 14:05, Central de Serviços <chamados@suporte.example> escreveu:\r\n");
    while out.len() < target {
        wrap(&mut out, &paragraph(rng), "> ");
        out.push_str(">\r\n");
    }
    out
}

/// Makes one body of `size` bytes (roughly), with an attachment or not.
pub fn body(rng: &mut StdRng, size: usize, attach: bool) -> Body {
    let (content_type, text) = if !attach {
        (
            "text/plain; charset=UTF-8".to_owned(),
            reply_text(rng, size),
        )
    } else {
        // The attachment takes 40–70 % of the message, as a screenshot or a
        // scanned form does; base64 grows it by a third.
        let share = rng.random_range(40..=70);
        let encoded = size * share / 100;
        let mut raw = vec![0u8; encoded * 3 / 4];
        rng.fill_bytes(&mut raw);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        let boundary = format!("----=_Part_{:016x}", rng.random::<u64>());
        let (ctype, name) = if rng.random_bool(0.5) {
            ("image/png", "print_da_tela.png")
        } else {
            ("application/pdf", "formulário_assinado.pdf")
        };
        let mut t = String::with_capacity(size + 1024);
        t.push_str("This is a multi-part message in MIME format.\r\n\r\n");
        t.push_str(&format!("--{boundary}\r\n"));
        t.push_str(
            "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        );
        t.push_str(&reply_text(rng, size.saturating_sub(encoded).max(512)));
        t.push_str(&format!("--{boundary}\r\n"));
        t.push_str(&format!(
            "Content-Type: {ctype}; name=\"{}\"\r\nContent-Disposition: attachment; filename=\"{}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            encode_word(name),
            encode_word(name)
        ));
        for chunk in b64.as_bytes().chunks(76) {
            t.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            t.push_str("\r\n");
        }
        t.push_str(&format!("--{boundary}--\r\n"));
        (format!("multipart/mixed; boundary=\"{boundary}\""), t)
    };
    Body {
        content_type,
        bytes: dot_stuff(text.as_bytes()),
    }
}

/// RFC 5321 4.5.2: a line that starts with a period gets one more.
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// RFC 2047 encoded words for a header value with non-ASCII text, folded
/// so that no encoded word passes 75 characters.
pub fn encode_word(text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        // 45 bytes of UTF-8 → 60 base64 characters + 12 of framing.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// A display name for a requester's From.
pub fn name(rng: &mut StdRng) -> &'static str {
    NAMES[rng.random_range(0..NAMES.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bodies_are_wire_ready() {
        let mut rng = StdRng::seed_from_u64(7);
        for attach in [false, true] {
            let b = body(&mut rng, 5000, attach);
            assert!(b.bytes.ends_with(b"\r\n"));
            assert!(
                b.bytes.len() > 3000 && b.bytes.len() < 9000,
                "{}",
                b.bytes.len()
            );
            let text = String::from_utf8(b.bytes).unwrap();
            assert!(text.lines().all(|l| l.len() < 998));
            assert!(!text.replace("\r\n", "").contains('\n'));
        }
    }

    #[test]
    fn encoded_words_are_short() {
        let w =
            encode_word("RES: Solicitação nº 123 - Impressora do 3º andar sem toner e sem papel");
        assert!(w.split("\r\n ").all(|p| p.len() <= 75), "{w}");
    }
}
