#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/<target>/, git-ignored) from the shared
# e-mail corpus and a few hand-written inputs. Idempotent: files are named by
# their source, so running it again only refreshes them.
#
#   fuzz/seed.sh [CORPUS_DIR]      # default: ../shared/corpus beside the crate
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="${1:-${MENSAGERIA_CORPUS:-$here/../../shared/corpus}}"
[ -d "$src" ] || { echo "seed: no corpus at $src (pass its path)" >&2; exit 1; }
out="$here/corpus"
mkdir -p "$out"/{inbound_parse,subject,template,framing}

# inbound_parse: raw messages as they are, plus the discourse reply bodies
# both bare and behind a minimal header (so extraction sees them as bodies).
n=0
while IFS= read -r -d '' f; do
  rel="${f#"$src"/}"
  cp "$f" "$out/inbound_parse/${rel//\//_}"
  n=$((n + 1))
done < <(find "$src/mikel-mail" "$src/spamassassin" -type f -name '*.eml' -print0)
while IFS= read -r -d '' f; do
  base="discourse_$(basename "$f")"
  cp "$f" "$out/inbound_parse/$base"
  {
    printf 'From: Ana <ana@cliente.example>\r\nTo: chamados@suporte.example\r\n'
    printf 'Subject: =?UTF-8?Q?RES:_Solicita=C3=A7=C3=A3o_n=C2=BA_4521_-_Impressora?=\r\n'
    printf 'Message-ID: <%s@cliente.example>\r\nIn-Reply-To: <ms.4521.1@gw.test>\r\n' "$base"
    printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
    cat "$f"
  } >"$out/inbound_parse/wrapped_$base"
  n=$((n + 2))
done < <(find "$src/discourse-email_reply_trimmer/emails" -type f -print0)
printf 'From: a@b.example\r\nSubject: [HD #77] oi\r\nAuto-Submitted: auto-replied\r\n\r\nfora do escrit\xf3rio\r\n' \
  >"$out/inbound_parse/hand_autoreply"
printf 'From: a@b.example\r\nSubject: Re: Chamado 12\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n<p>Ol\xe1</p><blockquote>Em 3 de mar. de 2020, escreveu:<br>x</blockquote>\r\n' \
  >"$out/inbound_parse/hand_html"
echo "seed: inbound_parse $((n + 2)) inputs from $src"

# subject: "template\nsubject" (the target splits at the first LF).
s="$out/subject"
T='Solicitação nº ${IDSOLICITACAOSERVICO} - ${SERVICO}'
printf '%s\n%s' "$T" 'RES: Re[2]: Solicitação nº 4521 - Impressora NF 123456' >"$s/pt"
printf '%s\n%s' "$T" 'SOLICITAC'$'\xcc\xa7''A'$'\xcc\x83''O N° 7 - 3º andar' >"$s/pt_nfd"
printf '%s\n%s' '[4biz #${IDSOLICITACAOSERVICO}] ${NOMECONTATO}: ${CATEGORIA}' 'AW: [4biz # 88] Ana: Rede' >"$s/biz"
printf '%s\n%s' '${IDSERVICEREQUEST} - Chamado aberto: ${SERVICO}' 'Fwd: 5521 - Chamado aberto: VPN' >"$s/lead"
printf '%s\n%s' 'x' '[EXTERNO] Ticket #123 no 2º andar' >"$s/fallback"
printf '%s' 'Re: Pedido nº 99881 - RE: Solicitação nº 4521 - Rede' >"$s/plain"
echo "seed: subject $(ls "$s" | wc -l) inputs"

# template: the template, then values for the keys in order, split by U+001F.
t="$out/template"
us=$'\x1f'
printf '%s' "Solicitação nº \${IDSOLICITACAOSERVICO} - \${SERVICO}${us}4521${us}Ana${us}tec${us}2020-03-03${us}Incidente${us}Impressora" >"$t/pt"
printf '%s' "Olá \${NOMECONTATO},${us}7${us}a"$'\r\n'"Bcc: x@y${us}\${MENSAGEM}" >"$t/inject"
printf '%s' "R\$ 10,00 \$\${NOMECONTATO} \${COMMENTTEXT} \${IDSERVICEREQUEST}${us}1${us}${us}${us}${us}${us}${us}${us}${us}${us}${us}${us}\${NOMECONTATO}"$'\x00\xc2\x85' >"$t/escape"
printf '%s' "\${nome} \${X" >"$t/bad"
echo "seed: template $(ls "$t" | wc -l) inputs"

# framing: client byte streams, smuggling attempts included.
f="$out/framing"
printf 'EHLO x\r\nMAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n' >"$f/session"
printf 'DATA\r\nx\n.\r\nMAIL FROM:<evil@x>\r\n\r\n.\n\r\n.\r\n' >"$f/smuggle"
printf 'MAIL FROM:<> SIZE=abc\r\nMAIL FROM:<a@b> FOO=1\nmail from:<x@y> body=7bit size=99999999999\r\n' >"$f/params"
echo "seed: framing $(ls "$f" | wc -l) inputs"
