#!/bin/sh
# postfix_bounce.sh - a real bounce, end to end: a campaign with a VERP
# envelope sender goes through the private Postfix of postfix_env.sh,
# which relays it to a `volley sink` playing the final destination; the
# sink refuses one recipient with 550 5.1.1, so Postfix's bounce daemon
# writes a real RFC 3464 DSN to the VERP address, and Postfix's virtual
# agent delivers that into the Maildir of bounces@example.test
# (recipient_delimiter +).  `volley bounces ingest` reads that Maildir:
# the bounce must match its recipient by the VERP token and suppress the
# address as a hard bounce, and the next campaign to the same addresses
# must store it suppressed and not send it.  Read again, nothing new.
# A second path: the same kind of DSN handed to `volley bounces ingest -`
# on standard input by Postfix's pipe(8), as docs/bounces.md sets it up.
#
# Needs root and the Debian packages postfix, dovecot-core and openssl,
# as postfix.sh; exits 77 (CTest: skipped) without them, except under
# CI=true, where that is a failure.  Only loopback traffic.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/postfix_env.sh"

skip=77
[ "${CI:-}" = true ] && skip=1
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the private Postfix and Dovecot need root"; exit $skip
fi
PATH=$PATH:/usr/sbin:/sbin
for cmd in postfix dovecot openssl; do
	command -v "$cmd" >/dev/null 2>&1 ||
		{ echo "SKIP: no $cmd (run scripts/install-deps --tests)"
		  exit $skip; }
done

pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; postfix_env_stop;
	rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
postfix_env_start || exit 1
MD=$POSTFIX_MAILDIR_ROOT
PD=$POSTFIX_ENV_DIR
VOLLEY_TEST_PW=$POSTFIX_PASSWORD
export VOLLEY_TEST_PW

# The final destination: a sink that refuses gone@ and gone2@.
printf '%s\n' 'rcpt gone@sink.test 550 5.1.1 <gone@sink.test>: User unknown' \
	'rcpt gone2@sink.test 550 5.1.1 <gone2@sink.test>: User unknown' \
	> faults.txt
start_sink s --maildir smd --log sink.jsonl --faults faults.txt || finish
sink_port=$port

# --- Postfix: relay sink.test to the sink, a Maildir for bounces@, and a
# pipe(8) transport for pipe.test that runs `volley bounces ingest -` ---
mkdir -p "$MD/bounces/Maildir/new" "$MD/bounces/Maildir/cur" \
	"$MD/bounces/Maildir/tmp"
chown -R 65534:65534 "$MD/bounces"
echo "bounces@example.test bounces/Maildir/" >> "$PD/etc/vmailbox"
printf '%s\n' "sink.test smtp:[127.0.0.1]:$sink_port" \
	"pipe.test volley:" > "$PD/etc/transport"
# The pipe runs as nobody: its own copy of volley, a store and a
# configuration it may read and write.
mkdir -p pipe
cp "$VOLLEY" pipe/volley
chmod 755 "$work" pipe pipe/volley
# A delivery the pipe defers (volley exits 75: "nothing lost: run
# again") is tried again within seconds, not after Postfix's default
# 300 s backoff: CI once saw the first attempt deferred.
cat >> "$PD/etc/main.cf" <<EOF
recipient_delimiter = +
transport_maps = texthash:$PD/etc/transport
relay_domains = pipe.test
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
EOF
cat >> "$PD/etc/master.cf" <<EOF
smtp      unix  -       -       n       -       -       smtp
volley    unix  -       n       n       -       1       pipe
  flags=DR user=nobody argv=$work/pipe/volley -c $work/pipe/volley.cfg
  bounces ingest -
EOF
touch -d "1 hour ago" "$PD/etc/"*
: > reload.mark
postfix -c "$PD/etc" reload >reload.out 2>&1 ||
	{ cat reload.out; postfix_env_logs; exit 1; }
i=0
until grep -q "reload -- version" "$POSTFIX_LOG" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "FAIL: no Postfix reload"; exit 1; }
	sleep 0.05
done
sleep 0.5	# the master restarts its services

# --- volley: a campaign with a VERP sender, through Postfix ------------------
openssl rand -hex 32 > verp.secret
chmod 600 verp.secret
cat > volley.cfg <<EOF
store = { path = "test.db"; };
verp = { secret_file = "verp.secret"; };
smtp = {
  host = "127.0.0.1";
  port = $POSTFIX_PORT;
  tls = "starttls";
  tls_verify = true;
  ca_file = "$POSTFIX_CA";
  tls_name = "localhost";
  username = "$POSTFIX_USER";
  password_env = "VOLLEY_TEST_PW";
  helo_name = "client.example.test";
  connections = 1;
};
EOF
mkdir -p t
printf 'subject = "News";\nfrom = "Shop <shop@example.test>";\n' \
	> t/message.cfg
printf 'Hello {{name}}\n' > t/body.txt
printf 'email,name\nok@sink.test,Ok\ngone@sink.test,Gone\n' > r.csv
ok "init" "$VOLLEY" init
ok "campaign c1" "$VOLLEY" campaign create c1 --template t \
	--from 'bounces+{{verp}}@example.test'
