#!/bin/sh
# report.sh - `volley report` as a script meets it: test_report_data puts
# a campaign's jobs into every state with hostile reply texts (commas,
# quotes, CR/LF, control characters, invalid UTF-8, U+2028), then the CSV
# and JSON Lines reports must parse with Python's csv and json modules and
# give back every value exactly (invalid UTF-8 as U+FFFD), with the right
# header, attempts, times, --state filters and --out; plus the errors.
#
# usage: report.sh PATH-TO-VOLLEY, with $VOLLEY_REPORT_DATA (set by CTest)
# naming the test_report_data program.
. "$(dirname "$0")/lib.sh"

DATA=${VOLLEY_REPORT_DATA:-}
if [ -z "$DATA" ] || ! command -v python3 >/dev/null; then
	echo "FAIL: needs \$VOLLEY_REPORT_DATA and python3"
	exit 1
fi

# check DESCRIPTION COMMAND... - the command must succeed; its output is
# shown only on failure
check() {
	desc=$1; shift
	checks=$((checks + 1))
	if "$@" >chk.out 2>&1; then
		return 0
	fi
	echo "FAIL: $desc"; sed 's/^/  | /' chk.out
	failures=$((failures + 1))
	return 1
}

# report_check.py EXPECT CSV JSONL [ADDR...] - both reports hold exactly
# the rows of EXPECT (test_report_data's output) for ADDR... (default:
# all), in that order, every value as expected
cat > report_check.py <<'PY'
import csv, datetime, json, sys

COLS = ["address", "state", "attempts", "code", "enhanced", "reply",
        "queue_id", "first_attempt", "last_attempt", "next_attempt",
        "bounce_class", "bounced_at"]

def text(v):
    # The report makes text valid UTF-8: each maximal ill-formed
    # subpart becomes U+FFFD, which is what Python's "replace" does.
    return None if v == "-" else bytes.fromhex(v).decode("utf-8", "replace")

def when(v):
    if v == "-":
        return None
    t = datetime.datetime.fromtimestamp(int(v) / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (int(v) % 1000)

def parse_time(s):
    t = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc)

expect_path, csv_path, json_path = sys.argv[1:4]
want = {}
order = []
for line in open(expect_path, encoding="ascii"):
    f = line.rstrip("\n").split("\t")
    assert len(f) == 10, line
    want[f[0]] = {
        "address": f[0], "state": f[1], "attempts": int(f[2]),
        "code": None if f[3] == "-" else int(f[3]),
        "enhanced": text(f[4]), "reply": text(f[5]), "queue_id": text(f[6]),
        "first_attempt": when(f[7]), "last_attempt": when(f[8]),
        "next_attempt": when(f[9]),
        "bounce_class": None, "bounced_at": None,
    }
    order.append(f[0])
addrs = sys.argv[4:] or order
rows = [want[a] for a in addrs]

# CSV: strict UTF-8, CRLF record ends, header first, 10 fields a row.
raw = open(csv_path, "rb").read()
raw.decode("utf-8")
assert raw.startswith((",".join(COLS) + "\r\n").encode()), raw[:200]
assert raw.endswith(b"\r\n"), raw[-50:]
with open(csv_path, newline="", encoding="utf-8") as f:
    got = list(csv.reader(f, strict=True))
assert got[0] == COLS, got[0]
assert len(got) - 1 == len(rows), (len(got) - 1, len(rows))
for g, w in zip(got[1:], rows):
    assert len(g) == len(COLS), g
    exp = ["" if w[c] is None else str(w[c]) for c in COLS]
    assert g == exp, "CSV row\n got  %r\n want %r" % (g, exp)
    for c in ("first_attempt", "last_attempt", "next_attempt"):
        if g[COLS.index(c)]:
            parse_time(g[COLS.index(c)])

# JSON Lines: one object per physical line, nothing that any reader
# could take as a line break or a control character inside it.
raw = open(json_path, "rb").read()
lines = raw.split(b"\n")
assert lines[-1] == b"", "no final newline"
lines = lines[:-1]
assert len(lines) == len(rows), (len(lines), len(rows))
for line, w in zip(lines, rows):
    assert all(b >= 0x20 and b != 0x7f for b in line), line
    assert b"\xe2\x80\xa8" not in line and b"\xe2\x80\xa9" not in line
    g = json.loads(line.decode("utf-8"))
    assert list(g) == COLS, list(g)
    assert g == w, "JSON row\n got  %r\n want %r" % (g, w)
    for c in ("first_attempt", "last_attempt", "next_attempt"):
        if g[c] is not None:
            ms = int(parse_time(g[c]).timestamp() * 1000 + 0.5)
            assert when(str(ms)) == g[c], (ms, g[c])
print("%d rows match" % len(rows))
PY

# reports NAME ARGS... - NAME.csv and NAME.jsonl from `volley report news`
reports() {
	name=$1; shift
	ok "report $* (csv)" "$VOLLEY" report news "$@" && cp out.txt "$name.csv"
	ok "report $* (json)" "$VOLLEY" report news --format json "$@" &&
		cp out.txt "$name.jsonl"
}

