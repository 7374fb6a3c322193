#!/bin/sh
# serve.sh - one-click unsubscribe end to end, with a real HTTP client
# (curl) against `volley serve` on a free loopback port:
#
# - {{unsubscribe_url}} without unsubscribe.base_url: refused at campaign
#   create, naming the settings; with them, preview and the message
#   `volley send` delivered to `volley sink` carry the same URL, in the
#   text, the HTML, and the automatic List-Unsubscribe and
#   List-Unsubscribe-Post headers (none when message.cfg sets its own),
#   DKIM-signed and verified by python3-dkim when it is installed;
# - POST with List-Unsubscribe=One-Click (urlencoded, multipart, no
#   type): 200 and one suppression (reason unsubscribed, scope the
#   campaign's list, source the client, never the token); again 200 and
#   still one; GET: a page with the form and the list's name, nothing
#   recorded; a tampered token, another job's ids, another campaign's,
#   garbage: 404 and nothing recorded; a POST without the field: 400;
#   over 1 KB: 413 (told, or chunked); PUT, DELETE: 405 with Allow;
# - clients that hold connections (half a request, a body that never
#   comes) do not keep others waiting;
# - the log names no token; SIGTERM stops it with status 0;
# - a send after the unsubscribe does not mail the address for that
#   list (claimed or imported later: state suppressed), but does for
#   another list and for a transactional campaign.
# Only loopback; only processes this test started are stopped, by PID.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SRC=$(cd "$here/../.." && pwd)

if ! command -v curl >/dev/null 2>&1; then
	echo "SKIP: no curl (apt-get install curl, or scripts/install-deps" \
	     "--tests)"
	[ "${CI:-}" = true ] && exit 1
	exit 77
fi

pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

# suppressions [WHERE] - how many suppression entries the store holds
suppressions() {
	python3 - test.db "${1:-1}" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT count(*) FROM suppressions WHERE " +
                 sys.argv[2]).fetchone()[0])
PY
}

# status METHOD URL [CURL-ARGS...] - the HTTP status curl got; the
# headers in hdr.txt, the body in body.txt
status() {
	m=$1; u=$2; shift 2
	curl -s -o body.txt -D hdr.txt -w '%{http_code}' --max-time 10 \
		-X "$m" "$@" "$u"
}

# --- {{unsubscribe_url}} needs the settings ----------------------------------
ok "init" "$VOLLEY" init
mkdir t
cat > t/message.cfg <<'EOF'
subject = "News for {{name}}";
from = "News <news@example.org>";
EOF
printf 'Hello {{name}}\nLeave: {{unsubscribe_url}}\n' > t/body.txt
printf '<p>Hello {{name}} <a href="{{unsubscribe_url}}">leave</a></p>\n' \
	> t/body.html
fails 1 "{{unsubscribe_url}} without unsubscribe settings" \
	"$VOLLEY" campaign create c1 --template t
has err.txt "--template t: the template uses {{unsubscribe_url}}: set" \
	"the error names the template"
has err.txt "unsubscribe.base_url and unsubscribe.secret_file" \
	"and the settings"

openssl rand -hex 32 > unsub.secret
chmod 600 unsub.secret
cat >> volley.cfg <<'EOF'
unsubscribe = { secret_file = "unsub.secret";
                base_url = "https://news.example.test/"; };
EOF
ok "campaign create" "$VOLLEY" campaign create c1 --template t \
	--list weekly
printf 'email,name\nAnn@example.net,Ann\nbob@example.net,Bob\n' > r.csv
printf 'carol@example.net,Carol\n' >> r.csv
ok "import (unsubscribe_url is every recipient's)" "$VOLLEY" import c1 r.csv
# a second campaign, for its tokens
ok "campaign create c2" "$VOLLEY" campaign create c2 --template t
printf 'email,name\ndave@example.net,Dave\n' > r2.csv
ok "import c2" "$VOLLEY" import c2 r2.csv
# a template with its own list_unsubscribe keeps it
mkdir own
printf '%s\n' 'subject = "s";' 'from = "News <news@example.org>";' \
	'list_unsubscribe = "https://own.example/leave";' > own/message.cfg
printf 'Hello\n' > own/body.txt
ok "campaign create own" "$VOLLEY" campaign create own --template own
ok "import own" "$VOLLEY" import own r2.csv

