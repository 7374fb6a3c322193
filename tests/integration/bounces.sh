#!/bin/sh
# bounces.sh - `volley bounces ingest` and `volley bounces list` end to
# end: a campaign with a VERP sender sent to `volley sink`, then DSNs and
# an ARF complaint about chosen recipients, built from what the sink
# stored (each message's MAIL FROM token and Message-ID), read from a
# Maildir, an mbox, an .eml and standard input; matched by VERP, by
# Message-ID, by address, or not at all; a tampered token; soft bounces
# up to bounces.soft_limit; everything once however often it is read;
# the suppressions they made honoured by the next campaign's import;
# exit codes (EX_TEMPFAIL 75 when the store is locked); the corpus of
# tests/bounces/ through the command.
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

# list_row ADDRESS - the CSV rows of `bounces list` (all) for ADDRESS
list_rows() {
	"$VOLLEY" bounces list | grep -F ",$1,"
}

# field N ADDRESS - field N of ADDRESS's first CSV row (no quoted commas
# before it)
field() {
	list_rows "$2" | head -1 | cut -d, -f"$1"
}

openssl rand -hex 32 > verp.secret
chmod 600 verp.secret
cat >> volley.cfg <<'CFG'
verp = { secret_file = "verp.secret"; };
bounces = { soft_limit = 2; soft_window_days = 14; match_days = 30; };
CFG
ok "init" "$VOLLEY" init

mkdir -p t
printf 'subject = "News";\nfrom = "Shop <shop@example.org>";\n' \
	> t/message.cfg
printf 'Hello {{name}}\n' > t/body.txt
ok "campaign with a VERP sender" "$VOLLEY" campaign create c1 \
	--template t --from 'bounces+{{verp}}@b.example.org'
{
	echo "email,name"
	for n in ann bob carl dan eve fay hal ivy lee gone; do
		echo "$n@example.net,$n"
	done
	echo "Kim@Example.net,kim"
} > r.csv
ok "import" "$VOLLEY" import c1 r.csv

printf 'rcpt gone@example.net 550 5.1.1 User unknown\n' > faults.txt
start_sink s --maildir md --log sink.jsonl --faults faults.txt || finish
cat >> volley.cfg <<CFG
smtp = { host = "127.0.0.1"; port = $port; tls = "none"; connections = 2; };
CFG
ok "send" "$VOLLEY" send c1 --quiet
equals "$(count c1 sent) $(count c1 failed)" "10 1" \
	"ten sent, the one the sink refuses failed"

# What the sink stored: each recipient's VERP address and Message-ID.
python3 - sink.jsonl md > sent.txt <<'PY'
import email, json, os, sys
mids = {}
for name in os.listdir(sys.argv[2] + "/new"):
    with open(os.path.join(sys.argv[2], "new", name), "rb") as f:
        m = email.message_from_binary_file(f)
    mids[m["To"].split("<")[-1].rstrip(">").strip().lower()] = \
        m["Message-ID"]
for line in open(sys.argv[1]):
    r = json.loads(line)
    for rc in r["rcpts"]:
        to = rc["to"].lower()
        if to in mids:
            print(to, r["from"], mids[to])
PY
verp() { awk -v a="$1" '$1 == a { print $2 }' sent.txt; }
mid() { awk -v a="$1" '$1 == a { print $3 }' sent.txt; }
equals "$(wc -l < sent.txt)" 10 "the sink has ten messages"

# dsn TO FAILED STATUS CODE TEXT [ORIG-MID [OWN-MID]] - a Postfix-like
# RFC 3464 DSN sent to TO about FAILED (LF line ends)
dsn() {
	own=${7:-"<dsn.$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')@mx.test>"}
	cat <<EOF
Return-Path: <>
Delivered-To: $1
Date: Mon, 7 Dec 2026 10:00:00 +0000
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: $1
Message-ID: $own
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="B0"

--B0
Content-Type: text/plain

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

From the start of a line, in an mbox this is quoted.

--B0
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; $2
Original-Recipient: rfc822;$2
Action: failed
Status: $3
Diagnostic-Code: smtp; $4 $3 $5

--B0
Content-Type: text/rfc822-headers

From: Shop <shop@example.org>
To: $2
Subject: News
${6:+Message-ID: $6}

--B0--
EOF
}

