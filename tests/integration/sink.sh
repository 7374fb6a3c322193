#!/bin/sh
# sink.sh - the real `volley sink` on loopback, checked from outside:
# messages land in the maildir byte for byte (DATA with dot lines, BDAT
# chunks); STARTTLS and implicit TLS with a certificate made here;
# AUTH PLAIN and LOGIN, refused where they must be; the transaction log;
# improper pipelining; LIMITS and SIZE; 200 concurrent connections; and
# every kind of scripted fault.  Each sink is started on port 0 (the port
# is read from its first line) and stopped by its PID; it must then exit
# 0 and print its totals.
. "$(dirname "$0")/lib.sh"

pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

# stop_sink NAME - SIGTERM; it must exit 0 and print its totals
stop_sink() {
	kill -TERM "$pid"
	wait "$pid"
	got=$?
	equals "$got" 0 "sink $1 exits 0 on SIGTERM"
	has "$1.err" "connections," "sink $1 prints its totals"
}

# check NAME ARGS... - one group of checks of sink_check.py
check() {
	checks=$((checks + 1))
	if python3 "$work/sink_check.py" "$@"; then
		return 0
	fi
	failures=$((failures + 1))
	return 1
}

cat > "$work/sink_check.py" <<'PY'
"""sink_check.py - checks of a running `volley sink`, for sink.sh.

    python3 sink_check.py CHECK PORT [ARGS...]

Each check prints what it verifies ("ok: ..." or "FAIL: ...") and the
script exits 1 if anything failed.  Only loopback addresses are used.
"""
import json
import os
import smtplib
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"
failures = 0


def check(cond, what, detail=""):
    global failures
    if cond:
        print("ok: " + what)
    else:
        failures += 1
        print("FAIL: " + what + (": " + detail if detail else ""))


class Raw:
    """A bare SMTP client on a socket: nothing hidden, nothing fixed up."""

    def __init__(self, port, tls_ctx=None):
        self.sock = socket.create_connection((HOST, port), timeout=5)
        if tls_ctx is not None:
            self.sock = tls_ctx.wrap_socket(self.sock,
                                            server_hostname="localhost")
        self.buf = b""

    def recv_until(self, pred, timeout=5.0):
        self.sock.settimeout(timeout)
        end = time.time() + timeout
        while not pred(self.buf):
            if time.time() > end:
                raise socket.timeout("timed out")
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed; had %r" % self.buf)
            self.buf += data

    def line(self, timeout=5.0):
        self.recv_until(lambda b: b"\r\n" in b, timeout)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self, timeout=5.0):
        """(code, [lines]) of one (multiline) reply"""
        lines = []
        while True:
            line = self.line(timeout)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]) if line[:3].isdigit() else -1, lines

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, text, timeout=5.0):
        self.send(text.encode() + b"\r\n")
        return self.reply(timeout)

    def closed(self, timeout=5.0):
        """True if the server closes the connection (EOF) in time"""
        try:
            self.sock.settimeout(timeout)
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (socket.timeout, ConnectionResetError, ssl.SSLError):
            return False

    def close(self):
        self.sock.close()


def newest(maildir, before):
    """the one file that appeared in maildir/new since `before`"""
    now = set(os.listdir(os.path.join(maildir, "new")))
    fresh = sorted(now - before)
    return fresh


def files(maildir):
    return set(os.listdir(os.path.join(maildir, "new")))


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


MESSAGE = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: dots\r\n\r\n"
           b".leading dot\r\n..two dots\r\n.\r\n"
           b"a line with a bare \r in it\r\n"
           b"\xc3\xa9t\xc3\xa9 8bit\r\n"
           + b"x" * 5000 + b"\r\nlast line\r\n")


