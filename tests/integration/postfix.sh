#!/bin/sh
# postfix.sh - `volley send-one` against a real Postfix on loopback, with
# STARTTLS, SASL AUTH (Dovecot) and delivery to Maildirs (see
# postfix_env.sh): the delivered bytes must be the bytes volley meant to
# send, per-recipient results must be what Postfix said, and TLS and AUTH
# failures must stop the message, without ever printing the password;
# and `volley loadtest` against the same relay (STARTTLS and implicit TLS,
# AUTH, CHUNKING, open loop): every message it counts as sent is in the
# Maildir, Postfix's refusals are counted by code; and a DKIM-signed
# campaign (volley send) and send-one, whose signatures must verify as
# Postfix delivered them (python3-dkim; libopendkim when built).
# Needs root and the Debian packages postfix, dovecot-core and openssl
# (scripts/install-deps --tests); exits 77 (CTest: skipped) without them,
# except under CI=true, where that is a failure.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/postfix_env.sh"

# CI must run it: there a missing piece is a failure, not a skip.
skip=77
[ "${CI:-}" = true ] && skip=1
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the private Postfix and Dovecot need root"; exit $skip
fi
PATH=$PATH:/usr/sbin:/sbin
for cmd in postfix dovecot openssl; do
	command -v "$cmd" >/dev/null 2>&1 ||
		{ echo "SKIP: no $cmd (run scripts/install-deps --tests)"; exit $skip; }
done

# The servers are stopped and every temp folder removed however the test
# ends.
trap 'postfix_env_stop; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
postfix_env_start || exit 1
VOLLEY_TEST_PW=$POSTFIX_PASSWORD
export VOLLEY_TEST_PW
MD=$POSTFIX_MAILDIR_ROOT
FROM=sender@client.example.test

# cfg FILE [SETTING...] - an smtp group for the test server with STARTTLS,
# verification with the test CA and AUTH as alice; each SETTING
# ("name = value;") replaces the line for that name, or is added;
# "name = -;" removes it
cfg() {
	f=$1; shift
	cat > "$f" <<EOF
smtp = {
  host = "127.0.0.1";
  port = $POSTFIX_PORT;
  tls = "starttls";
  tls_verify = true;
  ca_file = "$POSTFIX_CA";
  tls_name = "localhost";
  username = "$POSTFIX_USER";
  password_env = "VOLLEY_TEST_PW";
  allow_plaintext_auth = false;
  helo_name = "client.example.test";
  timeouts = { connect = 5; command = 10; data_end = 20; };
};
EOF
	for s in "$@"; do
		name=${s%% *}
		grep -v "^  $name = " "$f" | sed '$d' > "$f.new"
		case $s in *"= -;") ;; *) printf '  %s\n' "$s" >> "$f.new";; esac
		echo "};" >> "$f.new"
		mv "$f.new" "$f"
	done
}

# matches FILE ERE DESCRIPTION - FILE must match the extended regexp
# (case-insensitive)
matches() {
	checks=$((checks + 1))
	if grep -Eiq -- "$2" "$1"; then
		return 0
	fi
	echo "FAIL: $3: /$2/ not in $1:"; sed 's/^/  | /' "$1"
	failures=$((failures + 1))
	return 1
}

# queue_id - the Postfix queue id in out.txt's "queued as ID"
queue_id() {
	sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p' out.txt | head -n 1
}

# delivered USER QUEUEID - print the Maildir file of USER whose
# Received: header names QUEUEID, waiting up to 10 s for the delivery
delivered() {
	i=0
	while [ $i -lt 200 ]; do
		file=$(grep -lF " id $2" "$MD/$1/Maildir/new/"* 2>/dev/null |
			head -n 1)
		[ -n "$file" ] && { echo "$file"; return 0; }
		sleep 0.05; i=$((i + 1))
	done
	return 1
}

