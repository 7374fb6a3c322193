#!/bin/sh
# send.sh - `volley send` end to end against the real `volley sink`:
# every recipient ends in exactly the state its server reply calls for
# (sent, deferred with a retry, failed), with the right attempt counts;
# a relay that closes with 421 after a few messages loses nobody; the
# rate limit holds, counted from the server's side; SIGTERM leaves no job
# in `sending`; kill -9 at random moments and resuming loses nobody and
# duplicates no more than the messages in flight; --follow picks up a
# recipient imported during the run.
. "$(dirname "$0")/lib.sh"

# check_eq DESCRIPTION GOT WANT
check_eq() { equals "$2" "$3" "$1"; }

# check DESCRIPTION COMMAND... - the command must succeed; its output is
# shown either way (it may say what it measured)
check() {
	desc=$1; shift
	checks=$((checks + 1))
	if "$@" >chk.out 2>&1; then
		sed 's/^/  /' chk.out
		return 0
	fi
	echo "FAIL: $desc"; sed 's/^/  | /' chk.out
	failures=$((failures + 1))
	return 1
}

pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

# start_sink_md NAME ARGS... - start_sink (lib.sh) with the maildir
# NAME.md and the log NAME.log
start_sink_md() {
	name=$1
	shift
	start_sink "$name" --maildir "$name.md" --log "$name.log" "$@" ||
		exit 1
}

stop_sink() {
	kill "$sink_pid" 2>/dev/null
	wait "$sink_pid" 2>/dev/null
}

# config NAME [EXTRA] - volley.cfg for the store NAME.db and the sink
config() {
	cat > volley.cfg <<CFG
store = { path = "$1.db"; };
smtp = { host = "127.0.0.1"; port = $port; tls = "none";
         connections = 4; };
send = { commit_interval_ms = 50; retry = { first_delay = 1; }; ${2:-} };
CFG
}

# state_of ADDR - the job state of one recipient, from the report
state_of() {
	sqlite3 "$store" "SELECT CASE state WHEN 0 THEN 'queued'
		WHEN 1 THEN 'sending' WHEN 2 THEN 'sent' WHEN 3 THEN 'deferred'
		ELSE 'failed' END || ' ' || attempts || ' ' ||
		coalesce(last_code, 0) FROM jobs_now WHERE address = '$1'"
}

# recount STORE - (campaign, state) pairs whose count (kept in C since
# schema 8) differs from a count of the jobs: 0 when all agree (a queued
# job in the range of a claim with an owner is sending, since schema 9;
# a job's result may be in the journal, which jobs_now applies, since 10)
recount() {
	sqlite3 "$1" "SELECT count(*) FROM campaign_counts c WHERE c.n <>
		(SELECT count(*) FROM jobs_now j WHERE j.campaign_id = c.campaign_id
		 AND CASE WHEN j.state = 0 AND EXISTS (SELECT 1 FROM claims k
		  WHERE k.campaign_id = j.campaign_id AND k.owner IS NOT NULL
		  AND j.id BETWEEN k.first_job AND k.last_job)
		 THEN 1 ELSE j.state END = c.state)"
}

# json_count KEY - from `volley status --json`, the first campaign's KEY
json_count() {
	"$VOLLEY" status --json | python3 -c \
		"import json,sys; print(json.load(sys.stdin)[0]['$1'])"
}

# recipients N FILE [EXTRA...] - a CSV of N good recipients and EXTRA
recipients() {
	n=$1
	f=$2
	shift 2
	python3 - "$n" "$f" "$@" <<'PY'
import sys
n, f = int(sys.argv[1]), sys.argv[2]
with open(f, "w") as out:
    out.write("email,first_name,last_name,city,plan\n")
    for i in range(n):
        out.write(f"r{i}@example.org,First{i},Last{i},City,pro\n")
    for a in sys.argv[3:]:
        out.write(f"{a},X,Y,Z,free\n")
PY
}

campaign() {
	"$VOLLEY" init >/dev/null &&
	"$VOLLEY" campaign create news --from news@example.org \
		--template "$SRC/examples/newsletter" >/dev/null &&
	"$VOLLEY" import news "$1" >/dev/null
}

SRC=$(cd "$(dirname "$0")/../.." && pwd)