def c_deliver(port, maildir, log):
    """smtplib with DATA: the file holds exactly the message"""
    before = files(maildir)
    with smtplib.SMTP(HOST, port, timeout=5) as s:
        refused = s.sendmail("a@x.test", ["b@y.test", "c@y.test"], MESSAGE)
        check(refused == {}, "DATA: both recipients accepted")
    fresh = newest(maildir, before)
    check(len(fresh) == 1, "DATA: one file in new/", repr(fresh))
    if fresh:
        with open(os.path.join(maildir, "new", fresh[0]), "rb") as f:
            got = f.read()
        check(got == MESSAGE, "DATA: stored byte for byte (dots "
              "unstuffed, CRLF kept, nothing added)",
              "%d bytes vs %d" % (len(got), len(MESSAGE)))
        check(os.listdir(os.path.join(maildir, "tmp")) == [],
              "DATA: nothing left in tmp/")
    rec = [x for x in read_log(log) if x.get("end") != "closed"][-1]
    check(rec["from"] == "a@x.test" and rec["body"] == "DATA" and
          rec["accepted"] == 2 and rec["code"] == 250 and
          rec["size"] == len(MESSAGE) and fresh and
          rec["file"] == "new/" + fresh[0] and rec["tls"] is False,
          "DATA: log record", json.dumps(rec))


def c_bdat(port, maildir, log):
    """raw BDAT: chunks are stored exactly, dots and CRLF.CRLF included"""
    chunks = [b"Subject: bdat\r\n\r\n.\r\n", b"..x\r\n.\r\n\r\n.\r\n",
              b"", b"tail without line end"]
    want = b"".join(chunks)
    before = files(maildir)
    r = Raw(port)
    r.reply()
    code, lines = r.cmd("EHLO client.test")
    check(b"CHUNKING" in lines[-1] or any(b"CHUNKING" in l for l in lines),
          "EHLO offers CHUNKING")
    # pipelined: MAIL, RCPT and every chunk in one write
    out = b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
    for i, c in enumerate(chunks):
        last = i == len(chunks) - 1
        out += b"BDAT %d%s\r\n" % (len(c), b" LAST" if last else b"") + c
    r.send(out)
    codes = [r.reply()[0] for _ in range(2 + len(chunks))]
    check(codes == [250] * (2 + len(chunks)), "BDAT: pipelined replies",
          repr(codes))
    r.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<c@y.test>\r\nBDAT 0 LAST\r\n")
    codes = [r.reply()[0] for _ in range(3)]
    check(codes == [250, 250, 250], "BDAT 0 LAST: an empty message",
          repr(codes))
    r.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<c@y.test>\r\nBDAT 2\r\nab"
           b"DATA\r\n")
    codes = [r.reply()[0] for _ in range(4)]
    check(codes == [250, 250, 250, 503], "DATA after BDAT: 503",
          repr(codes))
    r.cmd("RSET")
    r.send(b"MAIL FROM:<a@x.test>\r\nBDAT 5 LAST\r\n12345NOOP\r\n")
    codes = [r.reply()[0] for _ in range(3)]
    check(codes == [250, 503, 250], "BDAT without a recipient: 503, its "
          "chunk skipped", repr(codes))
    r.cmd("QUIT")
    r.close()
    fresh = newest(maildir, before)
    check(len(fresh) == 2, "BDAT: two files stored", repr(fresh))
    stored = []
    for name in fresh:
        with open(os.path.join(maildir, "new", name), "rb") as f:
            stored.append(f.read())
    check(want in stored, "BDAT: chunks stored byte for byte")
    check(b"" in stored, "BDAT 0 LAST: an empty file")
    recs = [r for r in read_log(log) if r.get("body") == "BDAT" and
            r["code"] == 250]
    check(len(recs) >= 2 and recs[-2]["size"] == len(want),
          "BDAT: log says BDAT with the size")