# settle - wait (up to 10 s) until Postfix's queue is empty, so that a
# count of Maildir files is final
settle() {
	i=0
	while [ $i -lt 200 ]; do
		[ -z "$(find "$POSTFIX_ENV_DIR/queue/incoming" \
			"$POSTFIX_ENV_DIR/queue/active" \
			"$POSTFIX_ENV_DIR/queue/deferred" -type f 2>/dev/null)" ] &&
			return 0
		sleep 0.05; i=$((i + 1))
	done
	echo "FAIL: Postfix's queue is not empty after 10 s"
	failures=$((failures + 1))
}

# mails USER - how many messages USER has
mails() {
	find "$MD/$1/Maildir/new" -type f | wc -l | tr -d ' '
}

# same_message SAVED USER DESCRIPTION - the message USER got (queue id
# in out.txt) is SAVED, once Postfix's own header lines at the top
# (Return-Path, X-Original-To, Delivered-To, Received) are taken off and
# CRLF is read as LF, byte for byte
same_message() {
	checks=$((checks + 1))
	qid=$(queue_id)
	if [ -z "$qid" ]; then
		echo "FAIL: $3: no 'queued as' in volley's output:"
		sed 's/^/  | /' out.txt; failures=$((failures + 1)); return 1
	fi
	if ! file=$(delivered "$2" "$qid"); then
		echo "FAIL: $3: message $qid not in $2's Maildir after 10 s"
		failures=$((failures + 1)); return 1
	fi
	cp "$file" "$2.delivered"
	LC_ALL=C awk '
		top && /^(Return-Path|X-Original-To|Delivered-To|Received):/ {
			ours = 1; next }
		top && ours && /^[ \t]/ { next }
		{ top = 0; print }' top=1 "$file" > "$2.got"
	LC_ALL=C sed 's/\r$//' "$1" > "$2.want"
	if ! cmp -s "$2.got" "$2.want"; then
		echo "FAIL: $3: delivered message differs from --save:"
		diff -u "$2.want" "$2.got" | head -n 40 | cut -c1-200 |
			sed "s/^/  /"
		failures=$((failures + 1)); return 1
	fi
	return 0
}

# no_secret FILE... - neither the password nor any base64 form of the
# credentials appears in the files
no_secret() {
	for f in "$@"; do
		for secret in "$POSTFIX_PASSWORD" \
			"$(printf '\0%s\0%s' "$POSTFIX_USER" "$POSTFIX_PASSWORD" |
				base64 -w0)" \
			"$(printf '%s' "$POSTFIX_PASSWORD" | base64 -w0)" \
			"$(printf '%s\0%s\0%s' "$POSTFIX_USER" "$POSTFIX_USER" \
				"$POSTFIX_PASSWORD" | base64 -w0)"; do
			lacks "$f" "$secret" "no credentials in $f"
		done
	done
}

# --- message bodies ----------------------------------------------------
# ASCII with short lines goes 7bit, so the dot lines reach the wire as
# they are (and must be dot-stuffed); 998 bytes is the longest line 7bit
# allows.  UTF-8 and longer lines go quoted-printable.
l998=$(printf '%0998d' 0 | tr 0 x)
l2000=$(printf '%02000d' 0 | tr 0 y)
printf '%s\n' "Hello Alice," "" "." ".leading dot" "..two dots" "..." \
	". dot space" "$l998" "" "-- " "the end" > ascii.txt
printf '%s\n' "Grüße aus Köln, 日本語, ✓ 🎉" "." "..two dots" \
	"$l2000" "=3D not an escape, = at the end =" "the end" > utf8.txt

# --- STARTTLS + AUTH, delivered bytes = --save bytes (CHUNKING port) -----
cfg good.cfg
ok "send STARTTLS+AUTH to alice" "$VOLLEY" -c good.cfg send-one \
	--to alice@example.test --from "$FROM" --subject "ASCII dots" \
	--body-file ascii.txt --save ascii.eml
