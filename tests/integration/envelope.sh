#!/bin/sh
# envelope.sh - the envelope and headers bulk-sender rules need, end to
# end against `volley sink`: where the envelope sender comes from
# (--from, return_path, the From header; none is refused at campaign
# create), {{verp}} tokens that name their recipient, `to` and
# feedback_id, and attachments named by recipient, read from
# `campaign create --files DIR` and never from outside it.
. "$(dirname "$0")/lib.sh"

pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

# tpl DIR CFG... - a template folder: message.cfg from the arguments
tpl() {
	d=$1
	shift
	mkdir -p "$d"
	printf '%s\n' "$@" > "$d/message.cfg"
	printf 'Hello {{name}}\n' > "$d/body.txt"
}

# sender CAMPAIGN - the envelope sender `campaign list` shows
sender() {
	"$VOLLEY" campaign list | awk -v c="$1" '$1 == c { print $6 }'
}

# sent_from ADDR - the MAIL FROM the sink logged for ADDR
sent_from() {
	python3 - sink.jsonl "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if any(x["to"] == sys.argv[2] for x in r["rcpts"]):
        print(r["from"])
PY
}

ok "init" "$VOLLEY" init

# --- where the envelope sender comes from ---------------------------------
tpl t_from 'subject = "s";' 'from = "Shop <shop@example.org>";'
tpl t_rp 'subject = "s";' 'from = "Shop <shop@example.org>";' \
	'return_path = "bounces@b.example.org";'
tpl t_var 'subject = "s";' 'from = "{{name}} <shop@example.org>";'
ok "--from wins" "$VOLLEY" campaign create c1 --template t_rp \
	--from list@example.org
equals "$(sender c1)" "list@example.org" "--from is the envelope sender"
ok "return_path next" "$VOLLEY" campaign create c2 --template t_rp
equals "$(sender c2)" "bounces@b.example.org" "return_path is next"
has out.txt "from return_path" "create says where the sender came from"
ok "the From header last" "$VOLLEY" campaign create c3 --template t_from
equals "$(sender c3)" "shop@example.org" "then the From header's address"
fails 1 "a From with variables and nothing else" \
	"$VOLLEY" campaign create c4 --template t_var
has err.txt "needs an envelope sender" "no sender: refused at create"
fails 1 "no template, no --from" "$VOLLEY" campaign create c5
has err.txt "needs an envelope sender" "no sender, no template: refused"
equals "$("$VOLLEY" campaign list | grep -c '^c[45] ')" 0 \
	"the refused campaigns were not made"

# a private key in a template folder never reaches the store
tpl t_key 'subject = "s";' 'from = "Shop <shop@example.org>";'
openssl genpkey -algorithm ed25519 -out t_key/dkim.key 2>/dev/null
fails 1 "a key in the template folder" \
	"$VOLLEY" campaign create k1 --template t_key
has err.txt "a private key: it is not copied into the store" \
	"a key in the template folder is refused, named"

# an empty body is a body (ASan once stopped at its copy)
tpl t_empty 'subject = "s";' 'from = "Shop <shop@example.org>";'
: > t_empty/body.txt
ok "a template with an empty body.txt" \
	"$VOLLEY" campaign create e1 --template t_empty

# --- {{verp}} ----------------------------------------------------------------
fails 1 "other Mustache in --from" "$VOLLEY" campaign create v0 \
	--from 'b+{{name}}@example.org' --template t_from
has err.txt "only {{verp}}" "other Mustache in --from: refused"
fails 1 "{{verp}} without a secret" "$VOLLEY" campaign create v1 \
	--from 'bounces+{{verp}}@b.example.org' --template t_from
has err.txt "verp.secret_file" "{{verp}} without a secret: says the setting"
printf 'short\n' > short.secret
chmod 600 short.secret
echo 'verp = { secret_file = "short.secret"; };' >> volley.cfg
fails 1 "a short secret" "$VOLLEY" campaign create v1 \
	--from 'bounces+{{verp}}@b.example.org' --template t_from
has err.txt "shorter than 16" "a short secret is refused"
openssl rand -hex 32 > verp.secret
chmod 644 verp.secret
sed -i 's/short.secret/verp.secret/' volley.cfg
fails 1 "a world-readable secret" "$VOLLEY" campaign create v1 \
	--from 'bounces+{{verp}}@b.example.org' --template t_from
has err.txt "readable by every user" "a world-readable secret is refused"
chmod 600 verp.secret
tpl t_verp 'subject = "s";' 'from = "Shop <shop@example.org>";' \
	'to = "{{name}} <{{email}}>";' 'feedback_id = "{{name}}:news:shop";' \
	'return_path = "bounces+{{verp}}@b.example.org";'
ok "{{verp}} from return_path" "$VOLLEY" campaign create v1 \
	--template t_verp
printf 'email,name\nann@example.net,Ann\nBob@Example.net,Bob\n' > v.csv
printf 'eve@example.net,Eve\n' >> v.csv
ok "import" "$VOLLEY" import v1 v.csv