def c_starttls(port, cafile, maildir, log):
    """STARTTLS with a certificate checked against cafile, then AUTH"""
    ctx = ssl.create_default_context(cafile=cafile)
    before = files(maildir)
    with smtplib.SMTP(HOST, port, timeout=5) as s:
        s.ehlo("client.test")
        check(s.has_extn("starttls"), "STARTTLS offered")
        check(not s.has_extn("auth"), "AUTH not offered before TLS")
        code, _ = s.docmd("AUTH", "PLAIN AHVzZXIAc2VjcmV0")
        check(code == 538, "AUTH before TLS: 538", str(code))
        code, _ = s.docmd("MAIL", "FROM:<a@x.test>")
        check(code == 530, "MAIL before AUTH: 530", str(code))
        s.starttls(context=ctx)
        s.ehlo("client.test")
        check(not s.has_extn("starttls"), "no STARTTLS under TLS")
        check("PLAIN" in s.esmtp_features.get("auth", ""),
              "AUTH PLAIN offered under TLS")
        try:
            s.login("user", "wrong")
            check(False, "wrong password refused")
        except smtplib.SMTPAuthenticationError as e:
            check(e.smtp_code == 535 and b"5.7.8" in e.smtp_error,
                  "wrong password: 535 5.7.8", repr(e))
        s.login("user", "secret")
        check(True, "AUTH under TLS")
        s.sendmail("a@x.test", ["b@y.test"], MESSAGE)
    fresh = newest(maildir, before)
    check(len(fresh) == 1, "STARTTLS: message stored")
    rec = [x for x in read_log(log) if x.get("end") != "closed"][-1]
    check(rec["tls"] is True and rec["auth"] is True,
          "log says TLS and AUTH", json.dumps(rec))


def c_login(port, cafile):
    """AUTH LOGIN under TLS with smtplib"""
    ctx = ssl.create_default_context(cafile=cafile)
    with smtplib.SMTP(HOST, port, timeout=5) as s:
        s.starttls(context=ctx)
        s.ehlo("client.test")
        s.user, s.password = "user", "secret"
        code, resp = s.auth("LOGIN", s.auth_login)
        check(code == 235, "AUTH LOGIN", "%d %r" % (code, resp))


def c_implicit(port, cafile, maildir):
    """implicit TLS from the first byte"""
    ctx = ssl.create_default_context(cafile=cafile)
    before = files(maildir)
    with smtplib.SMTP_SSL(HOST, port, context=ctx, timeout=5) as s:
        s.ehlo("client.test")
        check(not s.has_extn("starttls"), "implicit TLS: no STARTTLS")
        s.login("user", "secret")
        s.sendmail("a@x.test", ["b@y.test"], MESSAGE)
    check(len(newest(maildir, before)) == 1, "implicit TLS: stored")


def c_tls_pipelined(port, cafile, maildir, n=120):
    """implicit TLS: n transactions in one pipelined write, so that many
    records (and transactions cut across them) wait at once; the sink
    drains every record it has read before answering, and must answer
    each command once, in order, and store each message byte for byte"""
    ctx = ssl.create_default_context(cafile=cafile)
    before = files(maildir)
    r = Raw(port, ctx)
    # Python offers AES-256 first: the sink's order picks AES-128
    check(r.sock.version() != "TLSv1.3" or
          r.sock.cipher()[0] == "TLS_AES_128_GCM_SHA256",
          "TLS 1.3: the sink picks AES-128-GCM", repr(r.sock.cipher()))
    r.reply()
    r.cmd("EHLO client.test")
    code, _ = r.cmd("AUTH PLAIN AHVzZXIAc2VjcmV0")
    check(code == 235, "TLS pipelined: AUTH PLAIN", str(code))
    want, out = set(), b""
    for i in range(n):
        body = b"Subject: %d\r\n\r\n" % i + b"y" * (1000 + 97 * i)
        want.add(body)
        out += (b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
                b"BDAT %d LAST\r\n" % len(body) + body)
    r.send(out + b"NOOP\r\n")
    codes = [r.reply(timeout=20)[0] for _ in range(3 * n + 1)]
    check(codes == [250] * (3 * n + 1), "TLS pipelined: %d transactions "
          "(%d bytes in one write) answered in order" % (n, len(out)),
          repr(codes[:12]))
    check(r.cmd("QUIT")[0] == 221, "TLS pipelined: QUIT after them")
    r.close()
    stored = set()
    for name in newest(maildir, before):
        with open(os.path.join(maildir, "new", name), "rb") as f:
            stored.add(f.read())
    check(stored == want, "TLS pipelined: %d messages stored byte for "
          "byte" % n, "%d stored" % len(stored))