# --- one of each source, each matched its own way ----------------------------
mkdir -p bm/cur bm/new bm/tmp
dsn "$(verp ann@example.net)" ann@example.net 5.1.1 550 "user unknown" \
	> bm/new/1000.a.mx
# an ARF complaint, to eve's VERP address
cat > bm/new/1001.e.mx <<EOF
Delivered-To: $(verp eve@example.net)
From: feedback@fbl.example.net
To: $(verp eve@example.net)
Subject: complaint about message from 192.0.2.1
Message-ID: <arf.1@fbl.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
	boundary="A1"

--A1
Content-Type: text/plain

This is an email abuse report.

--A1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Rcpt-To: <eve@example.net>

--A1
Content-Type: message/rfc822

From: Shop <shop@example.org>
To: eve@example.net
Message-ID: $(mid eve@example.net)
Subject: News

Hello eve
--A1--
EOF
# a file in tmp/ is not delivered yet, a subfolder is no message
dsn "$(verp ivy@example.net)" ivy@example.net 5.1.1 550 "x" \
	> bm/tmp/1002.i.mx
mkdir bm/new/folder

# an mbox (mboxrd): bob by VERP, an unknown address (unmatched)
{
	echo "From MAILER-DAEMON Mon Dec  7 10:00:00 2026"
	dsn "$(verp bob@example.net)" bob@example.net 5.1.1 550 \
		"no such user" | sed 's/^From the start/>From the start/'
	echo
	echo "From MAILER-DAEMON Mon Dec  7 10:00:01 2026"
	dsn bounces@b.example.org stranger@nowhere.example 5.1.1 550 \
		"no such user" | sed 's/^From the start/>From the start/'
	echo
} > bounces.mbox

# an .eml: carl's, sent to no VERP address but quoting his Message-ID
dsn bounces@b.example.org carl@example.net 5.1.1 550 "unknown" \
	"$(mid carl@example.net)" > carl.eml

# hal's token with ann's job id: its MAC is then wrong, so it must not
# match ann (or hal by token): hal is found by his address instead
# tamper ADDR - ADDR's VERP address with ann's job id in its token
tamper() {
	python3 - "$(verp "$1")" "$(verp ann@example.net)" <<'PY'
import sys
own, ann = sys.argv[1], sys.argv[2]
local, dom = own.split("@")
c, j, mac = local.split("+")[1].split("-")
ann_job = ann.split("@")[0].split("+")[1].split("-")[1]
print("bounces+%s-%s-%s@%s" % (c, ann_job, mac, dom))
PY
}
tampered=$(tamper hal@example.net)
dsn "$tampered" hal@example.net 5.1.1 550 "gone" > hal.eml

ok "ingest a Maildir" "$VOLLEY" bounces ingest -v bm
has err.txt "2 messages, 2 bounces (2 new), 0 unmatched, 2 suppressed" \
	"Maildir: the summary"
has out.txt "ann@example.net bad-mailbox (hard), campaign 'c1' job" \
	"Maildir: ann, hard, her campaign"
has out.txt "by verp, new, suppressed (hard-bounce)" \
	"Maildir: matched by VERP, suppressed"
has out.txt "eve@example.net complaint, campaign 'c1'" \
	"Maildir: the complaint"
has out.txt "suppressed (complaint)" "Maildir: a complaint suppresses"
lacks out.txt "ivy" "Maildir: tmp/ is not read"

ok "ingest an mbox" "$VOLLEY" bounces ingest -v bounces.mbox
has err.txt "2 messages, 2 bounces (2 new), 1 unmatched, 1 suppressed" \
	"mbox: the summary (an unknown address is kept, suppresses nothing)"
has out.txt "unmatched, new, not proven ours: suppresses nothing" \
	"mbox: a bounce anyone could write suppresses nobody"
has out.txt "bounces.mbox:1: bob@example.net bad-mailbox (hard), campaign" \
	"mbox: bob by VERP, named with the line of his message"
has out.txt "stranger@nowhere.example bad-mailbox (hard), unmatched, new" \
	"mbox: an unknown address is kept unmatched"
