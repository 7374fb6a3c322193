#!/bin/sh
# loadtest_vs_smtp_source.sh - `volley loadtest` side by side with Postfix's
# smtp-source, both loading Postfix's smtp-sink on loopback: the same
# connections, the same number of messages, the same bytes per message.
# Prints messages per second and client CPU per 1,000 messages (user +
# system, from /usr/bin/time), the median of ROUNDS rounds each, and what
# smtp-sink spent meanwhile (from /proc): a sink near 100% busy is the
# limit, whatever the client.
#
#   bench/loadtest_vs_smtp_source.sh [PATH-TO-VOLLEY]
#   C=8 N=100000 ROUNDS=3 bench/loadtest_vs_smtp_source.sh build/cli/volley
#
# smtp-source -l 4096 sends a 4096-byte body under ~112 bytes of headers
# (4208 bytes of content, as `volley sink --log` counts them); volley's
# --size is the whole message, so it gets --size $WIRE (default 4208).
#
# Needs /usr/sbin/smtp-sink and smtp-source (Debian: postfix; installed
# with apt-get if missing - the Postfix daemon is never started) and
# /usr/bin/time.  Only loopback is used; only the processes this script
# started are stopped, by PID.
set -eu

VOLLEY=${1:-build/cli/volley}
C=${C:-8}
N=${N:-100000}
ROUNDS=${ROUNDS:-3}
BODY=${BODY:-4096}
WIRE=${WIRE:-4208}

if [ ! -x /usr/sbin/smtp-sink ] || [ ! -x /usr/sbin/smtp-source ]; then
	echo "installing postfix for smtp-sink and smtp-source (not started)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >/dev/null
	apt-get install -y --no-install-recommends postfix >/dev/null
fi
[ -x "$VOLLEY" ] || { echo "no volley at $VOLLEY" >&2; exit 1; }

work=$(mktemp -d /tmp/volley-lt-bench-XXXXXX)
sink_pid=""
cleanup() {
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && \
		wait "$sink_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/sbin/smtp-sink -u nobody -c "127.0.0.1:$port" 1000 >/dev/null 2>&1 &
sink_pid=$!
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1).close()" 2>/dev/null; do
	i=$((i + 1)); [ "$i" -lt 50 ] || { echo "smtp-sink did not start" >&2; exit 1; }
	sleep 0.1
done

tck=$(getconf CLK_TCK)
# sink_cpu - smtp-sink's CPU so far (user + system), in seconds
sink_cpu() {
	awk -v t="$tck" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$sink_pid/stat"
}

# timed NAME COMMAND... - run it under /usr/bin/time; appends
# "elapsed user system sink-cpu" to $work/NAME
timed() {
	name=$1; shift
	before=$(sink_cpu)
	/usr/bin/time -f "%e %U %S" -o "$work/t" "$@" >"$work/out" 2>"$work/err" || {
		echo "FAILED: $*" >&2; cat "$work/err" >&2; exit 1; }
	after=$(sink_cpu)
	echo "$(cat "$work/t") $(echo "$after $before" | awk '{ printf "%.2f", $1 - $2 }')" >> "$work/$name"
}

echo "smtp-sink on 127.0.0.1:$port; $C connections, $N messages, $ROUNDS rounds"
r=1
while [ "$r" -le "$ROUNDS" ]; do
	timed source /usr/sbin/smtp-source -d -N -s "$C" -m "$N" -l "$BODY" \
		"127.0.0.1:$port"
	timed volley "$VOLLEY" loadtest --server "127.0.0.1:$port" \
		--connections "$C" --count "$N" --size "$WIRE" --quiet \
		--json "$work/volley.json"
	python3 - "$work/volley.json" "$N" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
if j["messages"]["sent"] != int(sys.argv[2]):
    sys.exit("volley sent %s of %s" % (j["messages"]["sent"], sys.argv[2]))
PY
	echo "round $r: smtp-source $(tail -1 "$work/source"), volley $(tail -1 "$work/volley") (elapsed, client user, client sys, smtp-sink CPU; seconds)"
	r=$((r + 1))
done

python3 - "$work/source" "$work/volley" "$N" <<'PY'
import statistics, sys
n = int(sys.argv[3])
rows = []
for name, path in (("smtp-source -d", sys.argv[1]), ("volley loadtest", sys.argv[2])):
    runs = [list(map(float, l.split())) for l in open(path)]
    rate = statistics.median(n / r[0] for r in runs)
    cpu = statistics.median((r[1] + r[2]) / n * 1e6 for r in runs)
    sink = statistics.median(r[3] / n * 1e6 for r in runs)
    busy = statistics.median(100 * r[3] / r[0] for r in runs)
    rows.append((name, rate, cpu, sink, busy))
print()
print("%-16s %9s %16s %16s %10s" % ("client", "msg/s", "client CPU", "smtp-sink CPU",
                                     "sink busy"))
print("%-16s %9s %16s %16s %10s" % ("", "", "ms/1000 msgs", "ms/1000 msgs", ""))
for name, rate, cpu, sink, busy in rows:
    print("%-16s %9.0f %16.1f %16.1f %9.0f%%" % (name, rate, cpu, sink, busy))
(_, r0, c0, _, _), (_, r1, c1, _, _) = rows
print("volley / smtp-source: %.2fx the rate, %.2fx the client CPU per message"
      % (r1 / r0, c1 / c0))
PY
