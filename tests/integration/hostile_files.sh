#!/bin/sh
# hostile_files.sh - files made to hurt, as `volley import` and `volley
# campaign create` meet them: a CSV record over the size limit, a quote
# that never closes, and template folders whose links or names lead
# outside the folder.
. "$(dirname "$0")/lib.sh"

ok "init" "$VOLLEY" init
ok "campaign" "$VOLLEY" campaign create news --from list@example.org

# --- a CSV record over the 1 MiB limit is one bad row, not the end -------
# 1.5 MB of name, in a quoted field over two lines.
{
	printf 'email,name\r\nann@example.org,Ann\r\nbig@example.org,"'
	head -c 1500000 /dev/zero | tr '\0' x
	printf '\r\nstill the name"\r\ncarl@example.org,Carl\r\n'
} > big.csv
fails 1 "a record over the limit fails the import" \
	"$VOLLEY" import news big.csv
want="big.csv:3:1: record of 1500034 bytes on lines 3 to 4, over the"
has err.txt "$want limit of 1048576" \
	"the long record is named by line, with its length"
has err.txt "1 bad row in 3; nothing imported" "the others are counted"
equals "$(total news)" "0" "nothing imported"
ok "--skip-invalid goes past it" "$VOLLEY" import news big.csv --skip-invalid
has out.txt "imported 2 recipients" "the rows around it are imported"
equals "$(total news)" "2" "two recipients in"
has big.csv.rejects.csv '3,"record of 1500034 bytes on lines 3 to 4' \
	"the long record is in the rejects file"
has big.csv.rejects.csv 'big@example.org,""xxxx' \
	"with the start of its text"
# 20 bytes of header, "3,", the quoted reason (105), a comma, the first
# 1024 bytes quoted (1027, its one quote doubled), CR LF.
equals "$(wc -c < big.csv.rejects.csv | tr -d ' ')" "1157" \
	"only the first 1024 bytes of it"

# --- a quote that never closes fails the import, even --skip-invalid ----
cat > stray.csv <<'CSV'
email,name
dora@example.org,Dora
not-an-address,X
eve@example.org,"Eve
frank@example.org,Frank
gina@example.org,Gina
CSV
printf 'an earlier import\n' > stray.csv.rejects.csv
fails 1 "--skip-invalid and a quote that never closes" \
	"$VOLLEY" import news stray.csv --skip-invalid
want="stray.csv:4:17: unterminated quoted field (opened at line 4,"
has err.txt "$want column 17): it runs 3 lines to the end of the input" \
	"the opening quote is located and the lines it took counted"
has err.txt "nothing imported" "the user is told nothing was imported"
equals "$(total news)" "2" "dora is not imported either"
# The failed import wrote line 3 to the rejects file before it met the
# quote: none of it may be left, and the earlier file stays as it was.
equals "$(cat stray.csv.rejects.csv)" "an earlier import" \
	"a failed import leaves the rejects file as it was"
equals "$(ls | grep -c 'rejects\.csv\.')" "0" "and no file beside it"
fails 1 "and without --skip-invalid" "$VOLLEY" import news stray.csv \
	--rejects none.csv
has err.txt "stray.csv:3: invalid address" "the bad row before it is shown"
has err.txt "stray.csv:4:17: unterminated" "and the quote"
checks=$((checks + 1))
if [ -e none.csv ]; then
	echo "FAIL: a failed import left its rejects file"
	failures=$((failures + 1))
fi

# Bad rows without --skip-invalid: nothing imported, but --rejects still
# gets them, for the user to mend.
head -3 stray.csv > bad.csv
fails 1 "bad rows without --skip-invalid" "$VOLLEY" import news bad.csv \
	--rejects mend.csv
mkdir adir
fails 1 "--rejects naming a folder" "$VOLLEY" import news bad.csv \
	--skip-invalid --rejects adir
has err.txt "adir: Is a directory" "is refused, naming it"
equals "$(total news)" "2" "and nothing is imported"
has mend.csv "3,invalid address 'not-an-address': missing @,\"not-an" \
	"--rejects holds the bad row"

# The same when the open quote runs far past the record size limit.
{
	printf 'email,name\nhal@example.org,"Hal\n'
	seq 1 100000 | sed 's/.*/r&@example.org,R/'
} > long-stray.csv
fails 1 "a quote open over 2 MB of lines" \
	"$VOLLEY" import news long-stray.csv --skip-invalid
want="long-stray.csv:2:17: unterminated quoted field (opened at line 2,"
has err.txt "$want column 17): it runs 100001 lines" \
	"it is the open quote that is reported, not the length"
equals "$(total news)" "2" "nothing imported"

finish
