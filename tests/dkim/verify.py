#!/usr/bin/env python3
"""verify.py - check DKIM signatures with an implementation that is not
volley's: python3-dkim (dkimpy), with the DNS answered from files.

    verify.py [--records DIR] [--expect N] FILE.eml...

Each public key record is a file DIR/SELECTOR._domainkey.DOMAIN holding
the TXT value (as `volley dkim keygen` prints it).  Every signature of
every message must verify (dkimpy checks one signature at a time: all
are checked, by index); --expect N also requires exactly N signatures
per message (--expect 0: the messages must not be signed).  A message
dkimpy cannot parse is a failure.  Exit 0 if all verify, 1 (saying
which and why) if not.

It must run under a python that imports dkim: on Debian that is
/usr/bin/python3 with python3-dkim (scripts/install-deps --tests), which
may not be the python3 first on PATH.
"""
import argparse
import os
import sys

import dkim


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", default=".")
    ap.add_argument("--expect", type=int, default=None)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        path = os.path.join(a.records, name.rstrip("."))
        try:
            with open(path, "rb") as f:
                return f.read().strip()
        except OSError:
            return None

    bad = 0
    for path in a.files:
        with open(path, "rb") as f:
            msg = f.read()
        try:
            d = dkim.DKIM(msg)
        except dkim.DKIMException as e:
            print(f"{path}: cannot be read: {e}")
            bad += 1
            continue
        n = sum(1 for h in d.headers if h[0].lower() == b"dkim-signature")
        if a.expect is not None and n != a.expect:
            print(f"{path}: {n} signatures, wanted {a.expect}")
            bad += 1
            continue
        if n == 0 and a.expect != 0:
            print(f"{path}: not signed")
            bad += 1
            continue
        for i in range(n):
            d = dkim.DKIM(msg)
            try:
                ok = d.verify(idx=i, dnsfunc=dnsfunc)
            except dkim.DKIMException as e:
                ok = False
                print(f"{path}: signature {i}: {e}")
            if not ok:
                print(f"{path}: signature {i} does not verify")
                bad += 1
    print(f"{len(a.files)} messages, {bad} failures")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
