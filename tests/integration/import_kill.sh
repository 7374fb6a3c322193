#!/bin/sh
# import_kill.sh - an import killed with SIGKILL half way leaves the store
# exactly as it was, and the next import of the same file succeeds.
#
# The import reads from a pipe that this script feeds: once the script has
# written far more than a pipe holds, volley has read (and added) most of
# it inside its open transaction, and is still waiting for the rest when
# it is killed.
. "$(dirname "$0")/lib.sh"

rows=200000

ok "init" "$VOLLEY" init
ok "campaign" "$VOLLEY" campaign create c --from news@example.org
printf 'email,n\nfirst@example.org,1\nsecond@example.org,2\n' > small.csv
ok "first import" "$VOLLEY" import c small.csv
equals "$(total c)" "2" "two recipients before the killed import"

awk -v n=$rows 'BEGIN { print "email,name,a,b,c,d";
	for (i = 0; i < n; i++)
		printf "user%d@example.org,Name %d,alpha,beta,gamma,%d\n", i, i, i }' \
	> big.csv

mkfifo feed
"$VOLLEY" import c - < feed > import.out 2> import.err &
pid=$!
exec 3> feed
# Everything but the last 1,000 rows: the import stays open, mid-way.
head -n $((rows - 1000)) big.csv >&3
sleep 1
checks=$((checks + 1))
if kill -0 "$pid" 2>/dev/null; then
	kill -9 "$pid"
else
	echo "FAIL: the import ended before it could be killed"
	cat import.err
	failures=$((failures + 1))
fi
wait "$pid"
status=$?
exec 3>&-
equals "$status" "137" "the import died of SIGKILL"

equals "$(total c)" "2" "the killed import left the store as it was"
equals "$(count c queued)" "2" "still two queued"
if command -v sqlite3 >/dev/null; then
	equals "$(sqlite3 test.db 'PRAGMA integrity_check')" "ok" \
		"the store passes SQLite's integrity check"
	equals "$(sqlite3 test.db 'SELECT count(*) FROM jobs')" "2" \
		"no job rows from the killed import"
fi

ok "the same import again" "$VOLLEY" import c big.csv
has out.txt "imported $rows recipients" "every row imported this time"
equals "$(total c)" "$((rows + 2))" "all recipients present"

finish