# --- 1. replies decide each recipient's state ------------------------------
cat > faults.txt <<'F'
rcpt *@defer.test 451 4.3.0 try again later
rcpt *@bad.test 550 5.1.1 no such user
rcpt *@full.test 452 4.2.2 mailbox full
F
start_sink_md one --faults faults.txt
config one 'accounting_log = "acct.csv";' 
store=one.db
recipients 50 one.csv later@defer.test nobody@bad.test full@full.test
campaign one.csv
ok "send a campaign with faults" "$VOLLEY" send news --quiet
check "the summary counts" grep -q "sent 50, deferred 2, failed 1" out.txt
check_eq "50 messages stored" "$(ls one.md/new | wc -l)" 50
check_eq "a good recipient is sent once" "$(state_of r7@example.org)" \
	"sent 1 250"
check_eq "451 defers" "$(state_of later@defer.test)" "deferred 1 451"
check_eq "452 4.2.2 defers" "$(state_of full@full.test)" "deferred 1 452"
check_eq "550 fails" "$(state_of nobody@bad.test)" "failed 1 550"
check_eq "nothing left sending" "$(json_count sending)" 0
check_eq "the queue id is kept" \
	"$(sqlite3 one.db "SELECT count(*) FROM jobs_now WHERE queue_id LIKE 'new/%'")" 50
# the deferred come back after their delay; the failed never
sleep 1.2
ok "a second run tries the deferred again" "$VOLLEY" send news --quiet
check_eq "451 again: attempt 2" "$(state_of later@defer.test)" \
	"deferred 2 451"
check_eq "the failed one is not retried" "$(state_of nobody@bad.test)" \
	"failed 1 550"
check_eq "no new message stored" "$(ls one.md/new | wc -l)" 50
check "the accounting log has one line per attempt" python3 - acct.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert len(rows) == 55, len(rows)          # 53 attempts, then 2 more
assert all(len(r) == 9 for r in rows), rows[0]
bad = [r for r in rows if r[2] == "nobody@bad.test"]
assert bad == [bad[0]] and bad[0][3:7] == ["failed", "1", "550", "5.1.1"], bad
later = [r[3:6] for r in rows if r[2] == "later@defer.test"]
assert later == [["deferred", "1", "451"], ["deferred", "2", "451"]], later
sent = [r for r in rows if r[3] == "sent"]
assert len(sent) == 50 and all(r[8].startswith("new/") for r in sent)
print("accounting lines:", len(rows))
PY
stop_sink

# --- 2. 421 after 3 messages per connection: nobody lost ------------------
# (a 421 that does not say "slow down": a cap per connection, learned
# from the same count twice)
printf 'close-after 3 421 4.3.0 closing: limit per connection\n' > two.faults
start_sink_md two --faults two.faults
config two
store=two.db
recipients 40 two.csv
campaign two.csv
runs=0
while [ "$(json_count sent)" -lt 40 ] && [ $runs -lt 10 ]; do
	"$VOLLEY" send news --quiet >two.out.txt 2>&1
	runs=$((runs + 1))
	[ "$(json_count sent)" -lt 40 ] && sleep 1.1
done
check_eq "421 relay: all 40 sent in the end" "$(json_count sent)" 40
check_eq "421 relay: 40 stored, none twice" "$(ls two.md/new | wc -l)" 40
check_eq "421 relay: one run was enough" "$runs" 1
check "421 relay: the summary says the cap was learned" \
	grep -q "closed connections with 421 after 3 messages" two.out.txt
stop_sink

# --- 2b. 421 "rate limit" after deliveries: the whole pool pauses -----------
# throttle_backoff = 2 s: the relay sees no message for about 2 s after
# each round of 421s, the recipients struck are deferred, none is lost or
# sent twice
printf 'close-after 5 421 4.7.0 rate limit exceeded, slow down\n' \
	> twob.faults
start_sink_md twob --faults twob.faults
config twob 'throttle_backoff = 2;'
store=twob.db
recipients 30 twob.csv
campaign twob.csv
runs=0
while [ "$(json_count sent)" -lt 30 ] && [ $runs -lt 10 ]; do
	"$VOLLEY" send news --quiet >>twob.out.txt 2>&1
	runs=$((runs + 1))
	[ "$(json_count sent)" -lt 30 ] && sleep 1
done
check_eq "throttle: all 30 sent in the end" "$(json_count sent)" 30
check_eq "throttle: 30 stored, none twice" "$(ls twob.md/new | wc -l)" 30
check "throttle: the relay saw a pause of the throttle_backoff" \
	python3 - twob.log <<'PY'