ok "ingest an .eml" "$VOLLEY" bounces ingest -v carl.eml
has out.txt "by message-id, new" "eml: carl by his Message-ID"
ok "the tampered token" "$VOLLEY" bounces ingest -v hal.eml
has out.txt "hal@example.net bad-mailbox (hard), campaign 'c1' job" \
	"tampered: hal is found"
has out.txt "by address" "tampered: by his address, not by the token"
has out.txt "not proven ours: suppresses nothing" \
	"tampered: found by address only, with VERP set: suppresses nothing"

# standard input: dan, by address only (no token, no Message-ID)
dsn bounces@b.example.org DAN@example.net 5.1.1 550 "unknown" \
	> dan.eml
ok "ingest standard input" sh -c "'$VOLLEY' bounces ingest -v - < dan.eml"
has out.txt "DAN@example.net bad-mailbox (hard), campaign 'c1' job" \
	"stdin: dan, whatever the case of his address"
has out.txt "by address" "stdin: matched by address"
has out.txt "not proven ours" "stdin: by address only: suppresses nothing"

# fay's token, the report naming where her mail was forwarded: the
# mailbox volley sent to is the one suppressed
dsn "$(verp fay@example.net)" fay@forward.example 5.1.1 550 "no such user" \
	> fwd.eml
ok "a forwarded address" "$VOLLEY" bounces ingest -v fwd.eml
has out.txt "fay@example.net bad-mailbox (hard), campaign 'c1'" \
	"forwarded: recorded for the job's own address"
has out.txt "reported as fay@forward.example" "forwarded: the report's address said"
ok "suppress list after the forward" "$VOLLEY" suppress list
lacks out.txt "forward.example" "forwarded: the report's address is not suppressed"
has out.txt "fay@example.net,hard-bounce" "forwarded: fay is"
ok "no PATH is standard input" sh -c "'$VOLLEY' bounces ingest < dan.eml"
has err.txt "1 messages, 1 bounces (0 new)" "stdin again: nothing new"