ok "preview" "$VOLLEY" preview c1 --out pv
ann=$(ls pv/*Ann@example.net.eml)
url=$(sed -n 's/^Leave: \(.*\)\r$/\1/p' "$ann")
case $url in
https://news.example.test/u/*) ;;
*) url=https://news.example.test/u/none
   echo "FAIL: no unsubscribe URL in the preview"
   failures=$((failures + 1)) ;;
esac
token=${url#https://news.example.test/u/}
has "$ann" "List-Unsubscribe: <$url>" "the List-Unsubscribe header"
has "$ann" "List-Unsubscribe-Post: List-Unsubscribe=One-Click" \
	"the List-Unsubscribe-Post header"
has "$ann" "<a href=\"$url\">leave</a>" "the HTML link, unchanged"
bob=$(ls pv/*bob@example.net.eml)
bob_token=$(sed -n 's/^Leave: .*\/u\/\(.*\)\r$/\1/p' "$bob")
ok "preview c2" "$VOLLEY" preview c2 --out pv2
dave_token=$(sed -n 's/^Leave: .*\/u\/\(.*\)\r$/\1/p' pv2/*dave*.eml)
ok "preview own" "$VOLLEY" preview own --out pvo
has pvo/0001-dave@example.net.eml \
	"List-Unsubscribe: <https://own.example/leave>" \
	"message.cfg's own list_unsubscribe"
lacks pvo/0001-dave@example.net.eml "news.example.test" \
	"and not ours beside it"

# a list whose name is not HTML
ok "campaign create html" "$VOLLEY" campaign create html --template t \
	--list '<b>news & "more"</b>'
ok "import html" "$VOLLEY" import html r2.csv
ok "preview html" "$VOLLEY" preview html --out pvh
html_token=$(sed -n 's/^Leave: .*\/u\/\(.*\)\r$/\1/p' pvh/*dave*.eml)

# --- the same URL in what volley send delivers -----------------------------
start_sink s --maildir md || finish
cat >> volley.cfg <<CFG
smtp = { host = "127.0.0.1"; port = $port; tls = "none"; connections = 2; };
CFG
ok "send c1" "$VOLLEY" send c1 --quiet
equals "$(count c1 sent)" 3 "all three sent"
sent_ann=$(grep -l "^To: Ann@example.net" md/new/* md/cur/* 2>/dev/null |
	head -1)
if [ -n "$sent_ann" ]; then
	has "$sent_ann" "List-Unsubscribe: <$url>" \
		"the sent message has the same List-Unsubscribe"
	has "$sent_ann" "Leave: $url" "and the same link in its text"
else
	echo "FAIL: the sink has no message to Ann"
	failures=$((failures + 1))
fi

# a campaign imported before the unsubscribe, sent after it (below)
ok "campaign create c3" "$VOLLEY" campaign create c3 --template t \
	--list weekly
ok "import c3" "$VOLLEY" import c3 r.csv
# ... one of another list, and a transactional one of the same list
ok "campaign create c4" "$VOLLEY" campaign create c4 --template t \
	--list monthly
ok "import c4" "$VOLLEY" import c4 r.csv
ok "campaign create c5" "$VOLLEY" campaign create c5 --template t \
	--list weekly --transactional
ok "import c5" "$VOLLEY" import c5 r.csv
ok "preview c5" "$VOLLEY" preview c5 --out pv5 --limit 1
lacks pv5/0001-Ann@example.net.eml "List-Unsubscribe" \
	"a transactional campaign: no List-Unsubscribe headers"
has pv5/0001-Ann@example.net.eml "Leave: https://news.example.test/u/" \
	"but the link its template asks for"

# the settings gone by the time of preview or send: refused, nothing sent
grep -v -e '^unsubscribe' -e 'base_url' volley.cfg > nounsub.cfg
fails 1 "send without the unsubscribe settings" \
	"$VOLLEY" -c nounsub.cfg send c3 --quiet
has err.txt "campaign 'c3': the template uses {{unsubscribe_url}}" \
	"names the campaign"
has err.txt "unsubscribe.base_url" "and the setting"
equals "$(count c3 queued)" 3 "nothing of c3 sent"
fails 1 "preview without the unsubscribe settings" \
	"$VOLLEY" -c nounsub.cfg preview c3 --out pvn
has err.txt "unsubscribe.base_url" "names the setting"

# --- volley serve ------------------------------------------------------------
"$VOLLEY" serve --listen 127.0.0.1:0 --per-ip 8 --timeout 3 \
	2>serve.err &
serve_pid=$!
pids="$pids $serve_pid"
i=0
until grep -q "listening on" serve.err 2>/dev/null; do
	i=$((i + 1))
	if [ "$i" -gt 200 ] || ! kill -0 "$serve_pid" 2>/dev/null; then
		echo "FAIL: volley serve did not start"
		sed 's/^/  stderr: /' serve.err
		failures=$((failures + 1))
		finish
	fi
	sleep 0.05
done
sport=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' \
	serve.err)
base=http://127.0.0.1:$sport
u=$base/u/$token

equals "$(status GET "$u")" 200 "GET: the page"
has body.txt '<html lang="en">' "the page says its language"
has body.txt '<h1>Unsubscribe from weekly</h1>' "the page names the list"
has body.txt '<form method="post">' "a form that POSTs"
has body.txt 'name="List-Unsubscribe" value="One-Click"' \
	"with the One-Click field"
has body.txt '<button type="submit">' "and a real button"
has hdr.txt "Content-Type: text/html; charset=utf-8" "HTML, with charset"
has hdr.txt "Cache-Control: no-store" "not cached"
has hdr.txt "X-Content-Type-Options: nosniff" "nosniff"
has hdr.txt "Referrer-Policy: no-referrer" "no referrer"
has hdr.txt "Content-Security-Policy: default-src 'none'" "a strict CSP"
equals "$(status HEAD "$u" -I)" 200 "HEAD"
equals "$(suppressions)" 0 "GET and HEAD record nothing"

equals "$(status POST "$u" -d List-Unsubscribe=One-Click)" 200 \
	"POST one-click: 200"
equals "$(suppressions)" 1 "one suppression"
equals "$(suppressions "address = 'Ann@example.net' AND reason = 0 AND
	scope = 'weekly' AND source = 'volley serve 127.0.0.1' AND
	job_id > 0 AND campaign_id > 0")" 1 \
	"for Ann: unsubscribed, the list, the client, the job"
ok "suppress list" "$VOLLEY" suppress list --format csv
has out.txt "Ann@example.net,unsubscribed,weekly," \
	"volley suppress list shows it: unsubscribed from weekly"
has out.txt "volley serve 127.0.0.1" "with its source"
equals "$(status POST "$u" -d List-Unsubscribe=One-Click)" 200 \
	"POST again: 200"
equals "$(suppressions)" 1 "still one suppression"
equals "$(status POST "$u" -F List-Unsubscribe=One-Click)" 200 \
	"multipart/form-data: 200"
equals "$(status POST "$u" -H 'Content-Type:' \
	--data-binary List-Unsubscribe=One-Click)" 200 "no Content-Type: 200"
equals "$(status POST "$u" -H 'Accept: text/html' \
	-d List-Unsubscribe=One-Click)" 200 "from the page: 200"
has body.txt "You are unsubscribed" "a browser gets a confirmation page"
equals "$(suppressions)" 1 "still one suppression"
lacks serve.err "$token" "the log never holds the token"
has serve.err "POST /u/" "the log has each request"

# what the page says from the store is escaped
uh=$base/u/$html_token
equals "$(status GET "$uh")" 200 "GET: the page of a list named in HTML"
has body.txt \
	'<h1>Unsubscribe from &lt;b&gt;news &amp; &quot;more&quot;&lt;/b&gt;' \
	"the list's name escaped"
lacks body.txt '<b>' "no tag of the name's own"
equals "$(status POST "$uh" -H 'Accept: text/html' \
	-d List-Unsubscribe=One-Click)" 200 "POST from that page"
has body.txt '&lt;b&gt;news &amp; &quot;more&quot;&lt;/b&gt;' \
	"the confirmation escapes it too"
equals "$(suppressions "scope = '<b>news & \"more\"</b>'")" 1 \
	"recorded for the list as it is named"
ok "suppress remove" "$VOLLEY" suppress remove dave@example.net \
	--list '<b>news & "more"</b>'

# the wrong body, and bad tokens, record nothing
u2=$base/u/$bob_token
equals "$(status POST "$u2" -d List-Unsubscribe=Yes)" 400 \
	"POST without One-Click: 400"
equals "$(status POST "$u2" -d x=y)" 400 "POST of another field: 400"
equals "$(status POST "$u2" -H 'Content-Type: text/plain' \
	-d List-Unsubscribe=One-Click)" 400 "text/plain: 400"
equals "$(status POST "$u2")" 400 "POST with no body: 400"
last=$(printf '%s' "$bob_token" | tail -c 1)
if [ "$last" = a ]; then new=b; else new=a; fi
tampered=$(printf '%s' "$bob_token" | sed "s/.\$/$new/")
equals "$(status POST "$base/u/$tampered" -d List-Unsubscribe=One-Click)" \
	404 "a tampered token: 404"
has body.txt "not valid" "a plain page says so"
# Bob's ids with Ann's MAC; Dave's (campaign c2) job id under c1's id
bob_ids=${bob_token%-*}
ann_mac=${token##*-}
equals "$(status POST "$base/u/$bob_ids-$ann_mac" \
	-d List-Unsubscribe=One-Click)" 404 "another job's MAC: 404"
dave_job=$(printf '%s' "$dave_token" | cut -d- -f2)
ann_c=$(printf '%s' "$token" | cut -d- -f1)
dave_mac=${dave_token##*-}
equals "$(status POST "$base/u/$ann_c-$dave_job-$dave_mac" \
	-d List-Unsubscribe=One-Click)" 404 \
	"another campaign's job under this campaign's id: 404"
equals "$(status GET "$base/u/$tampered")" 404 "GET of a tampered token"
equals "$(status POST "$base/u/garbage" -d List-Unsubscribe=One-Click)" \
	404 "garbage: 404"
equals "$(status GET "$base/u/")" 404 "no token: 404"
equals "$(status GET "$base/")" 404 "another path: 404"
equals "$(status GET "$base/u/$bob_token/x")" 404 "a longer path: 404"
equals "$(status POST "$base/u/b-zzzzzzzzzzzz-aaaaaaaaaaaaaaaaaaaaaaaaaa" \
	-d List-Unsubscribe=One-Click)" 404 "a job that does not exist"
equals "$(suppressions)" 1 "nothing recorded by any of them"

# methods and sizes
equals "$(status PUT "$u2" -d List-Unsubscribe=One-Click)" 405 "PUT: 405"
has hdr.txt "Allow: GET, HEAD, POST" "405 says what is allowed"
equals "$(status DELETE "$u2")" 405 "DELETE: 405"
head -c 4096 /dev/zero | tr '\0' a > big.txt
equals "$(status POST "$u2" --data-binary @big.txt)" 413 \
	"a 4 KB body: 413"
equals "$(status POST "$u2" -H 'Transfer-Encoding: chunked' \
	--data-binary @big.txt)" 413 "a 4 KB chunked body: 413"
equals "$(suppressions)" 1 "still one suppression"

# a link with a byte added: 404, and the log has no more than its ids
equals "$(status GET "${u2}x")" 404 "a token with a byte added: 404"
lacks serve.err "${bob_token#*-*-}" "the log has none of its MAC"

# the store's write lock held by another process: 503 and Retry-After,
# nothing recorded, then 200 once it is free
python3 - test.db > lock.txt 2>&1 <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(3)
db.execute("ROLLBACK")
PY
lock_pid=$!
pids="$pids $lock_pid"
i=0
until grep -q locked lock.txt 2>/dev/null || [ "$i" -gt 100 ]; do
	i=$((i + 1))
	sleep 0.05
done
equals "$(status POST "$u2" -d List-Unsubscribe=One-Click)" 503 \
	"the store locked: 503"
has hdr.txt "Retry-After: " "503 says when to retry"
wait "$lock_pid"
equals "$(suppressions)" 1 "nothing recorded while locked"
equals "$(status POST "$u2" -d List-Unsubscribe=One-Click)" 200 \
	"the store free again: 200"
equals "$(suppressions)" 2 "Bob recorded"

# --- slow clients do not block others -----------------------------------
python3 - "$sport" > slow.txt 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
held = []
# half a head, and a head whose body never comes
a = socket.create_connection(("127.0.0.1", port))
a.sendall(b"GET /u/x HTTP/1.1\r\nHost: loc")
b = socket.create_connection(("127.0.0.1", port))
b.sendall(b"POST /u/x HTTP/1.1\r\nHost: l\r\nContent-Length: 26\r\n\r\nList-")
held += [a, b]
open("held.ready", "w").close()
time.sleep(2.5)
print("held")
PY
slow_pid=$!
pids="$pids $slow_pid"
# the two dawdlers are connected before the GET is timed
wait_until 10 test -e held.ready
t0=$(date +%s%N)
equals "$(status GET "$u2")" 200 "a GET while two clients dawdle"
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
# a server held up by the dawdlers answers after its 3 s --timeout; the
# bound leaves a loaded machine room for curl's own start
if [ "$ms" -gt 2500 ]; then
	echo "FAIL: the GET took $ms ms while others held connections"
	failures=$((failures + 1))
fi
checks=$((checks + 1))
wait "$slow_pid"
# an idle connection is closed after --timeout (3 s)
python3 - "$sport" > idle.txt 2>&1 <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /u/x HTTP/1.1\r\n")
s.settimeout(8)
t = time.time()
try:
    print("closed" if s.recv(100) == b"" else "answered", end=" ")
except OSError:
    print("reset", end=" ")
print(round(time.time() - t))
PY
case $(cat idle.txt) in
"closed "[2-5]|"answered "[2-5]|"reset "[2-5]) checks=$((checks + 1)) ;;
*) echo "FAIL: an idle client was not cut at the timeout: $(cat idle.txt)"
   failures=$((failures + 1)) ;;
esac
# more connections from one address than --per-ip are refused, not queued
python3 - "$sport" > perip.txt 2>&1 <<'PY'
import socket, sys
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(3)
try:
    print("closed" if s.recv(100) == b"" else "answered")
except socket.timeout:
    print("waited")
except OSError:
    print("closed")
PY
equals "$(cat perip.txt)" closed "a 9th connection from one address: closed"
# the held sockets' closing and this GET may reach the server in one
# wake-up, where the 9th is still counted: it recovers, not at once
i=0
while [ "$(status GET "$u2")" != 200 ] && [ $i -lt 20 ]; do
	sleep 0.1
	i=$((i + 1))
done
equals "$(status GET "$u2")" 200 "and the server still answers"

# --- DKIM covers the headers ---------------------------------------------
PY=
for p in /usr/bin/python3 python3; do
	if "$p" -c 'import dkim' 2>/dev/null; then
		PY=$p
		break
	fi
done
if [ -n "$PY" ]; then
	mkdir rec keys
	ok "dkim keygen" "$VOLLEY" dkim keygen --domain example.org \
		--selector s1 --out keys/s1.key &&
		cp out.txt rec/s1._domainkey.example.org
	cat >> volley.cfg <<'EOF'
dkim = ( { domain = "example.org"; selector = "s1";
           key_file = "keys/s1.key"; } );
EOF
	ok "preview, signed" "$VOLLEY" preview c1 --out pvd
	checks=$((checks + 1))
	if ! "$PY" "$SRC/tests/dkim/verify.py" --records rec --expect 1 \
		pvd/*.eml >verify.txt 2>&1; then
		echo "FAIL: DKIM (python3-dkim):"; sed 's/^/  | /' verify.txt
		failures=$((failures + 1))
	fi
	"$PY" - pvd/*Ann*.eml > h.txt <<'PY'
import re, sys
head = open(sys.argv[1], "rb").read().split(b"\r\n\r\n")[0].decode()
sig = re.search(r"^DKIM-Signature:(.*?)\r\n(?![ \t])", head + "\r\n",
                re.S | re.M).group(1)
h = re.search(r"h=([^;]*)", re.sub(r"\s", "", sig)).group(1).lower()
print(h)
PY
	has h.txt "list-unsubscribe:list-unsubscribe:list-unsubscribe-post" \
		"h= signs (and oversigns) the List-Unsubscribe pair"
	# a List-Unsubscribe changed after signing fails
	sed 's|^\(List-Unsubscribe: <https://\)news|\1evil|' \
		pvd/*Ann*.eml > tampered.eml
	has tampered.eml "List-Unsubscribe: <https://evil" "(tampered)"
	checks=$((checks + 1))
	if "$PY" "$SRC/tests/dkim/verify.py" --records rec tampered.eml \
		>verify.txt 2>&1; then
		echo "FAIL: a changed List-Unsubscribe still verified"
		failures=$((failures + 1))
	fi
else
	echo "note: no python3 that imports dkim: DKIM checks skipped"
fi

# --- a send after the unsubscribe ----------------------------------------
# (c3 was imported before it: the store checks suppressions when it
# claims, so Ann's job becomes suppressed, not sent)
ok "send c3" "$VOLLEY" send c3 --quiet
equals "$(count c3 sent)" 1 "c3: one sent"
equals "$(count c3 suppressed)" 2 "c3: Ann and Bob suppressed, not mailed"
ok "send c4" "$VOLLEY" send c4 --quiet
equals "$(count c4 sent)" 3 "c4, another list: all three sent"
ok "send c5" "$VOLLEY" send c5 --quiet
equals "$(count c5 sent)" 3 "c5, transactional: all three sent"
# and a new import into the list: suppressed at import
ok "campaign create c6" "$VOLLEY" campaign create c6 --template t \
	--list weekly
ok "import c6" "$VOLLEY" import c6 r.csv
equals "$(count c6 suppressed)" 2 "c6: suppressed at import"

# --- framing a proxy could read otherwise; bodies refused early ------------
cat > raw.py <<'PY'
import socket, sys, time
port, case, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
body = b"List-Unsubscribe=One-Click"
head = ("POST /u/%s HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n" % token)
if case == "two-lengths":
    s.sendall((head + "Content-Length: %d\r\nContent-Length: 5\r\n\r\n"
               % len(body)).encode() + body)
elif case == "length-and-chunked":
    s.sendall((head + "Content-Length: %d\r\nTransfer-Encoding: chunked"
               "\r\n\r\n" % len(body)).encode() + body)
elif case == "big-chunked":
    # Up to 64 MB if nobody stops it: more than the two sockets' buffers
    # can hold (tcp_wmem and tcp_rmem allow 4 + 32 MB here), so only a
    # server that reads the body can take all of it.  At 2 MB a server
    # that had stopped reading could still take it all into buffers.
    s.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
    sent = 0
    try:
        for _ in range(4096):
            s.sendall(b"4000\r\n" + b"x" * 16384 + b"\r\n")
            sent += 16384
    except OSError:
        pass
    print("sent", sent)
elif case == "half-then-term":
    s.sendall((head + "Content-Length: %d\r\n\r\n" % len(body)).encode()
              + body[:5])
    open("half.ready", "w").close()
    time.sleep(1.0)                # volley serve gets SIGTERM meanwhile
    s.sendall(body[5:])
s.settimeout(10)
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data and case != "half-then-term":
            break
except OSError:
    pass
print(data.split(b"\r\n")[0].decode("latin-1") if data else "nothing")
PY
python3 raw.py "$sport" two-lengths "$token" > raw1.txt 2>&1
has raw1.txt "HTTP/1.1 400" "two Content-Length headers: 400"
python3 raw.py "$sport" length-and-chunked "$token" > raw2.txt 2>&1
has raw2.txt "HTTP/1.1 400" "Content-Length and chunked: 400"
python3 raw.py "$sport" big-chunked "$token" > raw3.txt 2>&1
lacks raw3.txt "sent 67108864" \
	"a 64 MB chunked body: refused before the whole body was read"
# a path that is not /u/ but holds a token: the log has no token
curl -s -o /dev/null "$base//u/$token" || true
curl -s -o /dev/null "$base/x/u/$token" || true
sleep 0.2
tokmac=$(echo "$token" | sed 's/.*-//')
lacks serve.err "$tokmac" "no token in the log, whatever the path"

# --- SIGTERM -------------------------------------------------------------
# a request under way when SIGTERM comes is answered
rm -f half.ready
python3 raw.py "$sport" half-then-term "$token" > raw4.txt 2>&1 &
half_pid=$!
i=0
while [ ! -e half.ready ] && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
kill -TERM "$serve_pid"
wait "$half_pid"
has raw4.txt "HTTP/1.1 200" "a request under way at SIGTERM is answered"
wait "$serve_pid"
equals "$?" 0 "SIGTERM stops volley serve with status 0"
has serve.err "volley serve: stopped" "and it says so"
pids=$(echo "$pids" | sed "s/ $serve_pid//")

fails 1 "serve without a secret" "$VOLLEY" -c /dev/null serve
has err.txt "unsubscribe.secret_file" "names the setting"
fails 2 "serve --listen nonsense" "$VOLLEY" serve --listen nonsense
finish
