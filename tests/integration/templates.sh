#!/bin/sh
# templates.sh - campaigns with templates as a user meets them: the
# example newsletter snapshotted, imported, previewed and read back by an
# independent MIME parser (Python's email package); JSON Lines with nested
# data; template errors by file:line:column; missing variables caught at
# import; header injection refused.
. "$(dirname "$0")/lib.sh"

src=$(cd "$(dirname "$0")/../.." && pwd)
fixtures=$src/tests/fixtures
news=$src/examples/newsletter

ok "init" "$VOLLEY" init

# --- the example newsletter ---------------------------------------------
cp -r "$news" tpl
ok "campaign with template" "$VOLLEY" campaign create news --template tpl
has out.txt "6 files" "the snapshot holds the folder's six files"
# Editing the folder later changes nothing (the campaign has a snapshot).
echo 'subject = "changed";' > tpl/message.cfg
ok "import" "$VOLLEY" import news "$src/examples/recipients.csv"
ok "preview" "$VOLLEY" preview news --limit 50 --out eml
has out.txt "wrote 11 messages" "one .eml per recipient"
ok "preview one" "$VOLLEY" preview news --recipient ADA@example.org \
	--out one
equals "$(ls one | wc -l | tr -d ' ')" "1" "--recipient writes one file"
# One Message-ID per job, the same on every rendering (every attempt).
equals "$(grep -h '^Message-ID:' one/*.eml)" \
	"$(grep -h '^Message-ID:' eml/0001-*.eml)" "the Message-ID is stable"
equals "$(grep -h '^Message-ID:' eml/*.eml | sort -u | wc -l | tr -d ' ')" \
	"11" "and unique per recipient"

cat > expect.json <<EOF
{"headers_present": ["Date", "Message-ID", "List-Unsubscribe",
                     "List-Unsubscribe-Post", "Reply-To", "X-Campaign"],
 "by_to": {
  "ada@example.org": {
   "subject": "Frühlingsgrüße, Ada: what's new this spring 🌷",
   "from": "Volley Newsletter <news@example.org>",
   "structure": "multipart/mixed(multipart/alternative(text/plain,multipart/related(text/html,image/png)),application/pdf)",
   "text_contains": ["Hello Ada,\n", "city page for London.",
                     "Your plan: pro.", "subscribed as ada@example.org."],
   "html_contains": ["<h1>Hello Ada,</h1>", "<strong>London</strong>"],
   "attachments": {"spring-guide.pdf": "$news/spring-guide.pdf"},
   "inline": {"logo.png": "$news/logo.png"}},
  "ken@example.org": {
   "text_contains": ["Hello Ken,"],
   "html_contains": ["Murray Hill"]},
  "grace.hopper@example.com": {
   "html_contains": ["<strong>Arlington, VA</strong>"]}
 }}
