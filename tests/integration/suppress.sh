#!/bin/sh
# suppress.sh - the suppression list end to end against `volley sink`:
# `volley suppress add|remove|list|import|export`, campaigns on lists
# (`campaign create --list`, `--transactional`), suppressed recipients
# stored as such at import and never sent, the report's reason, `status
# --json`'s key, and a 550 5.1.1 at send time turned into a suppression
# that stops the next campaign.
. "$(dirname "$0")/lib.sh"

pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

# json_key CAMPAIGN KEY - a key of the campaign in `status --json`
json_key() {
	"$VOLLEY" status --json | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["name"] == sys.argv[1]:
        print(c[sys.argv[2]])' "$1" "$2"
}

# sent_to - every recipient the sink took, sorted, one line
sent_to() {
	python3 - sink.jsonl <<'PY'
import json, sys
got = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("code") == 250:
        got += [x["to"] for x in r["rcpts"] if x["code"] == 250]
print(" ".join(sorted(got)))
PY
}

ok "init" "$VOLLEY" init
mkdir t
printf 'subject = "Hi";\nfrom = "Shop <shop@example.org>";\n' > t/message.cfg
printf 'Hello {{name}}\n' > t/body.txt

# --- the list by hand -----------------------------------------------------
ok "add, every list" "$VOLLEY" suppress add Gone@Example.org @blocked.test
has out.txt "2 added to the suppression list (manual, global)" "add says"
ok "add to one list" "$VOLLEY" suppress add left@example.org \
	--reason unsubscribed --list news
has err.txt "no campaign is on the list 'news' yet" \
	"a list no campaign uses yet is pointed out"
ok "add again" "$VOLLEY" suppress add gone@EXAMPLE.org
has out.txt "0 added" "the same address ignoring case is not added twice"
fails 1 "not an address" "$VOLLEY" suppress add 'x@y@' nobody
has err.txt "x@y@" "a bad address is named"
fails 1 "an injected line" "$VOLLEY" suppress add "$(printf 'a@b.org\r\nBcc: c@d.org')"
fails 2 "a bad reason" "$VOLLEY" suppress add a@b.org --reason bored
fails 2 "remove with nothing" "$VOLLEY" suppress remove
ok "list" "$VOLLEY" suppress list
equals "$(head -n 1 out.txt)" "$(printf 'email,reason,list,time,source,campaign,job\r')" \
	"CSV header"
equals "$(grep -c . out.txt)" 4 "three entries and the header"
ok "list one list, as JSON" "$VOLLEY" suppress list --list news --format json
cp out.txt news.jsonl
ok "JSON Lines" python3 -c '
import json, sys
rows = [json.loads(l) for l in open("news.jsonl")]
assert len(rows) == 1, rows
r = rows[0]
assert r["email"] == "left@example.org" and r["reason"] == "unsubscribed"
assert r["list"] == "news" and r["time"].endswith("Z"), r'
ok "export" "$VOLLEY" suppress export
cp out.txt export.csv

# import: the same columns; a file with a bad row adds nothing
printf 'email,reason,list,time\r\n' > in.csv
printf 'ann@example.org,unsubscribed,news,2026-01-02T03:04:05Z\r\n' >> in.csv
printf 'bob@example.org,hard-bounce,,\r\n' >> in.csv
printf 'ann@example.org,unsubscribed,news,\r\n' >> in.csv
printf 'email,reason\nok@example.org,manual\nbad-address,manual\n' > bad1.csv
printf 'carl@example.org,bored\n"unterminated,manual\n' >> bad1.csv
fails 1 "import with bad rows" "$VOLLEY" suppress import bad1.csv
has err.txt "bad1.csv:3: not an address" "a bad address is named by line"
has err.txt "bad1.csv:4: reason must be" "a bad reason is named by line"
has err.txt "nothing added" "nothing is added"
ok "list after the failed import" "$VOLLEY" suppress list
lacks out.txt "ok@example.org" "the good row of a bad file was not added"
printf 'name,reason\nx@y.org,manual\n' > bad2.csv
fails 1 "import without an email column" "$VOLLEY" suppress import bad2.csv
has err.txt "bad2.csv:1: no 'email' column" "the header is checked"
ok "import" "$VOLLEY" suppress import in.csv
has out.txt "3 entries read from in.csv, 2 added (1 on the list already)" \
	"import counts"