def c_improper(port, log):
    """--no-pipelining: a command sent early gets 554 and a close"""
    r = Raw(port)
    r.reply()
    code, lines = r.cmd("EHLO client.test")
    check(not any(b"PIPELINING" in l for l in lines),
          "PIPELINING not offered")
    code, _ = r.cmd("MAIL FROM:<a@x.test>")
    check(code == 250, "lock-step MAIL is fine")
    r.send(b"RCPT TO:<b@y.test>\r\nDATA\r\n")
    code, lines = r.reply()
    check(code == 554 and b"5.5.0" in lines[0] and
          b"Improper pipelining" in lines[0],
          "RCPT followed by DATA: 554 5.5.0 improper pipelining",
          repr(lines))
    check(r.closed(), "improper pipelining closes the connection")
    recs = read_log(log)
    check(any(x.get("event") == "improper_pipelining" and
              x.get("command") == "RCPT" for x in recs),
          "improper pipelining logged")


def c_faults(port, maildir, log):
    """the reply faults of faults.txt (see sink.sh)"""
    before = files(maildir)
    r = Raw(port)
    r.reply()
    r.cmd("EHLO client.test")
    code, lines = r.cmd("MAIL FROM:<bounce@x.test>")
    check(code == 550 and lines == [b"550 5.7.1 sender refused"],
          "mail pattern: 550 5.7.1", repr(lines))
    r.send(b"MAIL FROM:<a@x.test>\r\n"
           b"RCPT TO:<u@defer.test>\r\nRCPT TO:<u@full.test>\r\n"
           b"RCPT TO:<u@gone.test>\r\nRCPT TO:<u@quota.test>\r\n"
           b"RCPT TO:<u@spam.test>\r\nDATA\r\n")
    got = [r.reply()[1][0] for _ in range(7)]
    check(got == [b"250 2.1.0 Sender ok", b"451 4.3.0 try again later",
                  b"452 4.2.2 mailbox full", b"550 5.1.1 no such user",
                  b"552 5.2.2 over quota", b"250 2.1.5 Recipient ok",
                  b"354 go ahead anyway"],
          "rcpt patterns: 451, 452, 550, 552 each to its recipient",
          repr(got))
    r.send(b"Subject: x\r\n\r\nspam\r\n.\r\n")
    code, lines = r.reply()
    check(lines == [b"554 5.7.1 content refused"],
          "message pattern: 554 at the end of data", repr(lines))
    rec = [x for x in read_log(log) if x.get("end") != "closed"][-1]
    check([x["code"] for x in rec["rcpts"]] == [451, 452, 550, 552, 250]
          and rec["code"] == 554 and rec["file"] is None,
          "log: each recipient's code and the final 554", json.dumps(rec))

    # DATA answered 354 although every recipient was refused
    r.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<u@gone.test>\r\n"
           b"DATA\r\n")
    got = [r.reply()[0] for _ in range(3)]
    check(got == [250, 550, 354], "354 with no recipient accepted",
          repr(got))
    r.send(b"body\r\n.\r\n")
    code, lines = r.reply()
    check(code == 554, "... and 554 5.5.1 after the data", repr(lines))

    # delayed reply
    r.cmd("MAIL FROM:<a@x.test>")
    t0 = time.time()
    code, _ = r.cmd("RCPT TO:<u@slow.test>")
    took = time.time() - t0
    check(code == 250 and took >= 0.5, "delay: RCPT answered after "
          "500 ms", "%.3f s" % took)
    # malformed and overlong reply lines
    code, lines = r.cmd("RCPT TO:<u@malformed.test>")
    check(lines[0] == b"2x0 malformed reply line",
          "malformed reply line", repr(lines))
    code, lines = r.cmd("RCPT TO:<u@long.test>")
    check(code == 250 and len(lines[0]) == 3000,
          "overlong reply line (3000 bytes)", str(len(lines[0])))
    # never answered, connection kept
    r.send(b"RCPT TO:<u@hang.test>\r\n")
    try:
        r.reply(timeout=0.7)
        check(False, "silent: no reply")
    except socket.timeout:
        check(True, "silent: no reply, connection kept open")
    r.close()

    # the 2nd message on a connection is dropped 100 bytes in
    r = Raw(port)
    r.reply()
    r.cmd("EHLO client.test")
    r.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    [r.reply() for _ in range(3)]
    r.send(b"Subject: one\r\n\r\nfirst\r\n.\r\n")
    code, _ = r.reply()
    check(code == 250, "first message accepted")
    r.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    [r.reply() for _ in range(3)]
    r.send(b"Subject: two\r\n\r\n" + b"y" * 300 + b"\r\n")
    check(r.closed(), "drop: connection closed in the middle of DATA")
    fresh = newest(maildir, before)
    check(len(fresh) == 1, "drop: only the first message stored",
          repr(fresh))
    # an earlier connection's "closed" record may land after this one:
    # the sink sees that client go in its own time
    recs = read_log(log)
    dropped = [x for x in recs if x.get("end") == "dropped"]
    check(len(dropped) == 1 and dropped[0]["msg"] == 2,
          "drop: logged as dropped", json.dumps(recs[-3:]))


