#!/bin/sh
# cli.sh - the volley command as a user meets it: init, campaigns, CSV
# import (good, bad, skipped, stdin), status and its JSON, help, and the
# errors for bad usage and bad configuration.
. "$(dirname "$0")/lib.sh"

# --- help and usage ------------------------------------------------------
ok "help lists commands" "$VOLLEY" help
has out.txt "import" "help lists import"
ok "--help on a command" "$VOLLEY" import --help
has out.txt "--skip-invalid" "import --help shows its options"
ok "help COMMAND" "$VOLLEY" help status
has out.txt "--json" "help status"
fails 2 "unknown command" "$VOLLEY" frobnicate
has err.txt "no command 'frobnicate'" "unknown command is named"
fails 2 "bad option" "$VOLLEY" status --bogus
fails 2 "import without file" "$VOLLEY" import onlyone
ok "--version" "$VOLLEY" --version

# --- a store is needed, and init is idempotent ---------------------------
fails 1 "status before init" "$VOLLEY" status
has err.txt "volley init" "status before init says to run init"
ok "init" "$VOLLEY" init
ok "init again" "$VOLLEY" init
has out.txt "schema version" "init reports the schema"
ok "status on an empty store" "$VOLLEY" status --json
equals "$(cat out.txt)" "[]" "empty store gives an empty JSON array"

# --- campaigns -----------------------------------------------------------
ok "campaign create" "$VOLLEY" campaign create news --from list@example.org
fails 1 "duplicate campaign" "$VOLLEY" campaign create news --from news@example.org
has err.txt "already exists" "duplicate campaign is refused"
fails 1 "bad --from" "$VOLLEY" campaign create other --from "not an address"
has err.txt "--from" "bad --from names the option"
fails 1 "template that is not a folder" \
	"$VOLLEY" campaign create other --template /nonexistent/x
fails 1 "empty campaign name" "$VOLLEY" campaign create ""
fails 1 "a campaign without any envelope sender" \
	"$VOLLEY" campaign create nosender
has err.txt "needs an envelope sender" "no sender: says what to give"
mkdir tpl
printf 'subject = "Hi";\nfrom = "a@example.org";\n' > tpl/message.cfg
printf 'Hi\n' > tpl/body.txt
ok "campaign with template" "$VOLLEY" campaign create other --template tpl
ok "campaign list" "$VOLLEY" campaign list
has out.txt "list@example.org" "list shows the sender"
has out.txt "$work/tpl" "list shows the template folder as an absolute path"

# --- a clean import ------------------------------------------------------
printf 'Email,first_name,city\r\nann@example.org,Ann,"Oslo, NO"\r\n' > good.csv
printf 'bob@example.org,Bob,"Multi\r\nline"\r\nANN@example.org,Ann2,x\r\n' \
	>> good.csv
printf '\357\273\277email,name\n"carl@example.org",Carl\n' > bom.csv
ok "import CSV" "$VOLLEY" import news good.csv
has out.txt "imported 2 recipients" "two new recipients"
has out.txt "1 duplicate" "the case-insensitive duplicate is counted"
ok "import CSV with BOM, LF" "$VOLLEY" import news bom.csv
equals "$(total news)" "3" "three recipients in the campaign"
equals "$(count news queued)" "3" "all queued"

# --- bad rows: nothing imported, every bad row named ---------------------
cat > bad.csv <<'CSV'
email,name
dora@example.org,Dora
not-an-address,X
eve@example.org
frank@example.org,"5"" disk" drive
CSV
fails 1 "import with bad rows" "$VOLLEY" import news bad.csv
has err.txt "bad.csv:3: invalid address 'not-an-address'" "bad address line"
has err.txt "bad.csv:4:" "field-count line"
has err.txt "expected 2 fields, found 1" "field-count reason"
has err.txt "bad.csv:5:29:" "text after a closing quote, line and column"
has err.txt "unexpected character after closing quote" "its reason"
has err.txt "nothing imported" "the user is told nothing was imported"
equals "$(total news)" "3" "a failed import changes nothing"

