#!/bin/sh
# dkim.sh - DKIM signatures as a user makes and checks them, verified by
# implementations that are not volley's: python3-dkim (tests/dkim/
# verify.py) and, when the build found libopendkim, OpenDKIM's library
# (tests/dkim/opendkim_verify; VOLLEY_OPENDKIM_VERIFY names it).  Public
# keys come from files (rec/SELECTOR._domainkey.DOMAIN): no DNS.
#
# - `volley dkim keygen` (RSA and Ed25519: mode 0600, never over a file,
#   the record on stdout) and `volley dkim check` (exit 0 / 1);
# - four keys of example.org at once, relaxed/relaxed, simple/simple and
#   both mixes (one with its own headers and x=): four signatures on
#   every message of a signed campaign;
# - campaigns with UTF-8 subjects and display names, folded long
#   headers, long quoted-printable lines, an inline image and a PDF
#   attachment (examples/newsletter), an empty body, a From subdomain
#   signed by its parent's keys, and a From domain with no key (unsigned,
#   and `volley send` says so naming the campaign);
# - every signature verified on `volley preview`'s files and on what
#   `volley sink --maildir` stored after `volley send`; send-one signs;
# - a key file that is missing, readable by all, encrypted, too short or
#   not RSA/Ed25519 stops `volley send` at the start, naming the file,
#   with nothing sent;
# - a message with one body byte or one header changed fails (so the
#   verifiers are not vacuous).
# Without a python3 that imports dkim it exits 77 (CTest: skipped),
# except under CI=true, where that is a failure.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SRC=$(cd "$here/../.." && pwd)

skip=77
[ "${CI:-}" = true ] && skip=1
# python3-dkim is Debian's, for /usr/bin/python3: the python3 first on
# PATH (a pyenv, a venv) may not have it
PY=
for p in ${VOLLEY_DKIM_PYTHON:-} /usr/bin/python3 python3; do
	if "$p" -c 'import dkim' 2>/dev/null; then
		PY=$p
		break
	fi
done
if [ -z "$PY" ]; then
	echo "SKIP: no python3 that imports dkim (apt-get install" \
	     "python3-dkim, or scripts/install-deps --tests)"
	exit $skip
fi
ODV=${VOLLEY_OPENDKIM_VERIFY:-}
if [ -n "$ODV" ] && [ ! -x "$ODV" ]; then
	echo "FAIL: VOLLEY_OPENDKIM_VERIFY=$ODV is not a program"
	exit 1
fi
[ -n "$ODV" ] || echo "note: libopendkim not built in: python3-dkim only"

pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

# verified N DESCRIPTION FILE... - every signature of every file verifies,
# N signatures a file (0: none), by each verifier
verified() {
	n=$1; desc=$2; shift 2
	checks=$((checks + 1))
	if ! "$PY" "$SRC/tests/dkim/verify.py" --records rec --expect "$n" \
		"$@" >verify.txt 2>&1; then
		echo "FAIL: $desc (python3-dkim):"; sed 's/^/  | /' verify.txt
		failures=$((failures + 1))
	fi
	[ -n "$ODV" ] || return 0
	checks=$((checks + 1))
	if ! ASAN_OPTIONS=detect_leaks=0 "$ODV" --records rec --expect "$n" \
		"$@" >verify.txt 2>&1; then
		echo "FAIL: $desc (libopendkim):"; sed 's/^/  | /' verify.txt
		failures=$((failures + 1))
	fi
}

# refused DESCRIPTION FILE - a signature of FILE fails, by each verifier
refused() {
	checks=$((checks + 1))
	if "$PY" "$SRC/tests/dkim/verify.py" --records rec "$2" \
		>verify.txt 2>&1; then
		echo "FAIL: $1: python3-dkim takes it"
		failures=$((failures + 1))
	fi
	[ -n "$ODV" ] || return 0
	checks=$((checks + 1))
	if ASAN_OPTIONS=detect_leaks=0 "$ODV" --records rec "$2" \
		>verify.txt 2>&1; then
		echo "FAIL: $1: libopendkim takes it"
		failures=$((failures + 1))
	fi
}

# mode FILE - its permission bits, octal
mode() {
	stat -c %a "$1"
}

mkdir keys rec

