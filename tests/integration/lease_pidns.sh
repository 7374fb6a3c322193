#!/bin/sh
# lease_pidns.sh - two `volley send` runs on one store, each PID 1 of its
# own PID namespace on the same host (as two containers would be), at
# the same time against a slow `volley sink`: neither may take the
# other's live leases back as a dead run's.  With "HOST:PID" owners both
# were "HOST:1", and the second run reclaimed (and sent again) what the
# first was still sending.  Every recipient must be accepted once, no job
# be in doubt, and neither run say it took anything back.
# Needs unshare(1) and the right to make PID namespaces: as root, or
# else in a user namespace of its own where the kernel allows that; exits
# 77 (CTest: skipped) without, except under CI=true, where that is a
# failure.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

skip=77
[ "${CI:-}" = true ] && skip=1
newpid="unshare --pid --fork --mount-proc"
if ! $newpid true 2>/dev/null; then
	newpid="unshare --user --map-root-user --pid --fork --mount-proc"
	if ! $newpid true 2>/dev/null; then
		echo "SKIP: unshare --pid is not permitted here"
		exit $skip
	fi
fi
command -v sqlite3 >/dev/null 2>&1 || { echo "SKIP: no sqlite3"; exit $skip; }

SRC=$(cd "$here/../.." && pwd)
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

# 80 at 200 ms through run a's 2 connections: 8 s alone, so that run b,
# however slow to start (ASan, a loaded machine), finds work to share
N=80
printf 'message delay 200\n' > slow.faults
start_sink sink --log sink.log --faults slow.faults || exit 1

# cfg NAME - NAME.cfg: the shared store and sink, small claims, a lease
# far longer than the test (only a reclaim by owner can take a job back),
# and the run's own EHLO name so that the sink's log tells the runs apart
cfg() {
	cat > "$1.cfg" <<CFG
store = { path = "test.db"; };
smtp = { host = "127.0.0.1"; port = $port; tls = "none";
         connections = 2; helo_name = "$1.test"; };
send = { batch_size = 4; lease_seconds = 600; commit_interval_ms = 50; };
CFG
}
cfg a
cfg b

python3 - "$N" list.csv <<'PY'
import sys
n, f = int(sys.argv[1]), sys.argv[2]
with open(f, "w") as out:
    out.write("email,first_name,last_name,city,plan\n")
    for i in range(n):
        out.write(f"r{i}@example.org,First{i},Last{i},City,pro\n")
PY
ok "init" "$VOLLEY" -c a.cfg init &&
ok "campaign" "$VOLLEY" -c a.cfg campaign create news \
	--from news@example.org --template "$SRC/examples/newsletter" &&
ok "import" "$VOLLEY" -c a.cfg import news list.csv || finish

# run NAME - `volley send` as PID 1 of a new PID namespace, in the
# background; NAME.pid gets the PID it had there, NAME.rc its status
run() {
	$newpid sh -c \
		'echo $$ > "$1.pid"; exec "$2" -c "$1.cfg" send news' \
		sh "$1" "$VOLLEY" >"$1.out" 2>&1 &
	echo $! > "$1.bg"
	pids="$pids $!"
}

# leased - how many leases are held right now: deferred jobs leased one
# by one, and claims of queued jobs (with an owner)
leased() {
	sqlite3 test.db "SELECT (SELECT count(*) FROM jobs WHERE state = 1)
		+ (SELECT count(*) FROM claims WHERE owner IS NOT NULL)" \
		2>/dev/null || echo 0
}

run a
i=0
while [ "$(leased)" -eq 0 ] && [ $i -lt 100 ]; do
	sleep 0.05
	i=$((i + 1))
done
check_a=$(leased)
run b
# the owners while both hold leases, for the log
sleep 0.5
sqlite3 test.db "SELECT lease_owner FROM jobs WHERE state = 1
	UNION SELECT owner FROM claims WHERE owner IS NOT NULL" \
	> owners.txt 2>/dev/null
sed 's/^/  lease owner: /' owners.txt
wait "$(cat a.bg)"
equals $? 0 "run a exits 0"
wait "$(cat b.bg)"
equals $? 0 "run b exits 0"
sed 's/^/  a: /' a.out
sed 's/^/  b: /' b.out
pids=$sink_pid

checks=$((checks + 1))
if [ "$check_a" -eq 0 ]; then
	echo "FAIL: run a never held a lease"; failures=$((failures + 1))
fi
equals "$(cat a.pid)" 1 "run a is PID 1 of its namespace"
equals "$(cat b.pid)" 1 "run b is PID 1 of its namespace"
lacks a.out "taken back" "run a reclaims nothing"
lacks b.out "taken back" "run b reclaims nothing"
equals "$(count news sent)" "$N" "every recipient is sent"
equals "$(sqlite3 test.db "SELECT count(*) FROM jobs_now WHERE doubts > 0 OR
	last_reply LIKE 'interrupted%'")" 0 "no job was taken back in doubt"

checks=$((checks + 1))
if ! python3 - "$N" sink.log >sinkcheck.txt 2>&1 <<'PY'
import json, sys, collections
n = int(sys.argv[1])
seen = collections.Counter()
helos = collections.Counter()
for line in open(sys.argv[2]):
    r = json.loads(line)
    if r.get("code") != 250:
        continue
    for rc in r.get("rcpts", []):
        if rc["code"] == 250:
            seen[rc["to"]] += 1
            helos[r["helo"]] += 1
want = {f"r{i}@example.org" for i in range(n)}
missing = sorted(want - set(seen))
twice = sorted(a for a, c in seen.items() if c > 1)
print(f"accepted {sum(seen.values())}, distinct {len(seen)}, by run",
      dict(helos))
if missing or twice:
    print("missing:", missing, "accepted more than once:", twice)
    sys.exit(1)
# both runs must have sent, or they did not overlap and proved nothing
sys.exit(0 if helos["a.test"] > 0 and helos["b.test"] > 0 else 1)
PY
then
	echo "FAIL: the sink's log:"; failures=$((failures + 1))
fi
sed 's/^/  /' sinkcheck.txt

finish