# --- --skip-invalid: good rows in, bad rows to the rejects file ----------
ok "import --skip-invalid" "$VOLLEY" import news bad.csv --skip-invalid
has out.txt "imported 1 recipient " "the good row is imported"
has out.txt "bad.csv.rejects.csv" "the rejects file is named"
equals "$(total news)" "4" "one more recipient"
has bad.csv.rejects.csv "line,reason,record" "rejects header"
has bad.csv.rejects.csv "3,invalid address 'not-an-address'" "rejects line 3"
has bad.csv.rejects.csv "not-an-address,X" "the rejected record is kept"
equals "$(wc -l < bad.csv.rejects.csv | tr -d ' ')" "4" \
	"header plus three rejects"
ok "--rejects FILE" "$VOLLEY" import news bad.csv --skip-invalid \
	--rejects my-rejects.csv
has my-rejects.csv "eve@example.org" "rejects go where --rejects says"

# --- stdin, address column, header problems ------------------------------
printf 'mail,n\ngina@example.org,G\n' > stdin.csv
ok "import from stdin with --address-column" \
	"$VOLLEY" import news - --address-column MAIL < stdin.csv
equals "$(total news)" "5" "stdin import added one"
printf 'name,city\nx,y\n' > nocol.csv
fails 1 "no address column" "$VOLLEY" import news nocol.csv
has err.txt "no 'email' column" "missing address column is explained"
has err.txt "name, city" "the columns found are listed"
printf 'email,a,a\nx@example.org,1,2\n' > dupcol.csv
fails 1 "duplicate column" "$VOLLEY" import news dupcol.csv
has err.txt "twice" "a duplicate column name is refused"
: > empty.csv
fails 1 "empty file" "$VOLLEY" import news empty.csv
has err.txt "header" "empty file needs a header"
fails 1 "unknown campaign" "$VOLLEY" import nope good.csv
has err.txt "no campaign 'nope'" "unknown campaign is named"
fails 1 "missing file" "$VOLLEY" import news missing.csv
has err.txt "missing.csv" "missing file is named"

# Control characters from the file never reach the terminal raw.
printf 'email\n"evil\033[2J@example.org"\n' > esc.csv
fails 1 "escape sequence in address" "$VOLLEY" import news esc.csv
has err.txt '\x1B' "the ESC byte is shown escaped"
if grep -q "$(printf '\033')" err.txt; then
	echo "FAIL: a raw ESC byte reached stderr"; failures=$((failures + 1))
fi

# --- SMTPUTF8 addresses are accepted ------------------------------------
printf 'email\nüser@bücher.example\n' > utf8.csv
ok "UTF-8 address" "$VOLLEY" import news utf8.csv
equals "$(total news)" "6" "the UTF-8 address is in"

# --- status --------------------------------------------------------------
ok "status one campaign" "$VOLLEY" status news --json
for key in '"name": "news"' '"queued": 6' '"sending": 0' '"sent": 0' \
	'"deferred": 0' '"failed": 0' '"total": 6'; do
	has out.txt "$key" "status --json has $key"
done
ok "status all" "$VOLLEY" status --json
has out.txt '"name": "other"' "status lists every campaign"
fails 1 "status of unknown campaign" "$VOLLEY" status nope

# --- configuration errors name the setting and line ---------------------
printf 'store = {\n  path = "x.db";\n  paht = "y";\n};\n' > typo.cfg
fails 1 "unknown setting" "$VOLLEY" -c typo.cfg status
has err.txt "typo.cfg:3: unknown setting 'store.paht'" "typo named with line"
fails 1 "missing -c file" "$VOLLEY" -c nope.cfg status
mkdir sub
printf 'store = { path = "sub.db"; };\n' > sub/volley.cfg
ok "relative store path" "$VOLLEY" -c sub/volley.cfg init
checks=$((checks + 1))
[ -f sub/sub.db ] || { echo "FAIL: store not beside its config"; \
	failures=$((failures + 1)); }

finish