has out.txt "alice@example.test: sent 250" "alice's line says sent 250"
no_secret out.txt err.txt
checks=$((checks + 1))
if [ ! -s ascii.eml ] || LC_ALL=C grep -qv "$(printf '\r')\$" ascii.eml
then
	echo "FAIL: --save wrote no file, or lines without CRLF"
	failures=$((failures + 1))
fi
if same_message ascii.eml alice "delivered bytes equal --save"; then
	has alice.delivered "Return-Path: <$FROM>" "envelope sender is --from"
	has alice.delivered "Delivered-To: alice@example.test" "delivered to alice"
	has alice.delivered "with ESMTPSA id" "Postfix saw TLS and AUTH"
	has alice.got "$l998" "the 998-byte line arrived in one piece"
	has alice.got "..two dots" "dot lines arrived unstuffed"
fi
ok "UTF-8 subject and body" "$VOLLEY" -c good.cfg send-one \
	--to alice@example.test --from "$FROM" --subject "Grüße ✓ test" \
	--body-file utf8.txt --save utf8.eml
same_message utf8.eml alice "UTF-8: delivered bytes equal --save"

# --- one unknown recipient: refused at RCPT, the other one delivered ---
fails 1 "one recipient unknown" "$VOLLEY" -c good.cfg send-one \
	--to bob@example.test --to other@example.test --from "$FROM" \
	--subject "two recipients" --body-file ascii.txt --save two.eml
has out.txt "other@example.test: refused 550 5.1.1" "unknown user refused"
has out.txt "bob@example.test: sent 250" "bob's line says sent"
same_message two.eml bob "bob got the message"

# --- a deferred recipient ----------------------------------------------
fails 1 "deferred recipient" "$VOLLEY" -c good.cfg send-one \
	--to defer@example.test --to carol@example.test --from "$FROM" \
	--subject "deferred" --body-file ascii.txt --save defer.eml
has out.txt "defer@example.test: deferred 451 4.3.0" "451 reported as deferred"
has out.txt "carol@example.test: sent 250" "carol's line says sent"
same_message defer.eml carol "carol got the message"

# --- a relay that takes two recipients per transaction -----------------
# Postfix says "452 4.5.3 Error: too many recipients" to the third: the
# rest go in a second transaction on the same connection, and every
# recipient gets one copy.
cfg limit.cfg "port = $POSTFIX_LIMIT_PORT;"
before_a=$(mails alice); before_b=$(mails bob); before_c=$(mails carol)
ok "452 too many: split" "$VOLLEY" -c limit.cfg send-one -v \
	--to alice@example.test --to bob@example.test --to carol@example.test \
	--from "$FROM" --subject "split" --body-file ascii.txt
for u in alice bob carol; do
	has out.txt "$u@example.test: sent 250" "$u sent in a split message"
done
matches err.txt "452 4.5.3.*too many recipients" "Postfix said too many"
[ "$(grep -c '^C: MAIL FROM' err.txt)" = 2 ] ||
	{ echo "FAIL: not two transactions:"; sed 's/^/  | /' err.txt
	  failures=$((failures + 1)); }
checks=$((checks + 1))
fails 1 "split, one unknown" "$VOLLEY" -c limit.cfg send-one \
	--to alice@example.test --to bob@example.test \
	--to other@example.test --to carol@example.test \
	--from "$FROM" --subject "split 2" --body-file ascii.txt
has out.txt "other@example.test: refused 550 5.1.1" "split: unknown refused"
for u in alice bob carol; do
	has out.txt "$u@example.test: sent 250" "split 2: $u sent"
done
settle
checks=$((checks + 1))
if [ "$(mails alice)" != $((before_a + 2)) ] ||
   [ "$(mails bob)" != $((before_b + 2)) ] ||
   [ "$(mails carol)" != $((before_c + 2)) ]; then
	echo "FAIL: split messages: alice $before_a -> $(mails alice)," \
	     "bob $before_b -> $(mails bob), carol $before_c -> $(mails carol)" \
	     "(wanted two more each)"
	failures=$((failures + 1))
