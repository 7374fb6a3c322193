#!/usr/bin/env python3
"""smtplib_client.py - a peer client for volley's benchmarks: Python's
smtplib "done well".

One thread per connection; each thread opens ONE smtplib.SMTP connection
and reuses it for many messages (one sendmail() per message, the way the
common tutorials send).  Messages are handed out through a shared counter,
so they are split evenly over the threads.  smtplib does not pipeline: each
message costs the MAIL, RCPT, DATA and end-of-data round trips.

  smtplib_client.py --host H --port P --connections C --count N --size BYTES
      [--starttls --user U --password-env VARNAME [--cafile FILE | --insecure]]
      [--from ADDR]

Recipients are rcpt{i}@example.org, i in 0..N-1, one per message.  The body
(printable ASCII lines of at most 76 characters, CRLF) is built once and
padded so that headers + body come to BYTES within a few bytes; per message
only the headers are made.  The Date header is taken once at start (the
Nodemailer peer does the same).

Prints exactly one JSON line on stdout at the end:
  {"client":"python-smtplib","messages":N,"ok":k,"errors":e,"seconds":S}
where S is the wall time of the send phase (from before the first connect,
including STARTTLS and AUTH, until every connection has sent QUIT).  Exit 0
if every message was accepted, else 1; the first few errors go to stderr.
"""

import argparse
import email.utils
import itertools
import json
import os
import smtplib
import ssl
import sys
import threading
import time

CLIENT = "python-smtplib"
MAX_ERROR_TEXTS = 5


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--user")
    p.add_argument("--password-env", metavar="VARNAME")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--cafile")
    g.add_argument("--insecure", action="store_true")
    p.add_argument("--from", dest="sender", default="bench@example.org")
    a = p.parse_args(argv)
    if a.connections < 1 or a.count < 0 or a.size < 1:
        p.error("--connections >= 1, --count >= 0, --size >= 1")
    if (a.user is None) != (a.password_env is None):
        p.error("--user and --password-env go together")
    if a.user is not None and not a.starttls:
        p.error("--user needs --starttls")
    if a.password_env is not None and a.password_env not in os.environ:
        p.error("--password-env: $%s is not set" % a.password_env)
    return a


def make_headers(sender, date, stamp, i):
    return ("From: %s\r\n"
            "To: rcpt%d@example.org\r\n"
            "Subject: bench %d\r\n"
            "Date: %s\r\n"
            "Message-ID: <bench.%d.%s@example.org>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "Content-Transfer-Encoding: 7bit\r\n"
            "\r\n" % (sender, i, i, date, i, stamp)).encode("ascii")


def make_body(nbytes):
    """Printable ASCII lines, at most 76 characters + CRLF, exactly nbytes
    long (at least one short line).  No line starts with a dot, so nothing
    is dot-stuffed and the server receives exactly these bytes."""
    alphabet = "".join(chr(c) for c in range(33, 127) if chr(c) != ".")
    lines = []
    total = 0
    k = 0
    while total < nbytes:
        room = nbytes - total - 2            # characters left for this line
        if room < 1:
            # fewer than 3 bytes left: lengthen the previous line instead
            if lines and len(lines[-1]) + (nbytes - total) <= 78:
                lines[-1] = lines[-1][:-2] + "x" * (nbytes - total) + "\r\n"
                total = nbytes
                break
            room = 1
        n = min(76, room)
        if 0 < room - n < 3:                 # don't leave a tail too short
            n = room - 3
        line = "".join(alphabet[(k + j) % len(alphabet)] for j in range(n))
        lines.append(line + "\r\n")
        total += n + 2
        k += 1
    return "".join(lines).encode("ascii")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = 0
        self.texts = []

    def add(self, ok, errors, texts):
        with self.lock:
            self.ok += ok
            self.errors += errors
            room = MAX_ERROR_TEXTS - len(self.texts)
            if room > 0:
                self.texts.extend(texts[:room])


def connect(a, context, password):
    s = smtplib.SMTP(a.host, a.port, timeout=60)
    try:
        s.ehlo()
        if a.starttls:
            s.starttls(context=context)
            s.ehlo()
            if a.user is not None:
                s.login(a.user, password)  # AUTH PLAIN (CRAM-MD5 only if offered)
    except BaseException:
        s.close()
        raise
    return s


def worker(a, counter, stats, headers_of, body, context, password):
    ok = errors = 0
    texts = []
    s = None
    try:
        while True:
            i = next(counter)  # itertools.count: atomic under the GIL
            if i >= a.count:
                break
            rcpt = "rcpt%d@example.org" % i
            try:
                if s is None:
                    s = connect(a, context, password)
                refused = s.sendmail(a.sender, [rcpt], headers_of(i) + body)
                if refused:  # only possible with several recipients
                    raise smtplib.SMTPRecipientsRefused(refused)
                ok += 1
            except (smtplib.SMTPServerDisconnected, OSError,
                    smtplib.SMTPConnectError) as e:
                # The connection is gone: count the message, reconnect for
                # the next one.
                errors += 1
                if len(texts) < MAX_ERROR_TEXTS:
                    texts.append("%s: %s: %s" % (rcpt, type(e).__name__, e))
                if s is not None:
                    s.close()
                    s = None
            except smtplib.SMTPException as e:
                # Refused (sendmail has already sent RSET where it needs
                # one); the connection goes on unless it was a 421.
                errors += 1
                if len(texts) < MAX_ERROR_TEXTS:
                    texts.append("%s: %s: %s" % (rcpt, type(e).__name__, e))
                if getattr(e, "smtp_code", 0) == 421 and s is not None:
                    s.close()
                    s = None
        if s is not None:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()
    finally:
        stats.add(ok, errors, texts)


def main(argv):
    a = parse_args(argv)
    password = os.environ[a.password_env] if a.password_env else None
    context = None
    if a.starttls:
        if a.insecure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=a.cafile)

    date = email.utils.formatdate(localtime=True)
    stamp = "%d.%d" % (os.getpid(), int(time.time()))

    def headers_of(i):
        return make_headers(a.sender, date, stamp, i)

    body = make_body(max(a.size - len(headers_of(a.count // 2)), 3))
    counter = itertools.count()
    stats = Stats()
    threads = [threading.Thread(target=worker,
                                args=(a, counter, stats, headers_of, body,
                                      context, password),
                                name="conn%d" % k, daemon=True)
               for k in range(min(a.connections, max(a.count, 1)))]

    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - t0

    # a thread that died of something unforeseen left its messages uncounted
    lost = a.count - stats.ok - stats.errors
    if lost > 0:
        stats.errors += lost
        stats.texts.append("%d messages not attempted (a thread died)" % lost)
    for text in stats.texts:
        print("%s: error: %s" % (CLIENT, text), file=sys.stderr)
    print(json.dumps({"client": CLIENT, "messages": a.count, "ok": stats.ok,
                      "errors": stats.errors,
                      "seconds": round(seconds, 3)}), flush=True)
    return 0 if stats.ok == a.count else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
