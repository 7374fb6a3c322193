#!/bin/sh
# template_safety.sh - templates that cannot silently break a message, as
# a user meets them: a partial that is not there stops `campaign create`;
# an error in message.cfg is placed at its line and column; a name no
# recipient has is reported by `import` and `preview` (an error with
# --strict, and then nothing is imported or written); a value that is no
# safe URL in an href is replaced and reported by `preview` and `send`,
# and values in URLs are percent-encoded, List-Unsubscribe's too.
. "$(dirname "$0")/lib.sh"

pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

ok "init" "$VOLLEY" init

# template NAME - a small template folder NAME with a footer partial
template() {
	mkdir -p "$1"
	cat > "$1/message.cfg" <<'EOF'
# a newsletter
from = "News <news@example.org>";
subject = "Hello {{first_name}}";
list_unsubscribe = "https://example.org/unsubscribe?u={{email}}";
EOF
	cat > "$1/body.html" <<'EOF'
<p>Hello {{first_name}},</p>
<p><a href="{{site}}">your site</a>
<a href='https://example.org/p?e={{email}}&amp;c={{city}}'>profile</a></p>
{{> footer}}
EOF
	printf 'Hello {{first_name}}\n{{> footer}}\n' > "$1/body.txt"
	printf 'Unsubscribe: {{email}}\n' > "$1/footer.mustache"
}

# --- a missing partial is an error at campaign create ------------------
template typo
sed -i 's/{{> footer}}/{{> fotter}}/' typo/body.html
fails 1 "a misspelt partial" "$VOLLEY" campaign create typo \
	--template typo
has err.txt "body.html:4:1: cannot load partial 'fotter'" \
	"the reference is located"
has err.txt "no file fotter.mustache" "and the missing file named"
"$VOLLEY" campaign list > list.txt
lacks list.txt "typo" "no campaign was made"

# --- message.cfg errors at the setting's own line and column -----------
template badcfg
cat > badcfg/message.cfg <<'EOF'
# a newsletter

from = "News <news@example.org>";

subject = "Hello {{first_name}";
EOF
fails 1 "a broken subject" "$VOLLEY" campaign create badcfg \
	--template badcfg
has err.txt "message.cfg:5:18: subject: unclosed tag" \
	"the tag is placed in message.cfg"

# --- names no recipient has: import and preview -------------------------
template news
cat >> news/body.txt <<'EOF'
{{#vip}}Dear {{titel}}{{/vip}}
EOF
ok "campaign" "$VOLLEY" campaign create news --template news \
	--from news@example.org
cat > people.csv <<'EOF'
email,first_name,city,site
ada+news@example.org,Ada,London,javascript:alert(1)
bo@example.org,Bo,Zürich & co,https://bo.example/
EOF
fails 1 "import --strict with names no recipient has" \
	"$VOLLEY" import news people.csv --strict
has err.txt "body.txt:3:1: no recipient in people.csv has {{#vip}}" \
	"the section is named with where it is"
has err.txt "body.txt:3:14: no recipient in people.csv has {{titel}}" \
	"the name inside it too"
has err.txt "(--strict); nothing imported" "strict says why"
equals "$(total news)" "0" "nothing imported"
printf '%s%s\n' \
	'{"email": "j@example.org", "first_name": "J", "city": "C", ' \
	'"site": "/x", "vip": {"title": "Dr"}}' > people.jsonl
fails 1 "JSON Lines --strict" "$VOLLEY" import news people.jsonl --strict
has err.txt "body.txt:3:14: no recipient in people.jsonl has {{titel}}" \
	"a name no object at any depth has"
lacks err.txt "{{#vip}}" "vip is there"
equals "$(total news)" "0" "nothing imported"
ok "import warns" "$VOLLEY" import news people.csv
has err.txt "warning: body.txt:3:14: no recipient in people.csv has" \
	"a warning without --strict"
has out.txt "imported 2 recipients" "and the import goes on"

fails 1 "preview --strict" "$VOLLEY" preview news --out strict --strict
has err.txt "body.txt:3:14: no recipient of campaign 'news' has {{titel}}" \
	"preview names it"
has err.txt "no messages written" "and writes nothing"
equals "$(ls strict 2>/dev/null | wc -l | tr -d ' ')" "0" "no files"

# --- URLs: checked at the start, percent-encoded after ------------------
ok "preview" "$VOLLEY" preview news --out eml
has err.txt "warning: body.txt:3:14: no recipient of campaign" \
	"preview warns of the name"
has err.txt "ada+news@example.org: body.html:2:13: {{site}} is not a safe URL" \
	"and names the recipient and the place of a replaced URL"
lacks err.txt "bo@example.org:" "a good URL is not reported"
checks=$((checks + 1))
if ! python3 - eml/0001-*.eml eml/0002-*.eml <<'PY'
import email, email.policy, sys
def load(path):
    return email.message_from_bytes(open(path, "rb").read(),
                                    policy=email.policy.default)
ada, bo = load(sys.argv[1]), load(sys.argv[2])
html = ada.get_body(("html",)).get_content()
assert '<a href="about:invalid#volley-unsafe-url">' in html, html
assert "p?e=ada%2Bnews%40example.org&amp;c=London'" in html, html
assert (ada["List-Unsubscribe"] ==
        "<https://example.org/unsubscribe?u=ada%2Bnews%40example.org>"), \
    ada["List-Unsubscribe"]
text = ada.get_body(("plain",)).get_content()
assert "Unsubscribe: ada+news@example.org" in text, text
html = bo.get_body(("html",)).get_content()
assert '<a href="https://bo.example/">' in html, html
assert "c=Z%C3%BCrich%20%26%20co'" in html, html
PY
then
	echo "FAIL: URLs in the messages"; failures=$((failures + 1))
fi

# --- volley send says it, once, and sends the message -------------------
start_sink "sink" --maildir sink.md || exit 1
cat > volley.cfg <<CFG
store = { path = "test.db"; };
smtp = { host = "127.0.0.1"; port = $port; tls = "none"; };
CFG
ok "send" "$VOLLEY" send news --quiet
has err.txt "ada+news@example.org: body.html:2:13: {{site}} is not a safe URL" \
	"send notes the replaced URL"
equals "$(count news sent)" "2" "both are sent"
replaced=$(grep -l 'about:invalid#volley-unsafe-url' sink.md/new/* |
	wc -l | tr -d ' ')
equals "$replaced" "1" "with the URL replaced in one"

finish