# --- volley dkim keygen ----------------------------------------------------
# keygen NAME SELECTOR [OPTIONS] - keys/NAME.key for example.org, its
# record in rec/
keygen() {
	name=$1; sel=$2; shift 2
	ok "keygen $name" "$VOLLEY" dkim keygen --domain example.org \
		--selector "$sel" --out "keys/$name.key" "$@" &&
		cp out.txt "rec/$sel._domainkey.example.org"
}
keygen rr rr
has out.txt "v=DKIM1; k=rsa; p=MIIBIjAN" "an RSA-2048 record on stdout"
has err.txt "rr._domainkey.example.org" "where to publish it"
equals "$(wc -l < out.txt | tr -d ' ')" 1 "stdout: the record alone"
keygen es es --algorithm ed25519
has out.txt "v=DKIM1; k=ed25519; p=" "an Ed25519 record on stdout"
equals "$(wc -c < out.txt | tr -d ' ')" 67 "a 32-byte Ed25519 key"
keygen em em --algorithm ed25519
keygen rm rm --bits 3072
has err.txt "3072 bits" "--bits"
for k in rr es em rm; do
	equals "$(mode keys/$k.key)" 600 "keys/$k.key is 0600"
done
cp keys/rr.key rr.copy
fails 1 "keygen never overwrites" "$VOLLEY" dkim keygen --domain \
	example.org --selector x --out keys/rr.key
has err.txt "never overwritten" "says why"
checks=$((checks + 1))
cmp -s keys/rr.key rr.copy || { echo "FAIL: keys/rr.key changed"
	failures=$((failures + 1)); }
fails 1 "keygen --bits 512" "$VOLLEY" dkim keygen --domain example.org \
	--selector x --bits 512 --out keys/x.key
has err.txt "1024 to 8192" "--bits 512 is refused"
fails 2 "keygen of no domain" "$VOLLEY" dkim keygen --selector x
fails 2 "--bits with Ed25519" "$VOLLEY" dkim keygen --domain example.org \
	--selector x --algorithm ed25519 --bits 256
has err.txt "--bits is for RSA keys" "--bits with Ed25519 is refused"
ok "keygen, default file name" "$VOLLEY" dkim keygen --domain other.test \
	--selector o --algorithm ed25519
equals "$(mode other.test.o.key)" 600 "other.test.o.key, 0600"
mv other.test.o.key keys/o.key
cp out.txt rec/o._domainkey.other.test

# Four keys of example.org with every canonicalization, one with its own
# headers and x=; one key of another domain.
cat > volley.cfg <<'CFG'
store = { path = "test.db"; };
dkim = (
  { domain = "example.org"; selector = "rr"; key_file = "keys/rr.key"; },
  { domain = "example.org"; selector = "es"; key_file = "keys/es.key";
    canonicalization = "simple/simple"; },
  { domain = "example.org"; selector = "em"; key_file = "keys/em.key";
    canonicalization = "relaxed/simple"; },
  { domain = "example.org"; selector = "rm"; key_file = "keys/rm.key";
    canonicalization = "simple/relaxed"; expire_days = 7;
    headers = [ "From", "To", "Subject", "Date", "Message-ID",
                "X-Campaign", "Content-Type" ]; },
  { domain = "other.test"; selector = "o"; key_file = "keys/o.key"; }
);
CFG

# --- volley dkim check -----------------------------------------------------
ok "check: the published record" "$VOLLEY" dkim check --domain example.org \
	--selector rr --txt "$(cat rec/rr._domainkey.example.org)"
has out.txt "ok: the record at rr._domainkey.example.org publishes" \
	"check says ok"
ok "check: Ed25519" "$VOLLEY" dkim check --domain example.org \
	--selector es --txt "$(cat rec/es._domainkey.example.org)"
fails 1 "check: another key" "$VOLLEY" dkim check --domain example.org \
	--selector es --txt "$(cat rec/em._domainkey.example.org)"
has err.txt "another key" "check names the mismatch"
fails 1 "check: another algorithm" "$VOLLEY" dkim check --domain \
	example.org --selector rr --txt "$(cat rec/es._domainkey.example.org)"
has err.txt "another algorithm" "check names the algorithm"
fails 1 "check: revoked" "$VOLLEY" dkim check --domain example.org \
	--selector rr --txt "v=DKIM1; k=rsa; p="
has err.txt "revokes" "check sees a revoked key"
# a zone-file line, its record split into quoted strings
rec=$(cat rec/rr._domainkey.example.org)
printf 'rr._domainkey IN TXT ( "%s"\n  "%s" )\n' \
	"$(echo "$rec" | cut -c1-200)" "$(echo "$rec" | cut -c201-)" > zone.txt
ok "check: a zone-file line" "$VOLLEY" dkim check --domain example.org \
	--selector rr --txt-file zone.txt
fails 1 "check: no such key configured" "$VOLLEY" dkim check \
	--domain example.org --selector nope --txt "$rec"
ok "check without a record prints it" "$VOLLEY" dkim check \
	--domain example.org --selector em
equals "$(cat out.txt)" "$(cat rec/em._domainkey.example.org)" \
	"the same record as keygen printed"

# --- campaigns ---------------------------------------------------------------
ok "init" "$VOLLEY" init
cp -r "$SRC/examples/newsletter" news
ok "campaign news" "$VOLLEY" campaign create news --template news \
	--from bounces@example.org