def c_conn_faults(port, mode):
    """faults that need a connection of their own"""
    if mode == "close-after":
        r = Raw(port)
        r.reply()
        r.cmd("EHLO client.test")
        for i in range(2):
            r.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
                   b"BDAT 1 LAST\r\nx")
            got = [r.reply()[0] for _ in range(3)]
            check(got == [250, 250, 250], "message %d accepted" % (i + 1))
        code, lines = r.cmd("MAIL FROM:<a@x.test>")
        check(code == 421, "close-after 2: 421 at the third MAIL",
              repr(lines))
        check(r.closed(), "close-after: connection closed")
    elif mode == "inject":
        r = Raw(port)
        r.reply()
        r.cmd("EHLO client.test")
        r.send(b"STARTTLS\r\n")
        r.recv_until(lambda b: b.count(b"\r\n") >= 2)
        check(r.buf == b"220 2.0.0 Ready to start TLS\r\n"
              b"250 injected\r\n",
              "starttls-inject: plaintext right after the 220",
              repr(r.buf))
        # a careful client (smtplib is one) drops what it buffered
        # before the handshake, and the session goes on under TLS
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP(HOST, port, timeout=5) as s:
            s.ehlo("client.test")
            s.starttls(context=ctx)
            code, msg = s.ehlo("client.test")
            check(code == 250 and b"Hello client.test" in msg,
                  "after the injection a careful client gets the real "
                  "EHLO reply under TLS", repr(msg))
    elif mode == "refusals":
        with smtplib.SMTP(HOST, port, timeout=5) as s:
            code, msg = s.ehlo("client.test")
            check(code == 502, "ehlo 502", str(code))
            code, msg = s.helo("client.test")
            check(code == 250, "HELO after the refused EHLO works")
            code, msg = s.docmd("STARTTLS")
            check(code == 454, "starttls 454", str(code))
            s.sendmail("a@x.test", ["b@y.test"], b"Subject: x\r\n\r\nx\r\n")
            check(True, "a message over HELO")
    elif mode == "auth-refused":
        with smtplib.SMTP(HOST, port, timeout=5) as s:
            s.ehlo("client.test")
            try:
                s.login("user", "secret")
                check(False, "auth 454 refuses good credentials")
            except smtplib.SMTPAuthenticationError as e:
                check(e.smtp_code == 454, "auth 454 refuses good "
                      "credentials", repr(e))
    elif mode == "limits":
        r = Raw(port)
        r.reply()
        code, lines = r.cmd("EHLO client.test")
        check(b"250-LIMITS RCPTMAX=2 MAILMAX=2" in lines or
              b"250 LIMITS RCPTMAX=2 MAILMAX=2" in lines,
              "LIMITS offered", repr(lines))
        check(b"250-SIZE 1000" in lines, "SIZE 1000 offered", repr(lines))
        code, lines = r.cmd("MAIL FROM:<a@x.test> SIZE=1001")
        check(code == 552 and b"5.3.4" in lines[0], "SIZE= too big: 552")
        r.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
               b"RCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\n")
        got = [r.reply()[1][0] for _ in range(4)]
        check(got[3] == b"452 4.5.3 Too many recipients",
              "RCPTMAX 2: the third RCPT gets 452 4.5.3", repr(got))
        code, lines = r.cmd("DATA")
        r.send(b"z" * 1200 + b"\r\n.\r\n")
        code, lines = r.reply()
        check(code == 552, "message over SIZE: 552 5.3.4", repr(lines))
        code, lines = r.cmd("MAIL FROM:<a@x.test>")
        check(code == 421, "MAILMAX 2: the third MAIL gets 421",
              repr(lines))
        check(r.closed(), "... and the connection is closed")


