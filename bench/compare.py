#!/usr/bin/env python3
"""bench/compare.py - two builds of volley send, alternated on one sink.

    bench/compare.py OLD_VOLLEY NEW_VOLLEY [-n MESSAGES] [-r ROUNDS]
                     [--size BYTES] [--no-chunking]

This VM's speed moves by 10-20% from run to run and by more from one
hour to the next, so a figure from an earlier bench/run says little
about whether a change made volley faster or slower.  This runs the
durable section's send (the 4 KB template rendered per recipient, every
result committed to SQLite, 8 connections, CHUNKING) with each binary in
turn, ROUNDS times, against one volley sink (NEW's), and prints every
round's messages/s (volley send's own timing of its send, as bench/run
takes it) and the client's CPU per message, then the medians.  Each
binary makes the store it sends from.  Build the old one in a worktree:

    git worktree add --detach ../old REV
    cmake -S ../old -B ../old/build-release -DCMAKE_BUILD_TYPE=Release
    cmake --build ../old/build-release --target volley
    bench/compare.py ../old/build-release/cli/volley \\
        build-release/cli/volley -n 300000 -r 3
"""
import argparse
import importlib.util
import os
import statistics
import sys
import shutil
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("br", ROOT + "/bench/run.py")
br = importlib.util.module_from_spec(spec)
spec.loader.exec_module(br)


def send_once(binary, work, port, n, size, chunking):
    """(messages/s, client CPU us a message) of one volley send"""
    br.VOLLEY = binary      # VolleyCampaign runs init and import with it
    cfg = (f'host = "127.0.0.1"; port = {port}; tls = "none"; '
           f'connections = 8; chunking = {"true" if chunking else "false"};')
    camp = br.VolleyCampaign(work, size, n, cfg)
    try:
        wall, cpu, out, rc, _ = br.run_client(
            [binary, "send", camp.name, "--quiet"], cwd=camp.dir)
        sent = camp.sent()
    finally:
        camp.cleanup()
    if rc != 0 or sent != n:
        sys.exit(f"{binary}: sent {sent} of {n} (exit {rc})")
    return n / br.Bench.send_phase(out, wall), cpu * 1e6 / n


def main():
    ap = argparse.ArgumentParser(
        description="Two builds of volley send, alternated on one sink.")
    ap.add_argument("old", help="the volley binary to compare against")
    ap.add_argument("new", help="the volley binary of the change")
    ap.add_argument("-n", type=int, default=200000,
                    help="recipients a round (default 200,000)")
    ap.add_argument("-r", type=int, default=3,
                    help="rounds, each one send by each binary (default 3)")
    ap.add_argument("--size", type=int, default=4096,
                    help="template size in bytes (default 4096)")
    ap.add_argument("--no-chunking", action="store_true",
                    help="DATA instead of BDAT")
    a = ap.parse_args()
    a.old, a.new = os.path.abspath(a.old), os.path.abspath(a.new)
    for b in (a.old, a.new):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b}: not an executable")
    work = tempfile.mkdtemp(prefix="volley-compare-")
    servers = br.Servers()
    port = br.free_port()
    servers.start([a.new, "sink", "-q", "--listen", f"127.0.0.1:{port}"])
    br.wait_port("127.0.0.1", port)
    got = {"old": [], "new": []}
    try:
        for r in range(a.r):
            for name, binary in (("old", a.old), ("new", a.new)):
                rate, cpu = send_once(binary, work, port, a.n, a.size,
                                      not a.no_chunking)
                got[name].append((rate, cpu))
                print(f"round {r + 1} {name}: {rate:,.0f} msg/s, "
                      f"{cpu:.2f} us CPU a message", flush=True)
    finally:
        servers.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    for name in ("old", "new"):
        rates = [g[0] for g in got[name]]
        cpus = [g[1] for g in got[name]]
        print(f"{name}: median {statistics.median(rates):,.0f} msg/s "
              f"({min(rates):,.0f}-{max(rates):,.0f}), "
              f"{statistics.median(cpus):.2f} us CPU a message")


if __name__ == "__main__":
    main()