mkdir long empty nokey
# folded UTF-8 headers, a long display name, long QP lines with trailing
# spaces and tabs, a dot line; From a subdomain of example.org
cat > long/message.cfg <<'CFG'
subject = "Ein sehr langer Betreff mit Umlauten äöü, {{first_name}}, "
          "der gefaltet werden muss, weit über 78 Spalten hinaus";
from = "Ünïcödé Sender with a rather long display name, indeed "
       "<news@news.example.org>";
reply_to = "Büro <reply@example.org>";
list_unsubscribe = "https://news.example.org/u?e={{email}}&t=0123456789"
                   "abcdef0123456789abcdef";
headers = { X-Campaign = "long-folded-header token token token token "
            "token token token token token token token token token token "
            "token token token token"; };
CFG
"$PY" - <<'PY'
line = "lorem ipsum dolor sit amet, Grüße aus Köln " * 40
with open("long/body.txt", "w") as f:
    f.write("Hello {{first_name}},\n" + (line + "\n") * 3 + "\n"
            + "trailing spaces   \n\t\ttabs\t\n.\n..\n\n\n")
with open("long/body.html", "w") as f:
    f.write("<p>Hello {{first_name}}</p>\n<p>" + line + "</p>\n")
PY
# A template that renders to nothing.  (An empty body.txt would do the
# same, but campaign create then passes memcpy a NULL source in
# engine/send/snapshot.c, which UBSan stops: not this test's subject.)
echo "{{! nothing }}" > empty/body.txt
printf 'subject = "empty";\nfrom = "Jürgen Müller <news@example.org>";\n' \
	> empty/message.cfg
printf 'subject = "no key";\nfrom = "Unsigned <news@unsigned.test>";\n' \
	> nokey/message.cfg
echo "Hello {{first_name}}" > nokey/body.txt
for c in long empty nokey; do
	ok "campaign $c" "$VOLLEY" campaign create "$c" --template "$c" \
		--from bounces@example.org
done
for c in news long empty nokey; do
	ok "import $c" "$VOLLEY" import "$c" "$SRC/examples/recipients.csv"
done

# --- preview: every message of a signed campaign has four signatures -------
for c in news long empty; do
	ok "preview $c" "$VOLLEY" preview "$c" --limit 50 --out "pv-$c"
	has out.txt "wrote 11 messages to pv-$c, 11 DKIM-signed" \
		"preview $c signs every message"
	verified 4 "preview $c" pv-$c/*.eml
done
ok "preview nokey" "$VOLLEY" preview nokey --out pv-nokey
has out.txt ", 0 DKIM-signed" "nothing signed for unsigned.test"
verified 0 "preview nokey: no signature" pv-nokey/*.eml
f=$(ls pv-long/*.eml | head -n 1)
has "$f" "From: =?UTF-8?" "the long campaign's From is encoded"
has "$f" "d=example.org" "news.example.org is signed by example.org"
has "$f" "Content-Transfer-Encoding: quoted-printable" "long lines go QP"
lacks "$f" "other.test" "other.test's key does not sign"
f=$(ls pv-empty/*.eml | head -n 1)
has "$f" "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" \
	"an empty body: relaxed hashes nothing"
has "$f" "bh=frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=" \
	"simple hashes one CRLF"
f=$(ls pv-news/*.eml | head -n 1)
has "$f" "Content-Type: image/png" "the newsletter has its inline image"
has "$f" "Content-Type: application/pdf" "and its attachment"
has "$f" "s=rm;" "the key with its own headers signs"
has "$f" "h=From:From:To:To:Subject:Subject:Date:Message-ID:X-Campaign:" \
	"with its own h="
has "$f" "h=From:From:To:To:Subject:Subject:Date:Message-ID:" \
	"oversigned headers"
# the signature fields' lines: 78 columns at most (tabs to 8), CRLF
checks=$((checks + 1))
if ! LC_ALL=C awk '
	/^DKIM-Signature:/ { sig = 1 }
	sig && !/^DKIM-Signature:/ && !/^[ \t]/ { sig = 0 }
	sig {
		if (!sub(/\r$/, "")) { print FILENAME ": no CRLF"; bad = 1 }
		n = 0
		for (i = 1; i <= length($0); i++)
			n = substr($0, i, 1) == "\t" ? int(n / 8) * 8 + 8 : \
			    n + 1
		if (n > 78) { print FILENAME ": " n ": " $0; bad = 1 }
	}
	END { exit bad }' pv-*/*.eml > long.txt; then
	echo "FAIL: signature lines over 78 columns or without CRLF:"
	head -n 5 long.txt | sed 's/^/  | /'
	failures=$((failures + 1))
fi