import json, sys
ts = sorted(json.loads(l)["t"] for l in open(sys.argv[1])
            if '"code":250' in l)
gap = max(b - a for a, b in zip(ts, ts[1:]))
print("longest gap between deliveries: %d ms" % gap)
sys.exit(0 if gap >= 1800 else 1)
PY
check "throttle: the struck recipients were deferred with the 421" \
	grep -q "421 4.7.0 rate limit exceeded" twob.out.txt
stop_sink

# --- 2c. a connection that stalls holds no more than its window ------------
# the first connection hangs at its first MAIL until the command timeout
# (3 s): the other three send everything but what the stalled one had
# taken, which is at most its window (with DATA: two, plus one); those
# go to the others when it times out (nothing of theirs left: no doubt)
printf 'mail conn=1 silent\n' > twoc.faults
start_sink_md twoc --faults twoc.faults
config twoc
sed -i 's/connections = 4;/connections = 4; chunking = false;\
         timeouts = { command = 3; };/' volley.cfg
store=twoc.db
recipients 200 twoc.csv
campaign twoc.csv
"$VOLLEY" send news --quiet >twoc.out.txt 2>&1
check_eq "stall: all 200 sent" "$(json_count sent)" 200
check_eq "stall: 200 stored, none twice" "$(ls twoc.md/new | wc -l)" 200
check "stall: at most a window's worth waited for the timeout" \
	python3 - twoc.log <<'PY'
import json, sys
ts = sorted(json.loads(l)["t"] for l in open(sys.argv[1])
            if '"code":250' in l)
late = [t for t in ts if t - ts[0] >= 2500]
print("delivered only after the stalled connection timed out: %d" % len(late))
sys.exit(0 if len(late) <= 3 else 1)
PY
stop_sink

# --- 2d. a relay that drops every connection: reconnects spread out -------
# each connection is dropped at its first MAIL (nothing went, so its
# messages go to the others at once): the pool reconnects at most
# smtp.reconnects_per_second (default 10) times a second, evenly
printf 'mail msg=1 drop\n' > twod.faults
start_sink_md twod --faults twod.faults
config twod
sed -i 's/connections = 4;/connections = 4; chunking = false;/' volley.cfg
store=twod.db
recipients 8 twod.csv
campaign twod.csv
"$VOLLEY" send news --quiet >twod.out.txt 2>&1
check "reconnects: spread at the default 10 a second" \
	python3 - twod.log <<'PY'
import json, sys
ts = sorted(json.loads(l)["t"] for l in open(sys.argv[1])
            if json.loads(l)["msg"] == 1)