ok "list with the import's time" "$VOLLEY" suppress list --reason unsubscribed
has out.txt "ann@example.org,unsubscribed,news,2026-01-02T03:04:05.000Z,csv in.csv:2" \
	"time and source kept"

# an export imports into another store unchanged
mkdir other && cp volley.cfg other/
ok "init the other store" sh -c 'cd other && "$1" init' sh "$VOLLEY"
ok "export" "$VOLLEY" suppress export
cp out.txt all.csv
ok "import the export" sh -c 'cd other && "$1" suppress import ../all.csv' \
	sh "$VOLLEY"
ok "export the other" sh -c 'cd other && "$1" suppress export' sh "$VOLLEY"
cp out.txt all2.csv
ok "round trip" cmp all2.csv all.csv

# --reason and --list are the defaults of import's empty columns
printf 'email,reason,list\nimp1@example.org,,\nimp2@example.org,manual,promo\n' > d.csv
ok "import with defaults" "$VOLLEY" suppress import d.csv --list news \
	--reason unsubscribed
ok "list news" "$VOLLEY" suppress list --list news
has out.txt "imp1@example.org,unsubscribed,news," "empty columns take the options"
ok "list promo" "$VOLLEY" suppress list --list promo
has out.txt "imp2@example.org,manual,promo," "given columns win"
printf 'email,list\nbad@example.org,"a\033[2Jb"\n' > ctl.csv
fails 1 "a list with control characters" "$VOLLEY" suppress import ctl.csv
has err.txt "ctl.csv:2: a list name" "a bad list name is named by line"
fails 2 "an option the subcommand does not use" \
	"$VOLLEY" suppress add x@example.org --format json
fails 2 "--transactional outside check" \
	"$VOLLEY" suppress list --transactional

# check: who would be sent, and why not
ok "check someone not suppressed" "$VOLLEY" suppress check rita@example.org \
	--list news
has out.txt "rita@example.org: sent to (list news)" "check says sent to"
fails 3 "check someone suppressed" "$VOLLEY" suppress check \
	LEFT@example.org joe@blocked.test --list news
has out.txt "LEFT@example.org: suppressed: unsubscribed (left@example.org, news since" \
	"check names the entry"
has out.txt "joe@blocked.test: suppressed: manual (domain @blocked.test" \
	"check names a domain entry"
ok "transactional ignores unsubscribes" "$VOLLEY" suppress check \
	left@example.org --list news --transactional

ok "remove" "$VOLLEY" suppress remove ann@EXAMPLE.org --list news
has out.txt "1 entry removed" "remove by list, ignoring case"
ok "remove what is not there" "$VOLLEY" suppress remove nobody@example.org
has err.txt "not on the suppression list" "remove says it found nothing"
ok "put ann back" "$VOLLEY" suppress add ann@example.org --list news \
	--reason unsubscribed

# --- campaigns on lists -----------------------------------------------------
fails 2 "--list global" "$VOLLEY" campaign create g --template t --list global
ok "news campaign" "$VOLLEY" campaign create weekly --template t --list news
has out.txt "list news" "create names the list"
ok "promo campaign" "$VOLLEY" campaign create promo --template t --list promo
ok "receipts" "$VOLLEY" campaign create receipts --template t --transactional
{
	echo "email,name"
	for a in ann bob gone left Rita; do echo "$a@example.org,$a"; done
	echo "joe@blocked.test,joe"
	echo "zed@example.org,zed"
} > r.csv
ok "import news" "$VOLLEY" import weekly r.csv
has out.txt "imported 7 recipients into 'weekly' (0 duplicates skipped, 0 bad rows skipped, 5 suppressed)" \
	"the import counts the suppressed"
