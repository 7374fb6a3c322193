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

# --- template folders: nothing from outside the folder gets in ----------
# mktpl DIR [ATTACHMENTS] - a small good template, with an attachments
# list if given (a libconfig list's inside: "a.pdf", "b.txt")
mktpl() {
	mkdir -p "$1"
	printf 'subject = "Hi";\nfrom = "a@example.org";\n' > "$1/message.cfg"
	if [ -n "${2:-}" ]; then
		printf 'attachments = [ %s ];\n' "$2" >> "$1/message.cfg"
	fi
	printf 'Hi\n' > "$1/body.txt"
}

# refused NAME DIR TEXT DESCRIPTION - `campaign create NAME --template
# DIR` fails, its message has TEXT (and no raw ESC: names come from the
# folder), and no campaign NAME is made
refused() {
	fails 1 "$4: refused" "$VOLLEY" campaign create "$1" --template "$2"
	has err.txt "$3" "$4: the message names the file"
	checks=$((checks + 1))
	if grep -q "$(printf '\033')" err.txt; then
		echo "FAIL: $4: a raw ESC byte reached stderr"
		failures=$((failures + 1))
	fi
	fails 1 "$4: no campaign" "$VOLLEY" status "$1"
}

printf 'secret\n' > outside.txt
mktpl t-passwd
ln -s /etc/passwd t-passwd/passwd
want="t-passwd/passwd is a symbolic link to '/etc/passwd'; a template may"
refused c-passwd t-passwd "$want link only to a file in its own folder" \
	"a link to /etc/passwd"

mktpl t-up
ln -s ../outside.txt t-up/notes.txt
refused c-up t-up "t-up/notes.txt is a symbolic link to '../outside.txt'" \
	"a link to ../outside.txt"

mktpl t-cfg
mv t-cfg/message.cfg outside.cfg
ln -s ../outside.cfg t-cfg/message.cfg
refused c-cfg t-cfg "t-cfg/message.cfg is a symbolic link" \
	"message.cfg itself a link outside"

mktpl t-dir
mkdir shared
ln -s ../shared t-dir/shared
refused c-dir t-dir "t-dir/shared is a symbolic link to '../shared'" \
	"a link to a folder outside"

mktpl t-abs
ln -s "$work/t-abs/body.txt" t-abs/copy.txt
refused c-abs t-abs "t-abs/copy.txt is a symbolic link to '$work/t-abs" \
	"a link by an absolute name, even into the folder"

mktpl t-parent
ln -s .. t-parent/up
refused c-parent t-parent "t-parent/up is a symbolic link to '..'" \
	"a link to the parent folder"

mktpl t-chain
ln -s ../outside.txt t-chain/.hop
ln -s .hop t-chain/b.txt
want="t-chain/b.txt is a symbolic link to '.hop', itself a symbolic link"
refused c-chain t-chain "$want" "a link to a link"

mktpl t-gone
ln -s missing.txt t-gone/a.txt
want="t-gone/a.txt is a symbolic link to 'missing.txt'"
refused c-gone t-gone "$want: No such file or directory" "a link to nothing"

# A link to a file beside it is followed; a dotfile is never read at all.
mktpl t-alias '"logo.png"'
printf 'PNG' > t-alias/logo-2026.png
ln -s logo-2026.png t-alias/logo.png
ln -s /etc/passwd t-alias/.hidden
ok "a link to a file in the folder" \
	"$VOLLEY" campaign create c-alias --template t-alias
has out.txt "(4 files)" "it is copied, under both names; the dotfile not"

# A file too big is refused before it is read (a sparse 51 MB file).
mktpl t-big
truncate -s 51M t-big/big.bin
refused c-big t-big "holds more than 50 MB or 500 files" "a file too big"

# Attachment names with folders in them (message_file_name_ok).
for name in sub/guide.pdf ../outside.txt /etc/passwd .. ./guide.pdf; do
	mktpl t-att '"'"$name"'"'
	mkdir -p t-att/sub
	printf 'pdf' > t-att/sub/guide.pdf
	printf 'pdf' > t-att/guide.pdf
	refused c-att t-att "message.cfg:3: '$name' is not a usable file name" \
		"attachment '$name'"
	rm -rf t-att
done
mkdir t-inl
printf 'subject = "Hi";\nfrom = "a@example.org";\n' > t-inl/message.cfg
printf 'inline = [ "../outside.txt" ];\n' >> t-inl/message.cfg
printf '<p>Hi</p>\n' > t-inl/body.html
refused c-inl t-inl "message.cfg:3: '../outside.txt' is not a usable" \
	"an inline image outside"
# The name comes from the file: it is shown escaped.
mktpl t-esc "\"$(printf '\033')[2Jx.pdf\""
refused c-esc t-esc "'\\x1B[2Jx.pdf' is not a usable file name" \
	"a name with an escape sequence"
# A link's name and target come from the folder too.
mktpl t-esc2
ln -s "/tmp/$(printf '\033')]0;x" "t-esc2/$(printf '\033')[2J"
want="t-esc2/\\x1B[2J is a symbolic link to '/tmp/\\x1B]0;x'"
refused c-esc2 t-esc2 "$want" "a link with escape sequences"

finish
