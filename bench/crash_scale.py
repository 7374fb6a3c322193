#!/usr/bin/env python3
"""bench/crash_scale.py - kill -9 during a large send, at scale.

    bench/crash_scale.py [-n RECIPIENTS] [--kills K] [--seed S]

tests/integration/send.sh kills a 20,000-recipient send; this does the
same with as many recipients as bench/run's durable send (default
1,000,000), the store's fast paths (known claims, the journal of results)
at full speed: `volley send` (release build) to volley sink with its log,
killed with SIGKILL K times (default 3) at random moments 0.5-2 s into a
run, then run to the end.  It checks what a sender relies on:

  - every recipient sent (jobs_now), or held in doubt, saying so;
  - every recipient accepted by the sink at least once (its log);
  - the counts agree with a recount of jobs_now; no claim left;

and prints the copies beyond the first (what each kill caught in flight
or not yet committed).  Exit status 0 when all held.  Only loopback; the
sink is started here and stopped by its PID.  About two minutes.
"""
import argparse
import collections
import importlib.util
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("bench_run",
                                              os.path.join(ROOT, "bench",
                                                           "run.py"))
br = importlib.util.module_from_spec(spec)
sys.modules["bench_run"] = br
spec.loader.exec_module(br)
VOLLEY = os.path.join(ROOT, "build-release", "cli", "volley")

RECOUNT = (
    "SELECT count(*) FROM campaign_counts cc WHERE cc.n <> (SELECT"
    " count(*) FROM jobs_now j WHERE j.campaign_id = cc.campaign_id AND"
    " CASE WHEN j.state = 0 AND EXISTS (SELECT 1 FROM claims k WHERE"
    " k.campaign_id = j.campaign_id AND k.owner IS NOT NULL AND j.id"
    " BETWEEN k.first_job AND k.last_job) THEN 1 ELSE j.state END"
    " = cc.state)")


def accepted(log):
    """recipient -> times the sink accepted a message for it"""
    seen = collections.Counter()
    with open(log) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("code") != 250:
                continue
            for rc in rec.get("rcpts", []):
                if rc.get("code") == 250:
                    seen[rc["to"]] += 1
    return seen


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=1000000)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not os.access(VOLLEY, os.X_OK):
        sys.exit("build-release/cli/volley is missing: scripts/build "
                 "(or bench/run) makes it")
    random.seed(args.seed)
    work = tempfile.mkdtemp(prefix="volley-crash-")
    log = os.path.join(work, "sink.log")
    servers = br.Servers()
    port = br.free_port()
    sink = servers.start([VOLLEY, "sink", "-q", "--listen",
                          f"127.0.0.1:{port}", "--log", log])
    br.wait_port("127.0.0.1", port)
    camp = br.VolleyCampaign(work, 4096, args.n,
                             f'host = "127.0.0.1"; port = {port}; '
                             'connections = 8; tls = "none";')
    try:
        for k in range(args.kills):
            p = subprocess.Popen([VOLLEY, "send", camp.name, "--quiet"],
                                 cwd=camp.dir, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(random.uniform(0.5, 2.0))
            p.send_signal(signal.SIGKILL)
            p.wait()
            print(f"run {k + 1} killed", flush=True)
        r = subprocess.run([VOLLEY, "send", camp.name, "--quiet"],
                           cwd=camp.dir, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"the last run failed: {r.stderr[-500:]}")
        db = next(f for f in os.listdir(camp.dir) if f.endswith(".db"))
        c = sqlite3.connect(os.path.join(camp.dir, db))
        sent = c.execute("SELECT count(*) FROM jobs_now"
                         " WHERE state = 2").fetchone()[0]
        held = c.execute("SELECT count(*) FROM jobs_now WHERE state = 3"
                         " AND last_reply LIKE '%may have been delivered'"
                         ).fetchone()[0]
        wrong = c.execute(RECOUNT).fetchone()[0]
        claims = c.execute("SELECT count(*) FROM claims").fetchone()[0]
        c.close()
    finally:
        servers.stop(sink)
        camp.cleanup()
    seen = accepted(log)
    shutil.rmtree(work, ignore_errors=True)
    copies = sum(v - 1 for v in seen.values() if v > 1)
    print(f"sent {sent}, held in doubt {held}, of {args.n}; accepted "
          f"{len(seen)} distinct, {copies} copies beyond the first; "
          f"counts wrong {wrong}; claims left {claims}")
    ok = sent + held == args.n and len(seen) == args.n and wrong == 0 \
        and claims == 0
    print("ok" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