gaps = [b - a for a, b in zip(ts[4:], ts[5:])]
print("connections %d, gaps between reconnects (ms): %s" % (len(ts), gaps))
# The median and the whole span, not each gap: one of the first four
# connections, slow to reach MAIL on a loaded machine, may be logged
# among the reconnects and cut one gap in two; a pool that reconnects
# all at once still has gaps near 0.
gaps.sort()
ok = (len(ts) >= 8 and gaps[len(gaps) // 2] >= 80 and
      sum(gaps) >= 80 * len(gaps))
sys.exit(0 if ok else 1)
PY
check_eq "reconnects: nobody sent, nobody failed" \
	"$(json_count sent) $(json_count failed)" "0 0"
stop_sink

# --- 3. the rate limit, counted by the server ---------------------------
start_sink_md three
config three
store=three.db
recipients 60 three.csv
campaign three.csv
ok "send at 20 messages per second" "$VOLLEY" send news --quiet --rate 20
check_eq "60 stored" "$(ls three.md/new | wc -l)" 60
check "no second holds more than 20 (+burst)" python3 - three.log <<'PY'
import json, sys
ts = sorted(json.loads(l)["t"] for l in open(sys.argv[1]) if '"code":250' in l)
worst = 0
for i, t in enumerate(ts):
    j = i
    while j < len(ts) and ts[j] < t + 1000:
        j += 1
    worst = max(worst, j - i)
span = (ts[-1] - ts[0]) / 1000
print("busiest second:", worst, "span:", span)
# The limiter's bound is 20 + its burst of 2 per second of slots
# (test_ratelimit checks that exactly); the sink stamps the end of data,
# so a stall of a client or sink thread can bunch a few more into one
# second of stamps: 2 more allowed, and the long-run rate held to 20.
sys.exit(0 if worst <= 24 and span >= 2.5 and
         (len(ts) - 1) / span <= 21 else 1)
PY
stop_sink

# --- 4. SIGTERM: stop cleanly, nothing left in sending ---------------------
# four_conns DIR - the sink stored messages from four connections (its
# file names say which: ...CconnNmsg...): the signal below must not land
# before a slow start had them
four_conns() {
	[ "$(ls "$1" 2>/dev/null | sed -n 's/.*C\([0-9]*\)N.*/\1/p' |
		sort -u | wc -l)" -ge 4 ]
}
printf 'message delay 20\n' > four.faults
start_sink_md four --faults four.faults
config four
store=four.db
recipients 2000 four.csv
campaign four.csv
"$VOLLEY" send news --quiet >four.send.out 2>&1 &
send_pid=$!
wait_until 20 four_conns four.md/new
kill -TERM "$send_pid"
wait "$send_pid"
check_eq "SIGTERM: exit 143" $? 143
check "SIGTERM: says how many remain" \
	grep -q "stopped by SIGTERM: [0-9]* recipients remain" four.send.out
check_eq "SIGTERM: no job left sending" "$(json_count sending)" 0
check_eq "SIGTERM: the counts agree with the jobs" "$(recount four.db)" 0
sent4=$(json_count sent)
check "SIGTERM: some were sent, not all" test "$sent4" -gt 0 -a "$sent4" -lt 2000
check_eq "SIGTERM: every stored message is recorded sent" \
	"$(ls four.md/new | wc -l)" "$sent4"
stop_sink
# the four connections and no other: none opened after the signal
check "SIGTERM: no connection opened after the signal" \
	grep -q "volley sink: 4 connections" four.err

# --- 4b. SIGTERM while the writer sleeps: no connection opens after it ------
# (the store writer notices a stop only at its next wake-up, a second
# here; the workers must not cycle connections meanwhile)
start_sink_md fourb
config fourb
sed -i -e 's/connections = 4;/connections = 4; max_messages_per_connection = 0;/' \
	-e 's/commit_interval_ms = 50;/commit_interval_ms = 1000;/' volley.cfg
store=fourb.db
recipients 50000 fourb.csv
campaign fourb.csv
"$VOLLEY" send news --quiet >fourb.send.out 2>&1 &
send_pid=$!
wait_until 20 four_conns fourb.md/new
kill -TERM "$send_pid"
wait "$send_pid"
check_eq "SIGTERM, writer asleep: exit 143" $? 143
stop_sink
check "SIGTERM, writer asleep: the four connections and no other" \
	grep -q "volley sink: 4 connections" fourb.err
check_eq "SIGTERM, writer asleep: every stored message is recorded sent" \
	"$(ls fourb.md/new | wc -l)" "$(json_count sent)"
check_eq "SIGTERM, writer asleep: the counts agree with the jobs" \
	"$(recount fourb.db)" 0

# --- 5. kill -9 at random moments, then resume: nobody lost ----------------
start_sink_md five
config five "lease_seconds = 10;"
store=five.db
recipients 20000 five.csv
campaign five.csv
for delay in 0.7 1.3 0.4 2.1; do
	"$VOLLEY" send news --quiet >/dev/null 2>&1 &
	send_pid=$!
	sleep "$delay"
	kill -9 "$send_pid"
	wait "$send_pid" 2>/dev/null
done
ok "the run after the crashes finishes" "$VOLLEY" send news --quiet
check_eq "crash: the counts agree with the jobs" "$(recount five.db)" 0
# A recipient caught by two kills is in doubt twice: held, never sent a
# third time unasked (how many depends on the machine's speed).  The
# user's release sends them again.
held=$(json_count in_doubt)
check_eq "crash: every recipient sent or held in doubt" \
	"$(( $(json_count sent) + held ))" 20000
check_eq "crash: those held were interrupted, said so" \
	"$(sqlite3 five.db "SELECT count(*) FROM jobs_now WHERE state = 3
		AND doubts = 2 AND last_reply LIKE '%may have been delivered'")" \
	"$held"
ok "crash: release those held" "$VOLLEY" release news --in-doubt
ok "crash: the run after the release finishes" "$VOLLEY" send news --quiet
check_eq "crash: all 20000 sent" "$(json_count sent)" 20000
check_eq "crash: the counts still agree after the release" \
	"$(recount five.db)" 0
echo "  held in doubt after the crashes: $held"
check "crash: every recipient accepted at least once, few twice" \
	python3 - five.log <<'PY'
import json, sys, collections
seen = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("code") == 250 and r.get("file"):
        for rc in r["rcpts"]:
            if rc["code"] == 250:
                seen[rc["to"]] += 1
missing = [f"r{i}@example.org" for i in range(20000) if seen[f"r{i}@example.org"] == 0]
dups = sum(c - 1 for c in seen.values() if c > 1)
print(f"accepted {len(seen)} distinct, missing {len(missing)}, duplicates {dups}")
# each kill may duplicate what the sink accepted but the store had not
# committed yet: the messages of one commit interval and one commit,
# plus those in flight - here up to ~20,000 msg/s x (50 + ~50) ms each
sys.exit(0 if not missing and dups <= 4 * 2000 else 1)
PY
stop_sink

# --- 6. --follow delivers a recipient imported during the run -------------
start_sink_md six
config six
store=six.db
recipients 5 six.csv
campaign six.csv
"$VOLLEY" send news --follow --quiet >six.out 2>&1 &
send_pid=$!
sleep 1
recipients 0 late.csv late@example.org
"$VOLLEY" import news late.csv >/dev/null
i=0
while [ "$(state_of late@example.org | cut -d' ' -f1)" != sent ] && [ $i -lt 30 ]; do
	sleep 0.1
	i=$((i + 1))
done
check_eq "--follow: a late recipient is sent within 3 s" \
	"$(state_of late@example.org | cut -d' ' -f1)" sent
kill -TERM "$send_pid"
wait "$send_pid"
check_eq "--follow: SIGTERM ends it with 143" $? 143
stop_sink

# --- 7. in doubt: held for the user with send.in_doubt = "hold" ----------
printf 'message *@doubt.test drop\n' > seven.faults
start_sink_md seven --faults seven.faults
config seven 'in_doubt = "hold";'
store=seven.db
recipients 3 seven.csv maybe@doubt.test
campaign seven.csv
"$VOLLEY" send news --quiet >seven.out 2>&1
check_eq "in doubt: the others are sent" "$(json_count sent)" 3
check_eq "in doubt: held, counted by status" "$(json_count in_doubt)" 1
check "in doubt: the reply says why" grep -q "in doubt" seven.out
check "in doubt: status says how to release it" sh -c \
	"'$VOLLEY' status | grep -q 'release news --in-doubt'"
"$VOLLEY" send news --quiet >/dev/null 2>&1
check_eq "in doubt: a later run leaves it held" "$(json_count in_doubt)" 1
stop_sink
start_sink_md seven2
config seven 'in_doubt = "hold";'
ok "release it" "$VOLLEY" release news --in-doubt
has out.txt "released 1 recipient" "release says how many"
check_eq "released: nothing held" "$(json_count in_doubt)" 0
ok "the next send takes it" "$VOLLEY" send news --quiet
check_eq "released: now sent" "$(state_of maybe@doubt.test | cut -d' ' -f1)" sent
stop_sink

# --- 8. replies out of step on the first connection: the run says so once,
# stops pipelining to the server, and the message lost before its body
# went goes on the next connection at once (retry_requeue): nobody
# deferred, nobody lost.  (DATA, one connection: with a BDAT window, the
# messages written whole would rightly be in doubt.)
printf 'rcpt conn=1 malformed 354 go ahead\n' > eight.faults
start_sink_md eight --faults eight.faults
config eight
sed -i 's/connections = 4;/connections = 1; chunking = false;/' volley.cfg
store=eight.db
recipients 10 eight.csv
campaign eight.csv
"$VOLLEY" send news --quiet >eight.out 2>&1
check_eq "out of step: all 10 sent" "$(json_count sent)" 10
check_eq "out of step: none deferred" "$(json_count deferred)" 0
check_eq "out of step: 10 stored, none twice" "$(ls eight.md/new | wc -l)" 10
check_eq "out of step: said once" \
	"$(grep -c 'not pipelining to this server for the rest of the run' \
	   eight.out)" 1
check "out of step: the summary says it too" grep -qi "pipelin" eight.out
stop_sink

finish