def c_many(port, n):
    """n connections open at once, each delivering a message"""
    conns = []
    for _ in range(n):
        r = Raw(port)
        conns.append(r)
    for r in conns:
        r.reply()
        r.send(b"EHLO c\r\n")
    for r in conns:
        r.reply()
        r.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
               b"BDAT 3 LAST\r\nabc")
    codes = []
    for r in conns:
        codes += [r.reply()[0] for _ in range(3)]
        r.close()
    check(codes == [250] * (3 * n), "%d concurrent connections served" % n)


def main():
    name, port, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    try:
        if name == "deliver":
            c_deliver(port, *args)
        elif name == "bdat":
            c_bdat(port, *args)
        elif name == "starttls":
            c_starttls(port, *args)
        elif name == "login":
            c_login(port, *args)
        elif name == "implicit":
            c_implicit(port, *args)
        elif name == "tls-pipelined":
            c_tls_pipelined(port, *args)
        elif name == "improper":
            c_improper(port, *args)
        elif name == "faults":
            c_faults(port, *args)
        elif name == "conn":
            c_conn_faults(port, *args)
        elif name == "many":
            c_many(port, int(args[0]))
        else:
            check(False, "no check " + name)
    except Exception as e:  # a check that blew up is a failure
        check(False, name, "%s: %s" % (type(e).__name__, e))
    sys.exit(1 if failures else 0)


main()
PY

# --- startup errors ----------------------------------------------------------
echo "== startup and options"
fails 2 "--limits with nonsense" "$VOLLEY" sink --limits FOO=1
fails 2 "--auth without a colon" "$VOLLEY" sink --auth user
printf 'rcpt *@x 451\nrcpt *@y 999 bad\n' > bad-faults.txt
fails 1 "a bad faults file" "$VOLLEY" sink --faults bad-faults.txt \
	--listen 127.0.0.1:0
has err.txt "bad-faults.txt:2: " "a faults error names FILE:LINE"
fails 1 "--implicit-tls without a certificate" \
	"$VOLLEY" sink --implicit-tls 127.0.0.1:0
has err.txt "--implicit-tls needs --tls-cert" "the missing certificate"
ok "help" "$VOLLEY" help sink
has out.txt "starttls-inject" "the help documents the faults"

# --- discard mode, two listeners, IPv4 and (if there) IPv6 -----------------
start_sink plain --listen 127.0.0.1:0
equals "$(grep -c 'listening on 127.0.0.1:' plain.out)" 2 \
	"one line per listener"
check many "$port" 200
stop_sink plain
has plain.err "200 connections, 200 messages" "the totals count them"

# --- maildir, DATA and BDAT, the log -----------------------------------------
echo "== maildir and log"
start_sink store --maildir md --log store.log
check deliver "$port" md store.log
check bdat "$port" md store.log
stop_sink store
for d in tmp new cur; do
	[ -d "md/$d" ] || { echo "FAIL: md/$d missing"; failures=$((failures + 1)); }
done

# --- TLS: a certificate of our own -------------------------------------------
echo "== STARTTLS, implicit TLS, AUTH"
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem \
	-days 1 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	>/dev/null 2>&1 || { echo "FAIL: openssl req"; failures=$((failures + 1)); }
start_sink tls --tls-cert cert.pem --tls-key key.pem --auth user:secret \
	--implicit-tls 127.0.0.1:0 --maildir tlsmd --log tls.log
tls_port=$port
implicit_port=$(sed -n '2s/.*:\([0-9][0-9]*\)$/\1/p' tls.out)
check starttls "$tls_port" cert.pem tlsmd tls.log
check login "$tls_port" cert.pem
check implicit "$implicit_port" cert.pem tlsmd
check tls-pipelined "$implicit_port" cert.pem tlsmd
# EHLO must end a group (RFC 2920): the QUIT waits for its reply.
# -ign_eof: the QUIT, not the end of input, ends the conversation.
s_client_in="printf 'EHLO client.test\\r\\n'; sleep 1; printf 'QUIT\\r\\n'"
ok "openssl s_client -starttls smtp" sh -c "($s_client_in) | \
	openssl s_client -starttls smtp -connect 127.0.0.1:$tls_port \
	-CAfile cert.pem -verify_return_error -servername localhost -ign_eof"