fi

# --- implicit TLS (like port 465), DATA: dot-stuffing on the wire -------
cfg implicit.cfg "port = $POSTFIX_SMTPS_PORT;" 'tls = "implicit";'
ok "implicit TLS, ASCII dots" "$VOLLEY" -c implicit.cfg send-one \
	--to carol@example.test --from "$FROM" --subject "implicit" \
	--body-file ascii.txt --save implicit.eml
has out.txt "carol@example.test: sent 250" "implicit TLS: sent"
same_message implicit.eml carol "implicit TLS, DATA: delivered bytes equal"
ok "implicit TLS, UTF-8" "$VOLLEY" -c implicit.cfg send-one \
	--to carol@example.test --from "$FROM" --subject "Grüße ✓ DATA" \
	--body-file utf8.txt --save implicit8.eml
same_message implicit8.eml carol "DATA, UTF-8: delivered bytes equal"

# --- --eml: a whole message of our own, 8bit, sent as it is -------------
if "$VOLLEY" send-one --help 2>&1 | grep -q -- "--eml"; then
	{
		printf 'From: <%s>\r\nTo: <bob@example.test>\r\n' "$FROM"
		printf 'Subject: eml\r\nDate: Sun, 1 Mar 2026 10:00:00 +0000\r\n'
		printf 'Message-ID: <eml.1@client.example.test>\r\n'
		printf 'MIME-Version: 1.0\r\n'
		printf 'Content-Type: text/plain; charset=utf-8\r\n'
		printf 'Content-Transfer-Encoding: 8bit\r\n\r\n'
		printf '.\r\n..\r\n.x\r\nGrüße ✓\r\n%s\r\n' "$l998"
	} > own.eml
	for c in good.cfg implicit.cfg; do
		ok "--eml through $c" "$VOLLEY" -c "$c" send-one \
			--to bob@example.test --from "$FROM" --eml own.eml
		same_message own.eml bob "--eml through $c: bytes equal"
	done
fi

settle
alice_before=$(mails alice)

# --- wrong password: 535, nothing sent, no password printed --------------
bad="wrong-$POSTFIX_PASSWORD-x"
fails 1 "wrong password" env VOLLEY_TEST_PW="$bad" \
	"$VOLLEY" -c good.cfg send-one --to alice@example.test \
	--from "$FROM" --subject "bad pw" --body-file ascii.txt
has err.txt "535" "the 535 reply is shown"
has err.txt "authentication failed" "with Postfix's text"
cat out.txt err.txt > both.txt
fails 1 "wrong password, -v" env VOLLEY_TEST_PW="$bad" \
	"$VOLLEY" -c good.cfg send-one -v --to alice@example.test \
	--from "$FROM" --subject "bad pw" --body-file ascii.txt
has err.txt "S: 535 5.7.8" "-v shows the 535 reply"
lacks err.txt "C: MAIL" "no MAIL after a failed AUTH"
cat out.txt err.txt >> both.txt
for secret in "$bad" "$(printf '%s' "$bad" | base64 -w0)" \
	"$(printf '\0%s\0%s' "$POSTFIX_USER" "$bad" | base64 -w0)"; do
	lacks both.txt "$secret" "the wrong password is not shown, in any form"
done
no_secret both.txt

# --- tls = "none" with a username: credentials never sent in clear -------
cfg plain.cfg 'tls = "none";'
fails 1 "AUTH without TLS is refused" "$VOLLEY" -c plain.cfg send-one -v \
	--to alice@example.test --from "$FROM" --subject "plain" \
	--body-file ascii.txt
lacks err.txt "C: AUTH" "no AUTH command sent without TLS"
lacks err.txt "C: DATA" "no DATA without AUTH"
checks=$((checks + 1))
[ -s err.txt ] || { echo "FAIL: no reason on stderr for tls=none+AUTH";
	failures=$((failures + 1)); }
