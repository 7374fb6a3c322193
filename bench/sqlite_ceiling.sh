#!/bin/sh
# sqlite_ceiling.sh - how fast SQLite alone can add 1,000,000 recipients
# to volley's real schema, with nothing of volley's code in the way: one
# INSERT ... SELECT generating rows shaped like bench_import's (address,
# ~60 bytes of packed variables) inside SQLite, in one transaction, with
# the store's own settings (WAL, synchronous=FULL, the import's cache).
#
# It is the ceiling for `volley import` (which also reads and checks a
# CSV file), measured twice: with the unique address index that duplicate
# detection needs, and with that index dropped.
#
#   bench/sqlite_ceiling.sh [ROWS]      (needs build/ and the sqlite3 CLI)
set -eu
cd "$(dirname "$0")/.."
rows=${1:-1000000}
volley=$(pwd)/build/cli/volley
work=$(mktemp -d /tmp/volley-ceiling-XXXXXX)
trap 'rm -rf "$work"' EXIT

run() {
	label=$1 drop=$2
	rm -f "$work"/c.db*
	printf 'store = { path = "c.db"; };\n' > "$work/volley.cfg"
	"$volley" -c "$work/volley.cfg" init >/dev/null
	"$volley" -c "$work/volley.cfg" campaign create c >/dev/null
	start=$(date +%s.%N)
	sqlite3 "$work/c.db" <<SQL >/dev/null
PRAGMA synchronous = FULL;
PRAGMA cache_size = -262144;
$drop
INSERT INTO imports (id, campaign_id, var_names, started_at)
  VALUES (1, 1, x'01', 0);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n
                        WHERE i < $rows - 1)
INSERT OR IGNORE INTO jobs (campaign_id, import_id, address, vars,
                            next_attempt_at, created_at)
SELECT 1, 1, printf('u%08x.%d@d%d.example.com',
                    (i * 2654435761) & 4294967295, i, i % 1000),
       randomblob(60), 1764000000000, 1764000000000 FROM n;
COMMIT;
SQL
	end=$(date +%s.%N)
	awk -v s="$start" -v e="$end" -v n="$rows" -v l="$label" \
		'BEGIN { printf "sqlite alone, %s: %d rows in %.2f s = %.0f rows/s\n", l, n, e - s, n / (e - s) }'
}

run "with the unique address index" ""
run "without it" "DROP INDEX jobs_address;"