start_sink v --maildir md --log sink.jsonl || finish
cat >> volley.cfg <<CFG
smtp = { host = "127.0.0.1"; port = $port; tls = "none"; connections = 2; };
CFG
ok "send" "$VOLLEY" send v1 --quiet
equals "$(count v1 sent)" 3 "all three sent"
# each MAIL FROM carries its recipient's token, and only it checks out
check_tokens() {
	python3 - sink.jsonl test.db <<'PY'
import hmac, hashlib, json, re, sqlite3, sys
secret = open("verp.secret").readline().rstrip("\r\n").encode()
db = sqlite3.connect(sys.argv[2])
jobs = {a.lower(): (c, j) for j, c, a in
        db.execute("SELECT id, campaign_id, address FROM jobs")}
b32 = "abcdefghijklmnopqrstuvwxyz234567"
def num(s):
    v = 0
    for ch in s:
        v = v * 32 + b32.index(ch)
    return v
seen = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    m = re.fullmatch(r"bounces\+([a-z2-7]+)-([a-z2-7]+)-([a-z2-7]{10})"
                     r"@b\.example\.org", r["from"])
    assert m, r["from"]
    to = r["rcpts"][0]["to"]
    c, j = num(m[1]), num(m[2])
    assert (c, j) == jobs[to.lower()], (to, c, j)
    # an independent HMAC-SHA256 over the same input (token.h)
    mac = hmac.new(secret, f"volley-verp-1:{c}:{j}:{to.lower()}".encode(),
                   hashlib.sha256).digest()
    bits = int.from_bytes(mac[:7], "big") >> 6
    want = "".join(b32[(bits >> (5 * (9 - i))) & 31] for i in range(10))
    assert m[3] == want, (to, m[3], want)
    seen += 1
assert seen == 3, seen
print("3 tokens name their recipients")
PY
}
if check_tokens >chk.out 2>&1; then
	checks=$((checks + 1))
else
	checks=$((checks + 1))
	failures=$((failures + 1))
	echo "FAIL: VERP tokens"
	sed 's/^/  | /' chk.out
fi
msg=$(grep -l "^To: Bob <Bob@Example.net>" md/new/* | head -1)
equals "$(grep -c '^To: Bob <Bob@Example.net>' "$msg")" 1 \
	"to: the display name from message.cfg, the recipient's address"
has "$msg" "Feedback-ID: Bob:news:shop" "feedback_id is a header"

# send-one has no recipient token: {{verp}} is never sent literally
fails 2 "send-one --from with {{verp}}" "$VOLLEY" send-one \
	--to ann@example.net --from 'b+{{verp}}@b.example.org'
has err.txt "renders no template" "send-one: {{ in --from refused"

# --- to: its address must be the recipient's --------------------------------
tpl t_to 'subject = "s";' 'from = "Shop <shop@example.org>";' \
	'to = "{{name}} <info@example.net>";'
ok "a to with a fixed address" "$VOLLEY" campaign create t1 --template t_to
printf 'email,name\ninfo@example.net,Info\nann@example.net,Ann\n' > t.csv
ok "import" "$VOLLEY" import t1 t.csv
ok "send" "$VOLLEY" send t1 --quiet
equals "$(count t1 sent) $(count t1 failed)" "1 1" \
	"to: the recipient it does not name fails, the other goes"
ok "report" "$VOLLEY" report t1
has out.txt "not the recipient's 'ann@example.net'" \
	"to: the reason is in the report"

# --- attachments named by recipient ----------------------------------------
mkdir -p files/inv outside
printf '%%PDF-1 invoice one\n' > files/inv/1.pdf
printf '%%PDF-2 invoice two\n' > files/inv/2.pdf
printf 'secret\n' > outside/9.pdf
ln -s ../../outside/9.pdf files/inv/9.pdf
ln -s 1.pdf files/inv/5.pdf
tpl t_att 'subject = "Invoice {{invoice}}";' \
	'from = "Shop <shop@example.org>";' \
	'attachments = [ "inv/{{invoice}}.pdf" ];'
fails 1 "attachments by recipient need --files" \
	"$VOLLEY" campaign create a0 --template t_att
has err.txt "--files DIR" "no --files: says what to give"
fails 1 "--files that is not a folder" \
	"$VOLLEY" campaign create a0 --template t_att --files v.csv
ok "campaign with --files" "$VOLLEY" campaign create a1 --template t_att \
	--files files
{
	echo "email,name,invoice"
	echo "one@example.net,One,1"
	echo "two@example.net,Two,2"
	echo "miss@example.net,Miss,3"
	echo "link@example.net,Link,9"
	echo "inner@example.net,Inner,5"
	echo "up@example.net,Up,../../outside/9"
} > a.csv
ok "import" "$VOLLEY" import a1 a.csv
ok "preview" "$VOLLEY" preview a1 --out pv --limit 2
# the attachment as it arrives: base64 of the recipient's own file
attached() {
	python3 - "$1" <<'PY'
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
for part in m.walk():
    if part.get_filename():
        sys.stdout.write(part.get_filename() + ":" +
                         part.get_payload(decode=True).decode())
PY
}
equals "$(attached pv/0001-one@example.net.eml)" "1.pdf:%PDF-1 invoice one" \
	"preview: the first recipient's own file"
ok "send" "$VOLLEY" send a1 --quiet
equals "$(count a1 sent) $(count a1 failed)" "3 3" \
	"attachments: three sent, three failed"
two=$(grep -l "Subject: Invoice 2" md/new/* | head -1)
equals "$(attached "$two")" "2.pdf:%PDF-2 invoice two" \
	"send: the second recipient got their own file"
inner=$(grep -l "Subject: Invoice 5" md/new/* | head -1)
equals "$(attached "$inner")" "5.pdf:%PDF-1 invoice one" \
	"a link that stays inside the folder is followed"
ok "report" "$VOLLEY" report a1
has out.txt "attachment inv/3.pdf: No such file or directory" \
	"a missing file: the path in the reason"
has out.txt "attachment inv/9.pdf: leads out of the campaign's files folder" \
	"a link out of the folder is refused"
has out.txt "has a '.' or '..' part" "a path with .. is refused"
leaked=$(for f in md/new/*; do attached "$f"; echo; done | grep -c secret)
equals "$leaked" 0 "nothing from outside the folder was sent"
stop() { kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null; }
stop
finish