no_secret out.txt err.txt

# --- a CA that did not sign the server's certificate ---------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout other-ca.key -out other-ca.pem -days 2 \
	-subj "/CN=some other CA" >/dev/null 2>&1
cfg wrongca.cfg "ca_file = \"$work/other-ca.pem\";"
fails 1 "wrong CA" "$VOLLEY" -c wrongca.cfg send-one \
	--to alice@example.test --from "$FROM" --subject "wrong CA" \
	--body-file ascii.txt
cat out.txt err.txt > both.txt
has both.txt "certificate verify failed" "wrong CA: verify failed"
no_secret both.txt

# --- a tls_name the certificate does not have ----------------------------
cfg wrongname.cfg 'tls_name = "wrong.example";'
fails 1 "wrong tls_name" "$VOLLEY" -c wrongname.cfg send-one \
	--to alice@example.test --from "$FROM" --subject "wrong name" \
	--body-file ascii.txt
cat out.txt err.txt > both.txt
matches both.txt "host ?-?name mismatch" "wrong tls_name: host-name mismatch"
no_secret both.txt

settle
equals "$(mails alice)" "$alice_before" "the failed sends delivered nothing"

# --- -v shows the conversation, never the credentials --------------------
ok "send with -v" "$VOLLEY" -c good.cfg send-one -v \
	--to alice@example.test --from "$FROM" --subject "verbose" \
	--body-file ascii.txt --save verbose.eml
has err.txt "S: 220" "-v shows the greeting"
has err.txt "C: STARTTLS" "-v shows STARTTLS"
has err.txt "C: AUTH" "-v shows that AUTH was sent"
has err.txt "S: 235" "-v shows AUTH's success"
lacks err.txt "#: " "-v alone shows no state changes"
no_secret out.txt err.txt
same_message verbose.eml alice "-v: delivered bytes equal"
ok "send with -vv" "$VOLLEY" -c good.cfg send-one -vv \
	--to alice@example.test --from "$FROM" --subject "very verbose" \
	--body-file ascii.txt
for step in "GREETING -> EHLO" "EHLO -> STARTTLS" "STARTTLS -> HANDSHAKE" \
	"HANDSHAKE -> EHLO" "EHLO -> AUTH" "AUTH -> READY" "READY -> QUIT" \
	"QUIT -> CLOSED"; do
	has err.txt "#: $step" "-vv traces the session's state: $step"
done
no_secret out.txt err.txt
settle
equals "$(mails alice)" "$((alice_before + 2))" "alice has two more messages"

# --- volley loadtest against the real relay ------------------------------
# carol's Maildir is only for the load test: every message sent must land.
LT="$VOLLEY loadtest --server 127.0.0.1:$POSTFIX_PORT --tls starttls
	--ca-file $POSTFIX_CA --tls-name localhost --auth $POSTFIX_USER
	--password-env VOLLEY_TEST_PW --from $FROM --quiet"
carol_before=$(mails carol)
ok "loadtest, STARTTLS + AUTH, 4 connections" $LT --connections 4 \
	--count 200 --size 2k:70,64k:30 \
	--to carol@example.test --json lt.json
no_secret out.txt err.txt lt.json
python3 - lt.json > lt.txt <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("sent", j["messages"]["sent"], "refused", j["messages"]["refused"],
      "lost", j["messages"]["lost"], "opened", j["connections_opened"],
      "errors", sum(j["errors"].values()),
      "tls", j["phases"]["tls"]["count"], "auth", j["phases"]["auth"]["count"])
PY
has lt.txt "sent 200 refused 0 lost 0 opened 4 errors 0 tls 4 auth 4" \
	"all 200 sent on 4 connections, each with TLS and AUTH timed"