ok "import c1" "$VOLLEY" import c1 r.csv
ok "send c1 through Postfix" "$VOLLEY" send c1 --quiet
equals "$(count c1 sent)" 2 "Postfix took both"

# wait_file DIR N - wait up to 20 s until DIR holds N files
wait_file() {
	i=0
	while [ "$(ls "$1" 2>/dev/null | wc -l)" -lt "$2" ]; do
		i=$((i + 1))
		[ $i -gt 400 ] && return 1
		sleep 0.05
	done
	return 0
}
if ! wait_file "$MD/bounces/Maildir/new" 1; then
	echo "FAIL: no DSN in bounces@'s Maildir"
	postfix_env_logs
	failures=$((failures + 1))
	finish
fi
dsn=$(ls "$MD/bounces/Maildir/new/"* | head -1)
has "$dsn" "Delivered-To: bounces+" "Postfix delivered the DSN to the VERP \
address"
has "$dsn" "report-type=delivery-status" "a real RFC 3464 DSN"
has "$dsn" "Status: 5.1.1" "the DSN says 5.1.1"
has sink.jsonl '"ok@sink.test"' "the sink took ok@"

ok "ingest Postfix's Maildir" "$VOLLEY" bounces ingest -v \
	"$MD/bounces/Maildir"
has err.txt "1 messages, 1 bounces (1 new), 0 unmatched, 1 suppressed" \
	"ingest: the summary"
has out.txt "gone@sink.test bad-mailbox (hard), campaign 'c1' job" \
	"ingest: gone@, hard, campaign c1"
has out.txt "by verp, new, suppressed (hard-bounce)" \
	"ingest: matched by VERP, a hard-bounce suppression"
ok "ingest again" "$VOLLEY" bounces ingest "$MD/bounces/Maildir"
has err.txt "1 bounces (0 new)" "again: nothing new"
ok "list" "$VOLLEY" bounces list c1 --format json
has out.txt '"address":"gone@sink.test"' "list: gone@"
has out.txt '"matched_by":"verp"' "list: by VERP"
has out.txt '"code":550' "list: the code Postfix reported"

# --- the next campaign: gone@ stored suppressed, not sent --------------------
ok "campaign c2" "$VOLLEY" campaign create c2 --template t \
	--from 'bounces+{{verp}}@example.test'
ok "import c2" "$VOLLEY" import c2 r.csv
ok "report c2" "$VOLLEY" report c2
has out.txt "gone@sink.test,suppressed" "c2: gone@ stored suppressed"
has out.txt "ok@sink.test,queued" "c2: ok@ queued"
equals "$(count c2 suppressed)" 1 "c2: status counts it suppressed"
: > sink.jsonl
ok "send c2" "$VOLLEY" send c2 --quiet
equals "$(count c2 sent)" 1 "c2: one sent"
i=0
until grep -q '"ok@sink.test"' sink.jsonl || [ $i -gt 200 ]; do
	i=$((i + 1)); sleep 0.05
done
has sink.jsonl '"ok@sink.test"' "c2: ok@ reached the sink"
lacks sink.jsonl '"gone@sink.test"' "c2: gone@ was not sent"

# --- Postfix's pipe(8): a DSN to bounces@pipe.test, ingested from stdin -------
cp verp.secret pipe/verp.secret
cat > pipe/volley.cfg <<EOF
store = { path = "$work/test.db"; };
verp = { secret_file = "verp.secret"; };
EOF
chown 65534:65534 pipe/volley.cfg pipe/verp.secret
# the store's folder and file must be writable by the pipe's user
chmod 777 "$work"
chmod 666 test.db
[ -e test.db-wal ] && chmod 666 test.db-wal test.db-shm
ok "campaign c3 (bounces to the pipe)" "$VOLLEY" campaign create c3 \
	--template t --from 'bounces+{{verp}}@pipe.test'
printf 'email,name\ngone2@sink.test,Gone2\n' > r3.csv
ok "import c3" "$VOLLEY" import c3 r3.csv
ok "send c3 through Postfix" "$VOLLEY" send c3 --quiet
# and whatever the root processes above left of the store, writable by
# the pipe's user
for f in test.db test.db-wal test.db-shm; do
	[ -e "$f" ] && chmod 666 "$f"
done
bounced_c3() { "$VOLLEY" bounces list c3 | grep -q gone2@sink.test; }
wait_until 60 bounced_c3
ok "list c3" "$VOLLEY" bounces list c3
has out.txt "gone2@sink.test,bad-mailbox,1,c3" \
	"pipe: the DSN reached volley through pipe(8), matched, hard"
has out.txt ",verp," "pipe: by VERP"
if ! grep -q "status=sent (delivered via volley service" "$POSTFIX_LOG"
then
	failures=$((failures + 1))
	echo "FAIL: pipe: Postfix did not log the DSN delivered via volley"
	postfix_env_logs
fi
checks=$((checks + 1))

[ "$failures" -eq 0 ] || postfix_env_logs
finish