EOF
if command -v python3 >/dev/null; then
	ok "the messages parse cleanly and say what they should" \
		python3 "$(dirname "$0")/check_eml.py" expect.json eml/*.eml
	sed 's/^/  /' out.txt | tail -3
else
	echo "FAIL: python3 is needed to check the messages"
	failures=$((failures + 1))
fi
# A name with HTML specials is escaped in HTML, not in text.
printf 'email,first_name,city,plan\nx@example.org,"<b>Tom & ""Jerry""</b>",Oslo,free\n' \
	> html.csv
ok "import html specials" "$VOLLEY" import news html.csv
ok "preview html specials" "$VOLLEY" preview news \
	--recipient x@example.org --out html
checks=$((checks + 1))
if ! python3 - html/*.eml <<'PY'
import email, email.policy, sys
m = email.message_from_bytes(open(sys.argv[1], "rb").read(),
                             policy=email.policy.default)
html = m.get_body(("html",)).get_content()
text = m.get_body(("plain",)).get_content()
assert "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;" in html, html
assert '<b>Tom & "Jerry"</b>' in text, text
PY
then
	echo "FAIL: HTML escaping"; failures=$((failures + 1))
fi

# --- header injection: a line break in a value never makes a header -----
printf 'email,first_name,city,plan\n"evil@example.org","Eve\r\nBcc: all@example.org",X,free\n' \
	> inject.csv
ok "import a value with a line break" "$VOLLEY" import news inject.csv
fails 1 "preview refuses it" "$VOLLEY" preview news \
	--recipient evil@example.org --out inj
has err.txt "evil@example.org" "the recipient is named"
has err.txt "line break" "the reason is given"
checks=$((checks + 1))
if grep -rqs "^Bcc:" inj; then
	echo "FAIL: an injected header reached a message"
	failures=$((failures + 1))
fi

# --- template errors by file:line:column --------------------------------
fails 1 "broken template" "$VOLLEY" campaign create broken \
	--template "$fixtures/broken"
has err.txt "body.txt:2:1" "the unclosed section is located"
has err.txt "unclosed section 'items'" "and named"
fails 1 "folder without message.cfg" "$VOLLEY" campaign create empty \
	--template "$fixtures"
has err.txt "message.cfg" "a missing message.cfg is named"

# --- variables the template needs, checked at import --------------------
printf 'email,first_name\nn@example.org,N\n' > short.csv
fails 1 "CSV without a needed column" "$VOLLEY" import news short.csv
has err.txt "{{city}}" "the missing variable is named"
has err.txt "body.txt:" "with where the template uses it"

# --- JSON Lines with nested data ----------------------------------------
ok "receipt campaign" "$VOLLEY" campaign create receipts \
	--template "$fixtures/receipt"
cat > orders.jsonl <<'EOF'
{"email": "amy@example.org", "name": "Amy", "order": {"id": "A-1", "total": 12.5}, "items": [{"title": "Tea", "qty": 2, "price": 3.25}, {"title": "Mug", "qty": 1, "price": 6}], "gift": true}

{"email": "bo@example.org", "name": "Bo", "order": {"id": "B-2", "total": 0}, "items": []}
EOF
ok "import JSON Lines" "$VOLLEY" import receipts orders.jsonl
has out.txt "imported 2 recipients" "both orders imported"
ok "preview receipts" "$VOLLEY" preview receipts --out rcpt
cat > expect2.json <<'EOF'
{"by_to": {
  "amy@example.org": {"subject": "Your order A-1",
   "structure": "text/plain",
   "text_equals": ["Hello Amy,\n\nOrder A-1:\n- Tea x2 at 3.25\n- Mug x1 at 6\nTotal: 12.5\nThis is a gift.\n"]},
  "bo@example.org": {"subject": "Your order B-2",
   "text_equals": ["Hello Bo,\n\nOrder B-2:\n(no items)\nTotal: 0\n\n"]}}}
EOF
ok "receipts parse and render nested data" \
	python3 "$(dirname "$0")/check_eml.py" expect2.json rcpt/*.eml

cat > bad.jsonl <<'EOF'
{"email": "c@example.org", "name": "C", "order": {"id": 1, "total": 1}, "items": []}
{"email": "d@example.org", "name": "D", "order": {"id": 2}, "items": [
["not", "an", "object"]
{"email": "e@example.org", "order": {"id": 3, "total": 3}, "items": []}
{"email": "not an address", "name": "F", "order": {}, "items": []}
EOF
fails 1 "bad JSON Lines" "$VOLLEY" import receipts bad.jsonl
has err.txt "bad.jsonl:2:" "broken JSON is located"
has err.txt "bad.jsonl:3: a line must hold one JSON object" "not an object"
has err.txt "bad.jsonl:4: no \"name\"" "missing variable per row"
has err.txt "bad.jsonl:5: invalid address" "bad address"
equals "$(total receipts)" "2" "nothing imported from the bad file"
# jansson quotes bad input in its messages: it reaches the terminal escaped.
printf '{"email": 5\033]0;pwned\007}\n' > esc.jsonl
fails 1 "escape sequence in bad JSON" "$VOLLEY" import receipts esc.jsonl
has err.txt "esc.jsonl:1:" "the bad line is located"
checks=$((checks + 1))
if grep -q "$(printf '\033')" err.txt; then
	echo "FAIL: a raw ESC byte reached stderr"; failures=$((failures + 1))
fi
# The address key matches ignoring case, as a CSV header does.
printf '{"EMAIL": "up@example.org", "name": "U", "order": {"id": 9, "total": 1}, "items": []}\n' \
	> upper.jsonl
ok "address key in capitals" "$VOLLEY" import receipts upper.jsonl
ok "--format jsonl on stdin" "$VOLLEY" import receipts - --format jsonl \
	--skip-invalid < bad.jsonl
equals "$(total receipts)" "4" "the one good row imported"

finish
