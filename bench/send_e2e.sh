#!/bin/sh
# send_e2e.sh - `volley send` end to end: N recipients (5 variables each)
# imported into a fresh store, sent with the given template through 8
# connections to a sink started here on loopback, every result recorded.
# Prints messages per second (the send alone), the client's CPU per
# message and its peak memory (max RSS, /usr/bin/time).
#   bench/send_e2e.sh [N [TEMPLATE_DIR [volley|smtp-sink]]]
# Defaults: 100000, bench/text-template, volley (volley sink).
set -eu
cd "$(dirname "$0")/.."
n=${1:-100000}
template=$(cd "${2:-bench/text-template}" && pwd)
sink=${3:-volley}
volley=$(pwd)/build/cli/volley
PATH=$PATH:/usr/sbin
[ -x "$volley" ] || { echo "build first: scripts/build" >&2; exit 1; }

work=$(mktemp -d /tmp/volley-bench-XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [ "$sink" = smtp-sink ]; then
	smtp-sink -u nobody -c "127.0.0.1:$port" 1000 >/dev/null 2>&1 &
else
	"$volley" sink -q --listen "127.0.0.1:$port" >/dev/null 2>&1 &
fi
pid=$!
python3 - "$n" <<'PY'
import sys
n = int(sys.argv[1])
with open("r.csv", "w") as f:
    f.write("email,first_name,last_name,city,plan\n")
    for i in range(n):
        f.write(f"user{i * 7919 % n}.{i}@example.org,First{i},Last{i},City{i % 97},pro\n")
PY
cat > volley.cfg <<CFG
store = { path = "bench.db"; };
smtp = { host = "127.0.0.1"; port = $port; tls = "none"; connections = 8; };
CFG
"$volley" init >/dev/null
"$volley" campaign create bench --from bench@example.org \
	--template "$template" >/dev/null
"$volley" import bench r.csv >/dev/null
/usr/bin/time -f "%e %U %S %M" -o time.txt "$volley" send bench --quiet \
	>send.out
cat send.out
read -r wall user sys rss < time.txt
sent=$("$volley" status --json | python3 -c \
	'import json,sys; print(json.load(sys.stdin)[0]["sent"])')
python3 - "$sent" "$wall" "$user" "$sys" "$rss" "$sink" <<'PY'
import sys
sent, wall, user, sys_, rss, sink = sys.argv[1:]
sent, wall, cpu, rss = int(sent), float(wall), float(user) + float(sys_), int(rss)
print(f"{sink}: {sent} sent in {wall:.2f} s: {sent / wall:,.0f} messages/s, "
      f"{cpu * 1e6 / max(sent, 1):.1f} us client CPU/message, "
      f"max RSS {rss / 1024:.1f} MB")
PY
