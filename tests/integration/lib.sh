# lib.sh - helpers for volley's integration tests (sourced, POSIX sh).
#
# Each test runs the real volley binary ($VOLLEY, passed by CTest) in a
# fresh temporary folder with its own volley.cfg and store, and checks
# what a user would see: exit status, messages and `volley status`.

set -u
VOLLEY=${1:?usage: $0 PATH-TO-VOLLEY}
failures=0
checks=0

work=$(mktemp -d /tmp/volley-it-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
printf 'store = { path = "test.db"; };\n' > volley.cfg

# ok DESCRIPTION COMMAND... - the command must succeed
ok() {
	desc=$1; shift
	checks=$((checks + 1))
	"$@" >out.txt 2>err.txt
	got=$?
	if [ "$got" -eq 0 ]; then
		return 0
	fi
	echo "FAIL: $desc: '$*' exited $got"; sed 's/^/  stderr: /' err.txt
	failures=$((failures + 1))
	return 1
}

# fails STATUS DESCRIPTION COMMAND... - the command must exit with STATUS
fails() {
	want=$1; desc=$2; shift 2
	checks=$((checks + 1))
	"$@" >out.txt 2>err.txt
	got=$?
	if [ "$got" -eq "$want" ]; then
		return 0
	fi
	echo "FAIL: $desc: '$*' exited $got, wanted $want"
	sed 's/^/  stderr: /' err.txt
	failures=$((failures + 1))
	return 1
}

# has FILE TEXT DESCRIPTION - FILE must contain TEXT (fixed string)
has() {
	checks=$((checks + 1))
	if grep -qF -- "$2" "$1"; then
		return 0
	fi
	echo "FAIL: $3: '$2' not in $1:"; sed 's/^/  | /' "$1"
	failures=$((failures + 1))
	return 1
}

# lacks FILE TEXT DESCRIPTION - FILE must not contain TEXT
lacks() {
	checks=$((checks + 1))
	if ! grep -qF -- "$2" "$1"; then
		return 0
	fi
	echo "FAIL: $3: '$2' found in $1:"; sed 's/^/  | /' "$1"
	failures=$((failures + 1))
	return 1
}

# equals GOT WANT DESCRIPTION
equals() {
	checks=$((checks + 1))
	if [ "$1" = "$2" ]; then
		return 0
	fi
	echo "FAIL: $3: got '$1', wanted '$2'"
	failures=$((failures + 1))
	return 1
}

# total CAMPAIGN - the campaign's total job count from `volley status --json`
total() {
	"$VOLLEY" status "$1" --json |
		sed -n 's/.*"total": \([0-9]*\).*/\1/p'
}

# count CAMPAIGN STATE - one state's count from `volley status --json`
count() {
	"$VOLLEY" status "$1" --json |
		sed -n "s/.*\"$2\": \([0-9]*\).*/\1/p"
}

# start_sink NAME ARGS... - run a sink listening on a free loopback port
# (and whatever ARGS add); sets $pid (also $sink_pid) and $port (the
# first listener's), and adds the PID to $pids for the caller's trap
start_sink() {
	name=$1
	shift
	"$VOLLEY" sink -q --listen 127.0.0.1:0 "$@" >"$name.out" \
		2>"$name.err" &
	pid=$!
	sink_pid=$pid
	pids="${pids:-} $pid"
	i=0
	until grep -q "listening on" "$name.out" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 200 ] || ! kill -0 "$pid" 2>/dev/null; then
			echo "FAIL: sink $name did not start"
			sed 's/^/  stderr: /' "$name.err"
			failures=$((failures + 1))
			port=1
			return 1
		fi
		sleep 0.05
	done
	port=$(sed -n '1s/.*:\([0-9][0-9]*\)$/\1/p' "$name.out")
	echo "started sink $name on port $port"
}

# wait_until SECONDS CMD... - run CMD every 50 ms until it succeeds or
# SECONDS pass; its status is the last run's.  Tests wait for what they
# need (a log line, a file) this way rather than sleep a fixed time,
# which a slow start (ASan, a loaded machine) can outlast.
wait_until() {
	wu_end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -gt "$wu_end" ] && return 1
		sleep 0.05
	done
}

# hold_closed_port NAME - a loopback port that refuses connections: a
# process binds it and never listens.  A port picked and let go could
# be taken meanwhile by a test running beside this one, and then
# answer.  The holder goes with the caller's trap (its PID goes into
# $pids), or by itself once the test's shell is gone (a shell killed by
# a signal runs no EXIT trap).  Sets $closed_port.
hold_closed_port() {
	python3 -c 'import os, socket, time
parent = os.getppid()
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while os.getppid() == parent:
    time.sleep(0.5)' >"$1.port" &
	pids="${pids:-} $!"
	wait_until 10 has_lines "$1.port" 1 || return 1
	closed_port=$(cat "$1.port")
}

# has_lines FILE N - FILE holds at least N lines
has_lines() {
	[ "$(cat "$1" 2>/dev/null | wc -l)" -ge "$2" ]
}

# finish - print the tally the way CTest logs show it, and exit
finish() {
	echo "$((checks - failures)) passed, $failures failed"
	[ "$failures" -eq 0 ]
	exit $?
}