settle
equals "$(mails carol)" "$((carol_before + 200))" \
	"carol's Maildir has every message the load test sent"

ok "loadtest, CHUNKING" $LT --connections 2 --count 40 --chunking on \
	--to carol@example.test --json lt-bdat.json
python3 -c 'import json, sys; j = json.load(open(sys.argv[1]))
print("chunking", j["chunking"], "sent", j["messages"]["sent"])' \
	lt-bdat.json > lt.txt
has lt.txt "chunking True sent 40" "BDAT taken by Postfix"
settle
equals "$(mails carol)" "$((carol_before + 240))" "the BDAT messages landed"

ok "loadtest, Postfix's refusals" $LT --connections 2 --count 30 \
	--recipients 2 --to '{n}other@example.test' --json lt-550.json
python3 -c 'import json, sys; j = json.load(open(sys.argv[1]))
print("replies", j["replies"], "rcpt", j["rcpt_replies"])' \
	lt-550.json > lt.txt
has lt.txt "replies {'550': 30} rcpt {'550': 60}" \
	"every unknown recipient counted by Postfix's code"

ok "loadtest, implicit TLS, open loop" "$VOLLEY" loadtest \
	--server "127.0.0.1:$POSTFIX_SMTPS_PORT" --tls implicit \
	--ca-file "$POSTFIX_CA" --tls-name localhost --auth "$POSTFIX_USER" \
	--password-env VOLLEY_TEST_PW --from "$FROM" --to carol@example.test \
	--connections 2 --rate 100 --count 50 --quiet --json lt-smtps.json
python3 -c 'import json, sys; j = json.load(open(sys.argv[1]))
print("mode", j["mode"], "sent", j["messages"]["sent"],
      "lag", j["phases"]["start_lag"]["count"])' lt-smtps.json > lt.txt
has lt.txt "mode open sent 50 lag 50" "implicit TLS, open loop, all sent"
settle
equals "$(mails carol)" "$((carol_before + 290))" "and they landed"

fails 1 "loadtest, a wrong password gives up" env VOLLEY_TEST_PW=wrong $LT \
	--count 5 --to carol@example.test
has err.txt "535" "Postfix's refusal, said"

# --- DKIM: signed messages as Postfix delivered them --------------------
# A campaign signed by two keys of example.test (RSA relaxed/relaxed,
# Ed25519 simple/simple), sent with `volley send` (STARTTLS, AUTH,
# CHUNKING), and a send-one over implicit TLS (DATA, dot-stuffing): the
# files in the Maildirs, with Postfix's Return-Path, Delivered-To and
# Received on top, must verify with python3-dkim (and libopendkim when
# the build has it, VOLLEY_OPENDKIM_VERIFY).  Without a python3 that
# imports dkim this step is skipped (a failure under CI=true).
DKIM_PY=
for p in ${VOLLEY_DKIM_PYTHON:-} /usr/bin/python3 python3; do
	if "$p" -c 'import dkim' 2>/dev/null; then
		DKIM_PY=$p
		break
	fi
done

# dkim_verified N DESCRIPTION FILE... - every signature verifies, N each
dkim_verified() {
	n=$1; desc=$2; shift 2
	checks=$((checks + 1))
	if ! "$DKIM_PY" "$here/../dkim/verify.py" --records dk-rec \
		--expect "$n" "$@" > verify.txt 2>&1; then
		echo "FAIL: $desc (python3-dkim):"; sed 's/^/  | /' verify.txt
		failures=$((failures + 1))
	fi
	[ -n "${VOLLEY_OPENDKIM_VERIFY:-}" ] || return 0
	checks=$((checks + 1))
	if ! ASAN_OPTIONS=detect_leaks=0 "$VOLLEY_OPENDKIM_VERIFY" \
		--records dk-rec --expect "$n" "$@" > verify.txt 2>&1; then
		echo "FAIL: $desc (libopendkim):"; sed 's/^/  | /' verify.txt
		failures=$((failures + 1))
	fi
}