# --- help, usage, and a store is needed ----------------------------------
ok "help lists report" "$VOLLEY" help
has out.txt "report" "help lists report"
ok "help report" "$VOLLEY" help report
has out.txt "--state" "help report shows --state"
has out.txt "JSON Lines" "help report names JSON Lines"
fails 1 "report before init" "$VOLLEY" report news
ok "init" "$VOLLEY" init

# --- a campaign with 10 recipients, all queued ---------------------------
ok "campaign create" "$VOLLEY" campaign create news --from news@example.org
ok "empty campaign" "$VOLLEY" campaign create empty --from news@example.org
{
	echo "email,name"
	for i in 0 1 2 3 4 5 6 7 8 9; do echo "r$i@example.org,Name $i"; done
} > rcpts.csv
ok "import" "$VOLLEY" import news rcpts.csv
ok "report all queued" "$VOLLEY" report news
equals "$(head -n 1 out.txt)" "$(printf 'address,state,attempts,code,enhanced,reply,queue_id,first_attempt,last_attempt,next_attempt,bounce_class,bounced_at\r')" \
	"CSV header, CRLF"
equals "$(sed -n 2p out.txt)" "$(printf 'r0@example.org,queued,0,,,,,,,,,\r')" \
	"a queued recipient has no reply and no times"
equals "$(grep -c ',queued,0,' out.txt)" "10" "ten queued rows"
ok "empty campaign, CSV" "$VOLLEY" report empty
equals "$(wc -l < out.txt | tr -d ' ')" "1" "an empty campaign has the header only"
ok "empty campaign, JSON" "$VOLLEY" report empty --format json
equals "$(wc -c < out.txt | tr -d ' ')" "0" "an empty campaign has no JSON lines"

# --- every state, hostile replies ----------------------------------------
check "test_report_data" sh -c '"$1" test.db news > expect.tsv' sh "$DATA"
equals "$(count news sent)" "3" "three sent"
equals "$(count news deferred)" "2" "two deferred"
equals "$(count news failed)" "3" "three failed"

reports all
check "full report round-trips" python3 report_check.py expect.tsv \
	all.csv all.jsonl
has all.csv 'r1@example.org,sent,1,250,2.6.0,"Ok, ""queued"", as A,B","A,B""C",2100-01-01T00:00:01.123Z,2100-01-01T00:00:01.123Z,' \
	"a quoted CSV row"
has all.jsonl '"reply":"rejected \u001b[31mred\u001b[0m\u0001\u007f\ttab, bell\u0007\\back\rCR"' \
	"control characters escaped in JSON"
has all.jsonl '"last_attempt":"2100-01-01T01:00:00.007Z","next_attempt":"2100-01-01T01:10:00.007Z","bounce_class":null,"bounced_at":null}' \
	"milliseconds are zero-padded; next_attempt for deferred"

# --- --state -------------------------------------------------------------
reports deferred --state deferred
check "--state deferred" python3 report_check.py expect.tsv \
	deferred.csv deferred.jsonl r5@example.org r9@example.org
reports final --state failed --state sent
check "--state repeated keeps import order" python3 report_check.py \
	expect.tsv final.csv final.jsonl r0@example.org r1@example.org \
	r2@example.org r3@example.org r4@example.org r8@example.org
reports open --state queued,sending
check "--state with a list" python3 report_check.py expect.tsv \
	open.csv open.jsonl r6@example.org r7@example.org
ok "--state matching nothing" "$VOLLEY" report empty --state sent
equals "$(wc -l < out.txt | tr -d ' ')" "1" "header only"

# --- --out ---------------------------------------------------------------
ok "--out" "$VOLLEY" report news --out file.csv
equals "$(wc -c < out.txt | tr -d ' ')" "0" "--out writes nothing to stdout"
check "--out gives the same bytes" cmp file.csv all.csv
ok "--out with json" "$VOLLEY" report news --format json --out file.jsonl
check "--out json gives the same bytes" cmp file.jsonl all.jsonl
fails 1 "--out in a missing folder" "$VOLLEY" report news --out no/such.csv
has err.txt "no/such.csv" "the bad --out is named"

# --- errors --------------------------------------------------------------
fails 1 "unknown campaign" "$VOLLEY" report nope
has err.txt "no campaign 'nope'" "the unknown campaign is named"
fails 2 "unknown state" "$VOLLEY" report news --state bounced
has err.txt "unknown state 'bounced'" "the unknown state is named"
has err.txt "queued, sending, sent, deferred, failed" "valid states listed"
fails 2 "unknown state in a list" "$VOLLEY" report news --state sent,nope
has err.txt "unknown state 'nope'" "the bad list item is named"
fails 2 "empty --state" "$VOLLEY" report news --state ""
fails 2 "unknown format" "$VOLLEY" report news --format xml
has err.txt "csv or json" "the valid formats are listed"
fails 2 "no campaign given" "$VOLLEY" report
fails 2 "two campaigns" "$VOLLEY" report news empty
fails 2 "bad option" "$VOLLEY" report news --bogus
if [ -w /dev/full ]; then
	fails 1 "a full disk is an error" sh -c '"$1" report news > /dev/full' \
		sh "$VOLLEY"
	has err.txt "No space left" "the write error is named"
fi

finish