has out.txt "250 AUTH PLAIN LOGIN" "s_client: AUTH offered under STARTTLS"
has out.txt "221 2.0.0 Bye" "s_client: QUIT answered under STARTTLS"
ok "openssl s_client implicit TLS" sh -c "($s_client_in) | \
	openssl s_client -connect 127.0.0.1:$implicit_port -CAfile cert.pem \
	-verify_return_error -servername localhost -ign_eof"
has out.txt "220 " "s_client: greeting over implicit TLS"
has out.txt "221 2.0.0 Bye" "s_client: QUIT answered over implicit TLS"
# volley's own client with an OAuth 2.0 token (smtp.xoauth2_token_env):
# the sink takes its password as the token
cat > xoauth2.cfg <<EOF
smtp = {
  host = "127.0.0.1";
  port = $tls_port;
  tls = "starttls";
  ca_file = "$work/cert.pem";
  tls_name = "localhost";
  username = "user";
  xoauth2_token_env = "VOLLEY_TEST_TOKEN";
};
EOF
printf 'x\n' > body.txt
ok "send-one with AUTH XOAUTH2" env VOLLEY_TEST_TOKEN=secret "$VOLLEY" \
	-c xoauth2.cfg send-one --to a@example.test --from b@example.test \
	--subject xoauth2 --body-file body.txt
has tls.log '"auth_mechanism":"XOAUTH2"' "the sink logged XOAUTH2"
fails 1 "send-one with a wrong token" env VOLLEY_TEST_TOKEN=nope "$VOLLEY" \
	-c xoauth2.cfg send-one --to a@example.test --from b@example.test \
	--subject xoauth2 --body-file body.txt
has err.txt "535" "the refusal, after the 334 with the reason"
lacks err.txt "nope" "the token is not shown"
stop_sink tls

# --- without PIPELINING ------------------------------------------------------
echo "== improper pipelining"
start_sink nopipe --no-pipelining --log nopipe.log
check improper "$port" nopipe.log
stop_sink nopipe
has nopipe.err "with improper pipelining" "the totals count it"

echo "== LIMITS and SIZE"
start_sink limits --limits RCPTMAX=2,MAILMAX=2 --size 1000
check conn "$port" limits
stop_sink limits

# --- faults --------------------------------------------------------------------
echo "== faults"
cat > faults.txt <<'FAULTS'
# replies by pattern
mail bounce@* 550 5.7.1 sender refused
rcpt *@defer.test 451 4.3.0 try again later
rcpt *@full.test 452 4.2.2 mailbox full
rcpt *@gone.test 550 5.1.1 no such user
rcpt *@quota.test 552 5.2.2 over quota
message *@spam.test 554 5.7.1 content refused
data 354 go ahead anyway
# timing and garbage
rcpt *@slow.test delay 500
rcpt *@malformed.test malformed
rcpt *@long.test overlong 3000
rcpt *@hang.test silent
# the second message on a connection is cut 100 bytes in
message msg=2 drop 100
FAULTS
start_sink faults --faults faults.txt --maildir fmd --log faults.log
check faults "$port" fmd faults.log
stop_sink faults

printf 'close-after 2\n' > close.txt
start_sink close --faults close.txt
check conn "$port" close-after
stop_sink close

printf 'starttls-inject 250 injected\n' > inject.txt
start_sink inject --faults inject.txt --tls-cert cert.pem --tls-key key.pem
check conn "$port" inject
stop_sink inject

printf 'ehlo 502 5.5.1 no EHLO here\nstarttls 454 4.7.0 TLS not available\n' \
	> refuse.txt
start_sink refuse --faults refuse.txt --tls-cert cert.pem --tls-key key.pem
check conn "$port" refusals
stop_sink refuse

printf 'auth 454 4.7.0 Temporary authentication failure\n' > auth.txt
start_sink authfail --faults auth.txt --auth user:secret
check conn "$port" auth-refused
stop_sink authfail

finish