# the campaign, job and class of each, as `bounces list` says
ann_job=$(python3 -c '
import sqlite3
print(sqlite3.connect("test.db").execute(
    "SELECT id FROM jobs WHERE address = ?", ("ann@example.net",)
    ).fetchone()[0])')
hal_job=$(python3 -c '
import sqlite3
print(sqlite3.connect("test.db").execute(
    "SELECT id FROM jobs WHERE address = ?", ("hal@example.net",)
    ).fetchone()[0])')
equals "$(field 7 ann@example.net),$(field 9 ann@example.net)" \
	"c1,$ann_job" "list: ann's campaign and job"
equals "$(field 10 ann@example.net)" "verp" "list: ann by VERP"
equals "$(field 5 ann@example.net),$(field 6 ann@example.net)" \
	"bad-mailbox,1" "list: ann's class, hard"
equals "$(field 9 hal@example.net),$(field 10 hal@example.net)" \
	"$hal_job,address" "list: hal's own job, by address"
equals "$(field 10 carl@example.net)" "message-id" "list: carl by Message-ID"
equals "$(field 3 eve@example.net),$(field 5 eve@example.net)" \
	"complaint,complaint" "list: eve's complaint"
equals "$(list_rows ann@example.net | wc -l)" 1 \
	"the tampered token recorded nothing for ann"
ok "list --unmatched" "$VOLLEY" bounces list --unmatched
has out.txt "stranger@nowhere.example" "--unmatched: the unknown address"
lacks out.txt "ann@example.net" "--unmatched: no matched bounce"
ok "list c1" "$VOLLEY" bounces list c1
lacks out.txt "stranger" "list c1: not the unmatched one"
equals "$(head -1 out.txt | tr -d '\r')" "id,at,kind,address,category,hard,\
campaign,campaign_id,job_id,matched_by,code,enhanced,text,original_id,\
msg_key" "list: the CSV header"
fails 2 "list c1 --unmatched" "$VOLLEY" bounces list c1 --unmatched
fails 1 "list of no campaign" "$VOLLEY" bounces list nosuch

ok "list --format json" "$VOLLEY" bounces list --format json
if python3 - out.txt "$ann_job" > chk.out 2>&1 <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {r["address"].lower(): r for r in rows if r["address"]}
a = by["ann@example.net"]
assert a["campaign"] == "c1" and a["job_id"] == int(sys.argv[2]), a
assert a["kind"] == "bounce" and a["hard"] is True, a
assert a["category"] == "bad-mailbox" and a["matched_by"] == "verp", a
assert a["code"] == 550 and a["enhanced"] == "5.1.1", a
assert by["stranger@nowhere.example"]["campaign"] is None
assert by["stranger@nowhere.example"]["job_id"] is None
assert by["eve@example.net"]["kind"] == "complaint"
# gone@'s 550 at send time, recorded by volley send itself
g = by["gone@example.net"]
assert g["kind"] == "reply" and g["matched_by"] == "reply", g
assert g["category"] == "bad-mailbox" and g["hard"] is True, g
assert len(rows) == 9, len(rows)   # fay's forward too
PY
then checks=$((checks + 1)); else
	checks=$((checks + 1)); failures=$((failures + 1))
	echo "FAIL: list --format json"; sed 's/^/  | /' chk.out
fi

# --- the same messages again: nothing new ------------------------------------
ok "Maildir again" "$VOLLEY" bounces ingest bm
has err.txt "2 bounces (0 new)" "Maildir again: nothing new"
ok "mbox again" "$VOLLEY" bounces ingest bounces.mbox
has err.txt "2 bounces (0 new), 1 unmatched, 0 suppressed" \
	"mbox again: nothing new"
ok "eml again" "$VOLLEY" bounces ingest carl.eml
has err.txt "(0 new)" "eml again: nothing new"
ok "list" "$VOLLEY" bounces list --format json
equals "$(wc -l < out.txt)" 9 "still nine bounces"

# a bounce with no Message-ID, delivered twice along other paths: once
dsn bounces@b.example.org nomid@example.net 4.2.2 552 "mailbox full" |
	grep -v '^Message-ID:' > nomid1.eml
sed 's/^Delivered-To: .*/Delivered-To: other-path@b.example.org/' \
	nomid1.eml | { echo "Received: from relay2.example"; cat; } \
	> nomid2.eml
ok "no Message-ID, first" "$VOLLEY" bounces ingest -v nomid1.eml
has out.txt ", new" "no Message-ID: recorded"
ok "no Message-ID, again by another path" "$VOLLEY" bounces ingest -v \
	nomid2.eml
has out.txt "already recorded" \
	"no Message-ID: the same body by another path is the same bounce"

# a tampered token with lee's own Message-ID quoted: by Message-ID
dsn "$(tamper lee@example.net)" lee@example.net 5.1.1 550 "gone" \
	"$(mid lee@example.net)" > lee.eml
ok "a tampered token, a Message-ID" "$VOLLEY" bounces ingest -v lee.eml
has out.txt "lee@example.net bad-mailbox (hard), campaign 'c1' job" \
	"tampered: lee is found"
has out.txt "by message-id" "tampered: by his Message-ID, not the token"
equals "$(list_rows ann@example.net | wc -l)" 1 \
	"the second tampered token recorded nothing for ann either"

# ann's Message-ID quoted in a bounce about someone else: not ann's
dsn bounces@b.example.org mallory@evil.example 5.1.1 550 "x" \
	"$(mid ann@example.net)" > mallory.eml
ok "a Message-ID of another address" "$VOLLEY" bounces ingest -v mallory.eml
has out.txt "mallory@evil.example bad-mailbox (hard), unmatched" \
	"a Message-ID whose job has another address does not match"
# a volley Message-ID whose job is of another campaign
sed 's/<volley\.[0-9]*\./<volley.99./' carl.eml |
	sed 's/^Message-ID: <dsn\./Message-ID: <dsn.x/' > wrongc.eml
ok "a Message-ID of another campaign" "$VOLLEY" bounces ingest -v wrongc.eml
has out.txt "carl@example.net bad-mailbox (hard), campaign 'c1' job" \
	"another campaign's id: carl is found"
has out.txt "by address" "another campaign's id: by address, not the id"

# --- soft bounces: suppress at the second (soft_limit = 2) -------------------
dsn "$(verp fay@example.net)" fay@example.net 4.2.2 452 "mailbox full" \
	> soft1.eml
ok "a soft bounce" "$VOLLEY" bounces ingest -v soft1.eml
has out.txt "fay@example.net quota-issues (soft)" "soft: fay's class"
lacks out.txt "suppressed" "soft: the first does not suppress"
dsn "$(verp fay@example.net)" fay@example.net 4.2.2 452 "mailbox full" \
	> soft2.eml
ok "a second soft bounce" "$VOLLEY" bounces ingest -v soft2.eml
has out.txt "suppressed (soft-bounce)" "soft: the second suppresses"

# --- not a bounce, a delay, too large ----------------------------------------
printf 'From: a@example.com\nSubject: hello\n\nhi\n' > plain.eml
ok "not a bounce (stdin)" sh -c "'$VOLLEY' bounces ingest - < plain.eml"
has err.txt "not a bounce or complaint, nothing recorded" \
	"stdin: not a bounce is said, exit 0"
has err.txt "1 not bounces" "not a bounce: counted"
dsn "$(verp ivy@example.net)" ivy@example.net 4.4.1 451 "later" |
	sed 's/^Action: failed/Action: delayed/' > delay.eml
ok "a delay" "$VOLLEY" bounces ingest -v delay.eml
has out.txt "no failed recipient" "a delay: nothing recorded"
head -c 11000000 /dev/zero | tr '\0' 'x' > big.eml
ok "a message over 10 MB" sh -c "'$VOLLEY' bounces ingest - < big.eml"
has err.txt "over the 10 MB limit: skipped" "too large: skipped, said"

# --- exit codes ---------------------------------------------------------------
fails 1 "no such path" "$VOLLEY" bounces ingest nosuch
has err.txt "nosuch: No such file or directory" "no such path: named"
mkdir notmd
fails 1 "a folder that is not a Maildir" "$VOLLEY" bounces ingest notmd
has err.txt "not a Maildir" "not a Maildir: said"
fails 2 "two paths" "$VOLLEY" bounces ingest bm carl.eml
fails 2 "no subcommand" "$VOLLEY" bounces
printf 'store = { path = "none/x.db"; };\n' > nostore.cfg
fails 75 "stdin, no store: EX_TEMPFAIL" sh -c \
	"'$VOLLEY' -c nostore.cfg bounces ingest - < dan.eml"
printf 'bounces = { soft_limit = 0; };\n' > badcfg.cfg
fails 75 "stdin, a bad configuration: EX_TEMPFAIL" sh -c \
	"'$VOLLEY' -c badcfg.cfg bounces ingest - < dan.eml"
has err.txt "badcfg.cfg:1: setting 'bounces.soft_limit'" \
	"a bad configuration: named"
sed 's/verp.secret/missing.secret/' volley.cfg > nosecret.cfg
fails 1 "a VERP secret that cannot be read" "$VOLLEY" -c nosecret.cfg \
	bounces ingest carl.eml
has err.txt "missing.secret" "no VERP secret: the file named"
fails 75 "stdin, a VERP secret that cannot be read: EX_TEMPFAIL" sh -c \
	"'$VOLLEY' -c nosecret.cfg bounces ingest - < carl.eml"
# the store's write lock held by another process: try again later
sed 's/path = "test.db";/path = "test.db"; busy_timeout_ms = 200;/' \
	volley.cfg > busy.cfg
python3 - <<'PY' &
import sqlite3, time
db = sqlite3.connect("test.db", isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open("locked", "w").close()
time.sleep(4)
db.execute("ROLLBACK")
PY
lock_pid=$!
pids="$pids $lock_pid"
i=0
while [ ! -e locked ] && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
dsn "$(verp kim@example.net)" Kim@Example.net 5.1.1 550 "unknown" \
	> kim.eml
fails 75 "stdin, the store locked: EX_TEMPFAIL" sh -c \
	"'$VOLLEY' -c busy.cfg bounces ingest - < kim.eml"
has err.txt "nothing lost: run again" "locked: says run again"
wait "$lock_pid"
ok "stdin once the lock is gone" sh -c \
	"'$VOLLEY' -c busy.cfg bounces ingest -v - < kim.eml"
has out.txt "Kim@Example.net bad-mailbox (hard), campaign 'c1'" \
	"after the lock: kim recorded, by VERP"

# --- bounces.suppress_unverified: a bounce matched by address suppresses ----
sed 's/bounces = { /bounces = { suppress_unverified = true; /' volley.cfg \
	> trust.cfg
for a in dan hal; do
	dsn bounces@b.example.org $a@example.net 5.1.1 550 "unknown again" \
		> trust-$a.eml
	ok "trusted: $a" "$VOLLEY" -c trust.cfg bounces ingest -v trust-$a.eml
	has out.txt "by address, new, suppressed (hard-bounce)" \
		"suppress_unverified: $a, by address, is suppressed"
done

# --- the next campaign: the suppressed are stored suppressed, not sent -------
ok "a second campaign" "$VOLLEY" campaign create c2 --template t \
	--from 'bounces+{{verp}}@b.example.org'
ok "import into it" "$VOLLEY" import c2 r.csv
ok "report c2" "$VOLLEY" report c2 --state suppressed
for a in ann bob carl dan eve fay hal lee; do
	has out.txt "$a@example.net,suppressed" "c2: $a is suppressed"
done
has out.txt "Kim@Example.net,suppressed" "c2: Kim is suppressed"
# nine by the bounces read, gone@ by its 550 at send time
equals "$(count c2 suppressed)" 10 "c2: status --json counts ten suppressed"
lacks out.txt "ivy@" "c2: ivy (delayed only) is not suppressed"
lacks out.txt "stranger" "c2: the unmatched one is not of c2"
: > sink.jsonl
ok "send c2" "$VOLLEY" send c2 --quiet
for a in ann bob carl dan eve fay hal lee; do
	lacks sink.jsonl "\"$a@example.net\"" "c2: $a is not sent"
done
has sink.jsonl '"ivy@example.net"' "c2: ivy is sent"

# --- bounces.rules_file replaces the rules built in ---------------------------
printf 'policy-related status 5.*\n' > my.rules
sed 's/bounces = { /bounces = { rules_file = "my.rules"; /' volley.cfg \
	> rules.cfg
dsn bounces@b.example.org zed@nowhere.example 5.1.1 550 "unknown" \
	> zed.eml
ok "ingest with a rules file" "$VOLLEY" -c rules.cfg bounces ingest -v \
	zed.eml
has out.txt "zed@nowhere.example policy-related (soft)" \
	"rules_file: its rules classify"
printf 'policy-related status 5.*\nno-such-category code 5*\n' > bad.rules
sed 's/my.rules/bad.rules/' rules.cfg > badrules.cfg
fails 1 "a rules file with an error" "$VOLLEY" -c badrules.cfg bounces \
	ingest zed.eml
has err.txt "bounces.rules_file: " "a bad rules file: the setting named"
has err.txt "bad.rules:2:" "a bad rules file: its file and line"
fails 1 "send with a bad rules file" "$VOLLEY" -c badrules.cfg send c2
has err.txt "bad.rules:2:" "send uses bounces.rules_file too"

# --- the corpus of tests/bounces/ through the command -------------------------
mkdir -p corpus/cur corpus/new corpus/tmp
n=0
for f in "$src"/tests/bounces/*.eml; do
	n=$((n + 1))
	cp "$f" "corpus/new/$(printf '%04d' $n).$(basename "$f")"
done
ok "ingest the corpus" "$VOLLEY" bounces ingest -v corpus
has err.txt "$n messages," "corpus: every file read"
# not bounces: the files expected.txt says have no report (auto-replies,
# notices), and those whose every recipient was only delayed
nb=$(awk '!/^#/ && NF { kind[$1] = $2; if ($4 != "delayed") real[$1] = 1 }
	END { for (f in kind) if (kind[f] == "NONE" || !(f in real)) n++;
	      print n + 0 }' "$src/tests/bounces/expected.txt")
has err.txt "$nb not bounces" "corpus: auto-replies, notices and delays are not bounces"
has out.txt "autoreply.eml: not a bounce" "corpus: named"
has out.txt "nobody.here@example.net bad-mailbox (hard)" "corpus: Postfix"
has out.txt "reader.one@yahoo.com complaint" "corpus: an ARF"
has out.txt "d.fourth@example.com message-expired (soft)" \
	"corpus: a multi-recipient DSN"
lacks out.txt "c.third@" "corpus: the delayed recipient is not recorded"
ok "the corpus again" "$VOLLEY" bounces ingest corpus
has err.txt "(0 new)" "corpus again: nothing new"

finish