# --- what breaks a signature ------------------------------------------------
f=$(ls pv-news/*.eml | head -n 1)
LC_ALL=C sed 's/^Hello Ada,/Hello Adb,/' "$f" > body-byte.eml
refused "one body byte changed" body-byte.eml
LC_ALL=C sed 's/^Subject: /Subject: Re: /' "$f" > subject.eml
refused "the subject changed" subject.eml
# a second From (oversigned) breaks it too
LC_ALL=C awk '{ print } /^Date: / { print "From: x@evil.example\r" }' \
	"$f" > from2.eml
refused "a From added" from2.eml
# ... while a header a relay adds on top does not
{ printf 'Received: from a by b; Sun, 1 Mar 2026 10:00:00 +0000\r\n'
  cat "$f"; } > received.eml
verified 4 "a Received line on top" received.eml

# --- key errors stop volley send at the start, nothing sent ---------------
start_sink sink --maildir sink.md || exit 1
printf 'smtp = { host = "127.0.0.1"; port = %s; tls = "none"; };\n' \
	"$port" >> volley.cfg
# badcfg FILE - volley.cfg with FILE as rr's key
badcfg() {
	sed "s|keys/rr.key|$1|" volley.cfg > bad.cfg
}
cp keys/rr.key world.key
chmod 644 world.key
# the keys openssl makes: encrypted, too short, not RSA/Ed25519
if command -v openssl >/dev/null 2>&1; then
	openssl genpkey -algorithm ed25519 -aes-256-cbc -pass pass:x \
		-out enc.key 2>/dev/null
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:768 \
		-out short.key 2>/dev/null
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out ec.key 2>/dev/null
	chmod 600 enc.key short.key ec.key
	bad_keys="enc.key:encrypted short.key:too_short ec.key:type_EC"
else
	echo "note: no openssl command: no encrypted, short or EC key tried"
	bad_keys=""
fi
echo "not a key" > text.key
chmod 600 text.key
for kv in missing.key:No_such_file world.key:readable_by_every_user \
	text.key:not_a_PEM_private_key $bad_keys; do
	k=${kv%%:*}
	why=$(echo "${kv#*:}" | tr _ ' ')
	badcfg "$k"
	fails 1 "send with $k" "$VOLLEY" -c bad.cfg send news long
	has err.txt "$k" "the error names $k"
	has err.txt "$why" "and says why ($why)"
	lacks out.txt "sent" "nothing sent with $k"
done
equals "$(ls sink.md/new | wc -l | tr -d ' ')" 0 "the sink got nothing"
equals "$(count news queued)" 11 "every recipient still queued"

# --- volley send: what the sink stored verifies --------------------------
ok "send news, long, empty, nokey" "$VOLLEY" send news long empty nokey
has err.txt "campaign 'nokey' goes out unsigned: no dkim key is for its" \
	"the unsigned campaign is named before sending"
has err.txt "From domain unsigned.test" "with the domain"
lacks err.txt "campaign 'news' goes out unsigned" "news is signed"
for c in news long empty nokey; do
	equals "$(count "$c" sent)" 11 "$c: all sent"
done
equals "$(ls sink.md/new | wc -l | tr -d ' ')" 44 "the sink has 44 messages"
grep -l "^From: Unsigned <news@unsigned.test>" sink.md/new/* \
	> unsigned.txt
grep -L "^From: Unsigned <news@unsigned.test>" sink.md/new/* > signed.txt
equals "$(wc -l < unsigned.txt | tr -d ' ')" 11 "11 unsigned stored"
# shellcheck disable=SC2046
verified 4 "what volley send delivered" $(cat signed.txt)
# shellcheck disable=SC2046
verified 0 "the unsigned campaign" $(cat unsigned.txt)

# --- send-one signs, and --save is what it sent ---------------------------
printf 'Grüße aus Köln ✓\n%s\n\n\n' "$(printf '%0200d' 0 | tr 0 z)" \
	> one.txt
ok "send-one" "$VOLLEY" send-one --to alice@example.test \
	--from news@example.org --subject "Grüße, a test of send-one" \
	--body-file one.txt --save one.eml
verified 4 "send-one --save" one.eml
newest=$(ls -t sink.md/new/* | head -n 1)
verified 4 "send-one as the sink stored it" "$newest"
ok "send-one from a domain without a key" "$VOLLEY" send-one \
	--to alice@example.test --from x@unsigned.test --save unsigned.eml
verified 0 "send-one unsigned" unsigned.eml

# --- a key volley.cfg names must load for preview and send-one too -------
badcfg world.key
fails 1 "preview with a bad key" "$VOLLEY" -c bad.cfg preview news \
	--out pv-bad
has err.txt "world.key" "preview names the key file"
fails 1 "send-one with a bad key" "$VOLLEY" -c bad.cfg send-one \
	--to alice@example.test --from news@example.org
has err.txt "world.key" "send-one names the key file"

finish