ok "import promo" "$VOLLEY" import promo r.csv
has out.txt "3 suppressed" "another list: its unsubscribes do not count"
ok "import receipts" "$VOLLEY" import receipts r.csv
has out.txt "3 suppressed" "transactional: unsubscribes do not count"
equals "$(json_key weekly suppressed)" 5 "status --json: suppressed"
equals "$(json_key weekly list)" "news" "status --json: list"
equals "$(json_key receipts transactional)" "True" "status --json: transactional"
ok "report suppressed" "$VOLLEY" report weekly --state suppressed
has out.txt 'ann@example.org,suppressed,0,,,"suppressed: unsubscribed (ann@example.org, news since' \
	"the report says why"
has out.txt 'joe@blocked.test,suppressed,0,,,"suppressed: manual (domain @blocked.test, every list since' \
	"a domain entry is named"

# --- sending: the suppressed are never sent; a 550 5.1.1 is a bounce --------
cat > faults <<'F'
rcpt zed@example.org 550 5.1.1 <zed@example.org>: Recipient address rejected: User unknown
F
start_sink s --log sink.jsonl --faults faults || finish
cat >> volley.cfg <<CFG
smtp = { host = "127.0.0.1"; port = $port; tls = "none"; connections = 2; };
CFG
ok "send weekly" "$VOLLEY" send weekly --quiet
equals "$(sent_to)" "Rita@example.org" "only the recipient not suppressed got it"
equals "$(count weekly failed)" 1 "zed failed"
ok "report after send" "$VOLLEY" report weekly --format json --state failed
has out.txt '"bounce_class":"bad-mailbox"' "the 550 5.1.1 is classified"
has out.txt '"bounced_at":"' "with its time"
ok "list hard bounces" "$VOLLEY" suppress list --reason hard-bounce
has out.txt "zed@example.org,hard-bounce,global," \
	"a hard rejection is suppressed for every list"
has out.txt "reply: 550 5.1.1 (bad-mailbox)" \
	"its source says it came from the reply"

# a relay refusing the client at RCPT says nothing about the recipient:
# three campaigns of it suppress nobody
cat > faults2 <<'F'
rcpt * 554 5.7.1 <client.example[127.0.0.1]>: Client host rejected: Access denied
F
kill "$sink_pid"; wait "$sink_pid" 2>/dev/null
start_sink s2 --log sink2.jsonl --faults faults2 || finish
sed -i "s/port = [0-9]*;/port = $port;/" volley.cfg
printf 'email,name\npol1@example.org,a\npol2@example.org,b\n' > pol.csv
for n in 1 2 3; do
	ok "policy campaign $n" "$VOLLEY" campaign create pol$n --template t
	ok "import pol$n" "$VOLLEY" import pol$n pol.csv
	ok "send pol$n" "$VOLLEY" send pol$n --quiet
done
equals "$(count pol3 failed)" 2 "the relay refused both"
ok "policy campaign 4" "$VOLLEY" campaign create pol4 --template t
ok "import pol4" "$VOLLEY" import pol4 pol.csv
has out.txt "0 suppressed" "a relay's policy refusals suppress nobody"
ok "report pol3" "$VOLLEY" report pol3 --format json
has out.txt '"bounce_class":"policy-related"' "but they are recorded, classified"
kill "$sink_pid"; wait "$sink_pid" 2>/dev/null
start_sink s3 --log sink.jsonl --faults faults || finish
sed -i "s/port = [0-9]*;/port = $port;/" volley.cfg

# the next campaign: zed is suppressed at import
ok "second news campaign" "$VOLLEY" campaign create weekly2 --template t \
	--list news
ok "import again" "$VOLLEY" import weekly2 r.csv
has out.txt "6 suppressed" "zed is now suppressed at import"

# unsubscribed during a send: suppressed at claim, never sent
: > sink.jsonl
ok "promo suppress rita after import" "$VOLLEY" suppress add \
	rita@EXAMPLE.ORG --list promo --reason unsubscribed
ok "send promo" "$VOLLEY" send promo --quiet
has out.txt "not sent, suppressed since their import: 2" \
	"the send says who it skipped (rita; zed since the last send)"
equals "$(sent_to)" "ann@example.org left@example.org" \
	"rita and zed are not sent, ann and left (other lists) are"
ok "report promo" "$VOLLEY" report promo --state suppressed
has out.txt "Rita@example.org,suppressed" "the claim marked rita suppressed"
equals "$(json_key promo suppressed)" 5 "status counts them"
finish
