#!/bin/sh
# conn_sinks.sh - the SMTP engine alone (bench_conn: pre-built 4 KB
# messages, 8 connections, no store, no rendering) against Postfix's
# smtp-sink and against volley sink, next to Postfix's smtp-source as the
# client on the same sinks.  Loopback only; each sink is started here on
# a free port and stopped by its PID.  Prints the median of ROUNDS runs.
#   bench/conn_sinks.sh [MESSAGES [ROUNDS]]
set -eu
cd "$(dirname "$0")/.."
messages=${1:-100000}
rounds=${2:-3}
volley=build/cli/volley
bench=build/bench/bench_conn
PATH=$PATH:/usr/sbin
for t in "$volley" "$bench"; do
	[ -x "$t" ] || { echo "build first: scripts/build" >&2; exit 1; }
done
command -v smtp-sink >/dev/null || { echo "needs postfix (smtp-sink)" >&2; exit 1; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null || true; done' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# bench_conn ARGS... - one line: msg/s and us/message, medians
run_bench() {
	out=$(mktemp)
	for r in $(seq "$rounds"); do
		"$bench" --messages "$messages" "$@" | tail -1 >>"$out"
	done
	rate=$(awk '{print $1}' "$out" | median)
	cpu=$(sed 's/.*CPU \([0-9.]*\) us.*/\1/' "$out" | median)
	rm -f "$out"
	echo "$rate msg/s, $cpu us client CPU/msg"
}

# smtp-source on port: msg/s and client CPU/msg, medians
run_source() {
	out=$(mktemp)
	for r in $(seq "$rounds"); do
		/usr/bin/time -f "%e %U %S" smtp-source -d -s 8 -m "$messages" \
			-l 4096 -f bench@volley.test -t bench@sink.test \
			"127.0.0.1:$1" >/dev/null 2>>"$out"
	done
	rate=$(awk -v m="$messages" 'NF==3 {print int(m/$1)}' "$out" | median)
	cpu=$(awk -v m="$messages" 'NF==3 {printf "%.1f\n", ($2+$3)*1e6/m}' "$out" | median)
	rm -f "$out"
	echo "$rate msg/s, $cpu us client CPU/msg"
}

p1=$(free_port)
smtp-sink -u nobody -c "127.0.0.1:$p1" 1000 >/dev/null 2>&1 &
pids="$pids $!"
p2=$(free_port)
"$volley" sink -q --listen "127.0.0.1:$p2" >/dev/null 2>&1 &
pids="$pids $!"
sleep 0.5

echo "$messages messages of 4 KB, 8 connections, median of $rounds"
echo "smtp-sink   <- smtp-source -d:            $(run_source "$p1")"
echo "smtp-sink   <- volley (PIPELINING):       $(run_bench --port "$p1")"
echo "volley sink <- smtp-source -d:            $(run_source "$p2")"
echo "volley sink <- volley (PIPELINING, DATA): $(run_bench --port "$p2" --no-chunking)"
echo "volley sink <- volley (CHUNKING, BDAT):   $(run_bench --port "$p2")"