# dkim_cfg FILE [SETTING...] - cfg's smtp group, a store, two keys
dkim_cfg() {
	cfg "$@"
	cat >> "$1" <<EOF
store = { path = "dkim.db"; };
dkim = (
  { domain = "example.test"; selector = "pr"; key_file = "dk-pr.key"; },
  { domain = "example.test"; selector = "pe"; key_file = "dk-pe.key";
    canonicalization = "simple/simple"; }
);
EOF
}

if [ -z "$DKIM_PY" ]; then
	echo "SKIP (DKIM step): no python3 that imports dkim (apt-get" \
	     "install python3-dkim, or scripts/install-deps --tests)"
	[ "${CI:-}" = true ] && failures=$((failures + 1))
else
	mkdir -p dk-rec
	ok "dkim keygen, RSA" "$VOLLEY" dkim keygen --domain example.test \
		--selector pr --out dk-pr.key &&
		cp out.txt dk-rec/pr._domainkey.example.test
	ok "dkim keygen, Ed25519" "$VOLLEY" dkim keygen --domain \
		example.test --selector pe --algorithm ed25519 \
		--out dk-pe.key && cp out.txt dk-rec/pe._domainkey.example.test
	dkim_cfg dkim.cfg
	dkim_cfg dkim-implicit.cfg "port = $POSTFIX_SMTPS_PORT;" \
		'tls = "implicit";'
	cp -r "$here/../../examples/newsletter" dk-news
	sed -i -e 's/spring-news/dkim-through-postfix/' -e \
		's/^from = .*/from = "News <news@client.example.test>";/' \
		dk-news/message.cfg
	printf '%s\n' "email,first_name,last_name,city,plan" \
		"alice@example.test,Alice,A,Köln,pro" \
		"bob@example.test,Bob,B,Zürich,free" > dk.csv
	ok "dkim: init" "$VOLLEY" -c dkim.cfg init
	ok "dkim: campaign" "$VOLLEY" -c dkim.cfg campaign create dk \
		--template dk-news --from "$FROM"
	ok "dkim: import" "$VOLLEY" -c dkim.cfg import dk dk.csv
	ok "dkim: preview" "$VOLLEY" -c dkim.cfg preview dk --out dk-pv
	dkim_verified 2 "dkim: preview" dk-pv/*.eml
	ok "dkim: volley send through Postfix" "$VOLLEY" -c dkim.cfg send dk
	lacks err.txt "unsigned" "dkim: the campaign is signed"
	no_secret out.txt err.txt
	settle
	got=$(grep -l "^X-Campaign: dkim-through-postfix" \
		"$MD"/alice/Maildir/new/* "$MD"/bob/Maildir/new/* 2>/dev/null)
	equals "$(echo "$got" | grep -c .)" 2 "dkim: alice and bob got it"
	for f in $got; do
		has "$f" "Delivered-To: " "dkim: Postfix's lines on top"
		has "$f" "Received: from client.example.test" \
			"dkim: with its Received"
	done
	# shellcheck disable=SC2086
	dkim_verified 2 "dkim: the campaign as Postfix delivered it" $got
	ok "dkim: send-one, implicit TLS, DATA" "$VOLLEY" -c \
		dkim-implicit.cfg send-one --to bob@example.test \
		--from "$FROM" --subject "DKIM, dots, DATA ✓" \
		--body-file ascii.txt --save dkim-one.eml
	dkim_verified 2 "dkim: send-one --save" dkim-one.eml
	if same_message dkim-one.eml bob "dkim: delivered bytes equal --save"
	then
		dkim_verified 2 "dkim: send-one as Postfix delivered it" \
			bob.delivered
	fi
fi

# Secrets never reach the server's log either (e.g. in a command echo).
no_secret "$POSTFIX_LOG"

if [ "$failures" -ne 0 ]; then
	postfix_env_logs
fi
finish
