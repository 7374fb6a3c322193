#!/usr/bin/env python3
"""run - the fault-injection suite: `volley send` against a scripted
hostile server (tests/faults/hostile.py), in both send.in_doubt modes,
checking after every scenario what a sender relies on.

    run.py --volley PATH [--only NAME[,NAME...]] [--keep]

For each scenario it makes a store with a campaign of a few recipients,
starts hostile.py with the scenario's script, runs `volley send` until
nothing is due any more (a few runs at most: retries are due after 1 s),
and then checks, recipient by recipient, the store against what the
server logged as accepted (matched by Message-ID, which carries the job's
id and is the same on every attempt):

  sent-was-taken   a recipient recorded sent was accepted by the server;
  right-reply      its queue id is the one the server gave that message:
                   the reply recorded is the one to its end of data, not
                   a neighbour's;
  copies           a recipient got at most two copies, and copies beyond
                   the first only for the times it was in doubt;
  never-failed     nobody failed: no scenario here refuses anyone, so a
                   failure could only come from a server being slow or
                   broken, which must never fail a recipient;
  settled          nothing is left queued or due as untried: a recipient
                   is sent, or held/deferred in doubt (the server may
                   have it), and never handed back as if never tried.

Exit status 0 when every check of every scenario held.
"""
import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HELD_AFTER = 1 << 60        # next_attempt_at beyond this: held (STORE_HELD)

# name: (hostile.py flags, script rules, recipients, extra volley.cfg smtp
#        [, True: a connection the fault struck must carry nothing])
SCENARIOS = {
    # the server answers every final dot after the client's timeout
    "slow-dot": ([], [{"on": "dot", "delay_ms": 1600}], 4, ""),
    # ... only the first message's: one in doubt, the rest sent once
    "slow-dot-once": ([], [{"on": "dot", "conn": 1, "msg": 1,
                            "delay_ms": 1600}], 4, ""),
    # no reply at all to the end of data, ever
    "silent-dot": ([], [{"on": "dot", "silent": True}], 3, ""),
    # the connection closes right after the message was accepted
    "drop-after-dot": ([], [{"on": "dot", "drop": True, "times": 2}], 4,
                       ""),
    # 354 and a 250 in one read, before the body could be sent
    "early-250": ([], [{"on": "data", "early": "250 2.0.0 too soon",
                        "times": 3}], 3, ""),
    "early-250-plain": (["--no-enhanced"],
                        [{"on": "data", "early": "250 too soon",
                          "times": 3}], 3, ""),
    # replies out of order: the pipelined MAIL answered before the dot
    "swapped": ([], [{"on": "dot", "swap": True, "times": 2}], 4, ""),
    "swapped-plain": (["--no-enhanced"],
                      [{"on": "dot", "swap": True, "times": 2}], 4, ""),
    # a greeting that is not 220
    "greeting-250": ([], [{"on": "greeting", "reply": "250 hello?",
                           "times": 2}], 3, "", True),
    # a reply line with a bare CR and control bytes in it
    "bare-cr": ([], [{"on": "rcpt", "raw": "250 ok\rX-Injected: 1\r\n",
                      "times": 2}], 3, "", True),
    # an escape sequence in a reply: a protocol error, never printed
    "escape": ([], [{"on": "mail", "raw": "250 \x1b]0;owned\x07ok\r\n",
                     "times": 2}], 3, "", True),
    # every reply one byte at a time
    "split": ([], [{"on": "mail", "split": 1}, {"on": "rcpt", "split": 1},
                   {"on": "dot", "split": 1}], 4, ""),
    # the connection dropped at each step before the end of data
    "drop-greeting": ([], [{"on": "greeting", "drop": True, "times": 2}],
                      3, ""),
    "drop-ehlo": ([], [{"on": "ehlo", "drop": True, "times": 2}], 3, ""),
    "drop-mail": ([], [{"on": "mail", "drop": True, "times": 2}], 3, ""),
    "drop-rcpt": ([], [{"on": "rcpt", "drop": True, "times": 2}], 3, ""),
    "drop-data": ([], [{"on": "data", "drop": True, "times": 2}], 3, ""),
    # garbage instead of a reply
    "garbage": ([], [{"on": "rcpt", "raw": "no reply at all\r\n",
                      "times": 2}], 3, ""),
    # a slow MAIL reply past the command timeout, then normal
    "slow-mail": ([], [{"on": "mail", "delay_ms": 2600, "times": 1}], 3,
                  ""),
    # a reply in Latin-1 with the byte 9B (CSI to an 8-bit terminal): a
    # deferral; on the terminal and in the accounting log, no C1 byte
    "c1-text": ([], [{"on": "rcpt", "times": 2, "latin1":
                      "451 4.3.0 sp\u00e4ter \u009b31mRED\u009b0m\r\n"}],
                3, ""),
}

# Faults of the store rather than the server: name -> (hostile.py script,
# recipients, driver).  The driver makes the first run itself and returns
# what it saw wrong; then runs go on as for the others.
def lock_store(cwd, after, hold_for):
    """another process's connection takes the write lock for a while"""
    def hold():
        time.sleep(after)
        db = sqlite3.connect(os.path.join(cwd, "t.db"), timeout=10,
                             isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        time.sleep(hold_for)
        db.execute("ROLLBACK")
        db.close()
    t = threading.Thread(target=hold)
    t.start()
    return t


def drive_locked(volley, cwd, log):
    """the lock held past busy_timeout while results come in: they wait
    in memory, nothing is lost, the run ends well"""
    t = lock_store(cwd, 0.5, 2.5)
    r = run([volley, "send", "news"], cwd)
    t.join()
    log.write("--- locked run: exit %d\n%s%s" % (r.returncode, r.stdout,
                                                 r.stderr))
    bad = []
    if r.returncode != 0:
        bad.append("store-busy: the run failed instead of waiting: %s" %
                   r.stderr.strip()[-300:])
    if "wait in memory" not in r.stderr:
        bad.append("store-busy: the run never said the store was busy")
    return bad


def wait_accepted(cwd, n, timeout=20.0):
    """until the server has logged n messages accepted (or timeout s): a
    run has then started and claimed, however slow its start was"""
    path = os.path.join(cwd, "accepted.jsonl")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            with open(path) as f:
                if sum(1 for _ in f) >= n:
                    return
        time.sleep(0.05)


def accepted_count(cwd):
    path = os.path.join(cwd, "accepted.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for _ in f)


def drive_stop_locked(volley, cwd, log):
    """stopped (SIGTERM) while the store is locked: the run gives up on
    the store; what may have left stays leased, never back as untried"""
    db = None
    p = subprocess.Popen([volley, "send", "news"], cwd=cwd,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    wait_accepted(cwd, 1)
    db = sqlite3.connect(os.path.join(cwd, "t.db"), timeout=10,
                         isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    # a message accepted while the store is locked: its result waits
    wait_accepted(cwd, accepted_count(cwd) + 1, timeout=10)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    db.execute("ROLLBACK")
    db.close()
    log.write("--- stopped run: exit %d\n%s%s" % (p.returncode, out, err))
    bad = []
    if p.returncode == 0:
        bad.append("stop-locked: the run said all was well")
    if "stay leased" not in err and "leases will expire" not in err:
        bad.append("stop-locked: the run did not say what it left "
                   "leased: %s" % err.strip()[-300:])
    return bad


def fill_disk(cwd):
    """fill the small tmpfs under cwd; returns the file that did"""
    filler = os.path.join(cwd, "small", "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    os.close(fd)
    return filler


def drive_full(volley, cwd, log):
    """the disk under the store fills up while results come in: they
    wait in memory until there is room again, nothing is lost"""
    p = subprocess.Popen([volley, "send", "news"], cwd=cwd,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    wait_accepted(cwd, 1)
    filler = fill_disk(cwd)
    time.sleep(2)
    os.unlink(filler)
    out, err = p.communicate(timeout=60)
    log.write("--- disk-full run: exit %d\n%s%s" % (p.returncode, out, err))
    bad = []
    if p.returncode != 0:
        bad.append("store-full: the run failed instead of waiting: %s" %
                   err.strip()[-300:])
    if "disk is full" not in err:
        bad.append("store-full: the run never said the disk was full")
    return bad


def drive_accounting_full(volley, cwd, log):
    """the disk under the accounting log is full: the run says so, and
    the store still has every result"""
    fill_disk(cwd)
    r = run([volley, "send", "news"], cwd)
    log.write("--- accounting-full run: exit %d\n%s%s" % (r.returncode,
                                                       r.stdout, r.stderr))
    bad = []
    if r.returncode == 0:
        bad.append("accounting-full: the run said all was well")
    if "accounting_log" not in r.stderr or "No space" not in r.stderr:
        bad.append("accounting-full: the run did not say the log lost "
                   "lines: %s" % r.stderr.strip()[-300:])
    return bad


def drive_auth_required(volley, cwd, log):
    """the relay wants AUTH (530 to MAIL on the first connection): the
    run stops with one message naming the settings, and every recipient
    stays queued with no attempt spent"""
    r = run([volley, "send", "news"], cwd)
    log.write("--- 530 run: exit %d\n%s%s" % (r.returncode, r.stdout,
                                              r.stderr))
    bad = []
    if r.returncode != 1:
        bad.append("auth-530: the run exited %d, not 1" % r.returncode)
    if "smtp.username" not in r.stderr or "530" not in r.stderr:
        bad.append("auth-530: the run did not name the 530 and the "
                   "setting to fix: %s" % r.stderr.strip()[-300:])
    for jid, j in sorted(jobs(cwd, "auth-530").items()):
        if j["state"] != 0 or j["attempts"] != 0:
            bad.append("auth-530: %s is %s with %d attempts, not queued "
                       "and untried" % (j["address"], STATE[j["state"]],
                                        j["attempts"]))
    return bad


STORE_SCENARIOS = {
    "store-locked": ([{"on": "dot", "delay_ms": 150}], 12, drive_locked),
    "stop-locked": ([{"on": "dot", "delay_ms": 150}], 12,
                    drive_stop_locked),
    "store-full": ([{"on": "dot", "delay_ms": 100}], 30, drive_full),
    "accounting-full": ([], 5, drive_accounting_full),
    "auth-530": ([{"on": "mail", "conn": 1,
                   "reply": "530 5.7.0 Authentication required"}], 6,
                 drive_auth_required),
}

# where a scenario keeps its store, when not in the folder itself; and
# which ones need the small tmpfs at all
STORE_DB = {"store-full": "small/t.db"}
SMALL = ("store-full", "accounting-full")
SEND_EXTRA = {"accounting-full": 'accounting_log = "small/acct.csv";',
              "c1-text": 'accounting_log = "acct.csv";'}

MODES = ("resend", "hold")


def volley_cfg(path, port, mode, extra, conns=2, db="t.db", send=""):
    with open(path, "w") as f:
        f.write('store = { path = "%s"; busy_timeout_ms = 200; };\n' % db +
                'smtp = { host = "127.0.0.1"; port = %d; tls = "none";\n'
                '         connections = %d; chunking = false;\n'
                '         timeouts = { data_end = 1; command = 2; };\n'
                '         %s };\n'
                'send = { commit_interval_ms = 50; stop_timeout = 5;\n'
                '         retry = { first_delay = 1; max_delay = 1; };\n'
                '         in_doubt = "%s"; %s };\n' % (port, conns, extra, mode,
                                                send))


def run(cmd, cwd, timeout=120):
    # bytes that are not UTF-8 survive into send.log, to be caught there
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          encoding="utf-8", errors="surrogateescape",
                          timeout=timeout)


def setup(volley, cwd, n):
    os.makedirs(os.path.join(cwd, "tpl"))
    with open(os.path.join(cwd, "tpl", "message.cfg"), "w") as f:
        f.write('subject = "fault test";\nfrom = "news@example.org";\n')
    with open(os.path.join(cwd, "tpl", "body.txt"), "w") as f:
        f.write("hello {{name}}\n")
    with open(os.path.join(cwd, "r.csv"), "w") as f:
        f.write("email,name\n")
        for i in range(n):
            f.write("r%d@example.net,n%d\n" % (i, i))
    for cmd in (["init"], ["campaign", "create", "news", "--from",
                           "news@example.org", "--template", "tpl"],
                ["import", "news", "r.csv"]):
        r = run([volley] + cmd, cwd)
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr))


def status(volley, cwd):
    r = run([volley, "status", "--json"], cwd)
    return json.loads(r.stdout)[0]


def start_server(cwd, flags, script):
    with open(os.path.join(cwd, "script.json"), "w") as f:
        json.dump(script, f)
    portf = os.path.join(cwd, "port")
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "hostile.py"),
                          "--port-file", portf, "--log",
                          os.path.join(cwd, "accepted.jsonl"), "--script",
                          os.path.join(cwd, "script.json"), "--struck",
                          os.path.join(cwd, "struck.jsonl")] + flags,
                         cwd=cwd, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(cwd, "server.err"), "w"))
    for _ in range(100):
        if os.path.exists(portf):
            return p, int(open(portf).read())
        time.sleep(0.05)
    p.kill()
    raise RuntimeError("hostile.py did not start")


def jobs(cwd, name):
    db = sqlite3.connect(os.path.join(cwd, STORE_DB.get(name, "t.db")))
    cols = [r[1] for r in db.execute("PRAGMA table_info(jobs)")]
    doubts = "doubts" if "doubts" in cols else "0"
    # since schema 10 a result may be in the journal: jobs_now applies it
    table = "jobs_now" if db.execute(
        "SELECT 1 FROM sqlite_schema WHERE name = 'jobs_now'").fetchone() \
        else "jobs"
    rows = db.execute("SELECT id, address, state, attempts, queue_id, "
                      "next_attempt_at, last_reply, %s FROM %s"
                      % (doubts, table))
    out = {}
    for r in rows:
        out[r[0]] = {"address": r[1], "state": r[2], "attempts": r[3],
                     "queue_id": r[4], "next": r[5], "reply": r[6],
                     "doubts": r[7]}
    db.close()
    return out


def accepted(cwd):
    copies = {}
    path = os.path.join(cwd, "accepted.jsonl")
    if not os.path.exists(path):
        return copies
    for line in open(path):
        rec = json.loads(line)
        m = re.match(r"<volley\.\d+\.(\d+)\.", rec.get("message_id") or "")
        if not m:
            continue
        copies.setdefault(int(m.group(1)), []).append(
            "H%d.%d" % (rec["conn"], rec["msg"]))
    return copies


STATE = {0: "queued", 1: "sending", 2: "sent", 3: "deferred", 4: "failed"}


def clean_output(name, data):
    """What volley wrote (its output, the accounting log) is UTF-8 with
    no control in it - no escape, no bare CR, no C1 - whatever the server
    sent: it must not be able to drive a terminal."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return ["clean-output: %s holds a byte that is not UTF-8: %r" %
                (name, data[max(e.start - 40, 0):e.end + 20])]
    for line in text.split("\n"):
        line = line[:-1] if line.endswith("\r") and name.endswith(".csv") \
            else line
        if any(ord(c) < 0x20 and c != "\t" or 0x7f <= ord(c) <= 0x9f
               for c in line):
            return ["clean-output: %s holds a control character: %r" %
                    (name, line)]
    return []


def recount(cwd, name):
    """the store's counts of jobs per state (kept in C since schema 8)
    against a count of the jobs (a queued job in the range of a claim
    with an owner is sending, since schema 9): the (campaign, state,
    counted, real) that differ"""
    db = sqlite3.connect(os.path.join(cwd, STORE_DB.get(name, "t.db")))
    rows = db.execute(
        "SELECT c.campaign_id, c.state, c.n, (SELECT count(*) FROM jobs_now j"
        " WHERE j.campaign_id = c.campaign_id AND CASE WHEN j.state = 0"
        " AND EXISTS (SELECT 1 FROM claims k WHERE k.campaign_id ="
        " j.campaign_id AND k.owner IS NOT NULL AND j.id BETWEEN"
        " k.first_job AND k.last_job) THEN 1 ELSE j.state END = c.state)"
        " AS real FROM campaign_counts c WHERE c.n <> real").fetchall()
    db.close()
    return rows


def check(name, mode, cwd):
    js, got = jobs(cwd, name), accepted(cwd)
    bad = ["counts: campaign %d, state %s: counted %d, jobs %d" %
           (c, STATE.get(s, str(s)), n, real)
           for c, s, n, real in recount(cwd, name)]
    spec = SCENARIOS.get(name, ())
    if len(spec) > 4 and spec[4]:
        struck = set()
        for line in open(os.path.join(cwd, "struck.jsonl")):
            struck.add(json.loads(line)["conn"])
        for line in open(os.path.join(cwd, "accepted.jsonl")):
            rec = json.loads(line)
            if rec["conn"] in struck:
                bad.append("no-carry: connection %d, struck by the fault, "
                           "carried a message" % rec["conn"])
    for out in ("send.log", "acct.csv"):
        path = os.path.join(cwd, out)
        if os.path.exists(path):
            bad += clean_output(out, open(path, "rb").read())
    for jid, j in sorted(js.items()):
        ids = got.get(jid, [])
        who = "%s (job %d, %s, %d attempts, doubts %s, %d copies)" % (
            j["address"], jid, STATE[j["state"]], j["attempts"], j["doubts"],
            len(ids))
        held = j["state"] == 3 and j["next"] > HELD_AFTER
        if j["state"] == 2 and not ids:
            bad.append("sent-was-taken: %s is recorded sent but the "
                       "server took nothing" % who)
        if j["state"] == 2 and ids and j["queue_id"] not in ids:
            bad.append("right-reply: %s is recorded with queue id %r, the "
                       "server gave %s" % (who, j["queue_id"], ids))
        if len(ids) > 2:
            bad.append("copies: %s got more than two" % who)
        extra = len(ids) - (1 if j["state"] == 2 else 0)
        if extra > j["doubts"]:
            bad.append("copies: %s: more than one per in-doubt event" %
                       who)
        if j["state"] == 4:
            bad.append("never-failed: %s failed: %s" % (who, j["reply"]))
        if j["state"] in (0, 1):
            bad.append("settled: %s is still %s" % (who, STATE[j["state"]]))
        if j["state"] == 3 and not held and ids:
            bad.append("settled: %s was taken by the server but is due "
                       "again as if not" % who)
    return bad


def scenario(volley, name, mode, keep):
    driver, bad = None, []
    if name in STORE_SCENARIOS:
        script, n, driver = STORE_SCENARIOS[name]
        flags, extra, conns = [], "", 1
    else:
        flags, script, n, extra = SCENARIOS[name][:4]
        conns = 2
    cwd = tempfile.mkdtemp(prefix="volley-fault-%s-%s-" % (name, mode))
    server = None
    mounted = None
    try:
        if name in SMALL:
            mounted = os.path.join(cwd, "small")
            os.mkdir(mounted)
            r = run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                     mounted], cwd)
            if r.returncode != 0:
                mounted = None
                return None, cwd
        server, port = start_server(cwd, flags, script)
        volley_cfg(os.path.join(cwd, "volley.cfg"), port, mode, extra,
                   conns, STORE_DB.get(name, "t.db"),
                   SEND_EXTRA.get(name, ""))
        setup(volley, cwd, n)
        log = open(os.path.join(cwd, "send.log"), "w", encoding="utf-8",
                   errors="surrogateescape")
        if driver is not None:
            bad += driver(volley, cwd, log)
        for i in range(8):
            r = run([volley, "send", "news", "--quiet"], cwd)
            log.write("--- run %d: exit %d\n%s%s" % (i + 1, r.returncode,
                                                     r.stdout, r.stderr))
            st = status(volley, cwd)
            due = st["queued"] + st["deferred"] - st.get("in_doubt", 0)
            if due == 0:
                break
            time.sleep(1.1)
        log.close()
        bad += check(name, mode, cwd)
        return bad, cwd
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait()
        if mounted is not None:
            run(["umount", "-l", mounted], cwd)
        if not keep and not os.environ.get("VOLLEY_FAULTS_KEEP"):
            pass


def alloc_points(total):
    """Where the sweep makes an allocation fail: densely through the
    start (configuration, store, template), then spread over the send."""
    points = list(range(1, min(total, 400), 19))
    points += list(range(400, total + 50, max(total // 45, 1)))
    return points


def alloc_fail(volley, failmalloc, keep):
    """Allocation failure injection: for each point N of a sweep, a
    fresh campaign and server, one `volley send` whose Nth allocation
    fails (every other point: and all after it), then plain runs until
    nothing is due.  Each failing run must end with a clear message and
    status 1 (never a signal), leave the store intact, and the recipients'
    fates must pass the usual checks: nobody recorded sent who was not
    taken, no second copy without an in-doubt event (so nothing
    committed is sent again), nobody failed.  The points take turns at
    the two send.in_doubt modes."""
    top = tempfile.mkdtemp(prefix="volley-fault-alloc-fail-")
    bad = []
    env = dict(os.environ)
    # how many allocations a send makes, roughly (threads vary it)
    total = 0
    for i, n in enumerate([0] + alloc_points(4000)):
        cwd = os.path.join(top, "n%d" % n)
        mode = MODES[(i // 2) % 2]
        os.makedirs(cwd)
        server, port = start_server(cwd, [], [])
        try:
            volley_cfg(os.path.join(cwd, "volley.cfg"), port, mode, "")
            setup(volley, cwd, 6)
            log = open(os.path.join(cwd, "send.log"), "w")
            fenv = dict(env, LD_PRELOAD=failmalloc)
            if n == 0:
                fenv["VOLLEY_FAILMALLOC_COUNT"] = os.path.join(cwd, "count")
            else:
                fenv["VOLLEY_FAILMALLOC_NTH"] = str(n)
                fenv["VOLLEY_FAILMALLOC_PERSIST"] = "1" if i % 2 else "0"
            # memory that never comes back: the run says so and waits
            # for the store a while (SEND_STORE_PATIENCE_MS); stop it
            p = subprocess.Popen([volley, "send", "news", "--quiet"],
                                 cwd=cwd, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 env=fenv)
            try:
                out, err = p.communicate(timeout=8)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGTERM)
                out, err = p.communicate(timeout=60)
            rc = p.returncode
            log.write("--- failing run (allocation %d%s): exit %d\n%s%s" %
                      (n, " on" if i % 2 else "", rc, out, err))
            if n == 0:
                total = int(open(os.path.join(cwd, "count")).read())
            if rc not in (0, 1, 143):
                bad.append("alloc %d: exit %d, not 0, 1 or 143: %s" %
                           (n, rc, err.strip()[-300:]))
            elif rc == 1 and not err.startswith("volley:") and \
                    "\nvolley: " not in err:
                bad.append("alloc %d: no clear message: %r" %
                           (n, err[-300:]))
            elif rc == 143 and "out of memory" not in err:
                bad.append("alloc %d: stopped, and never said it was out "
                           "of memory: %r" % (n, err[-300:]))
            db = sqlite3.connect(os.path.join(cwd, "t.db"))
            ok = db.execute("PRAGMA integrity_check").fetchone()[0]
            db.close()
            if ok != "ok":
                bad.append("alloc %d: the store is damaged: %s" % (n, ok))
            for k in range(8):
                r = run([volley, "send", "news", "--quiet"], cwd)
                log.write("--- run %d: exit %d\n%s%s" % (
                    k + 1, r.returncode, r.stdout, r.stderr))
                st = status(volley, cwd)
                if st["queued"] + st["deferred"] - \
                        st.get("in_doubt", 0) == 0:
                    break
                time.sleep(1.1)
            log.close()
            bad += ["alloc %d: %s" % (n, b) for b in check("alloc-fail",
                                                          mode, cwd)]
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
        if n > total + 50 and total > 0:
            break
    if not bad and not keep:
        shutil.rmtree(top, ignore_errors=True)
    return bad, top


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--volley", required=True)
    ap.add_argument("--failmalloc",
                    help="tests/faults/failmalloc.c built as a shared "
                    "library: runs the alloc-fail scenario")
    ap.add_argument("--only")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.volley = os.path.abspath(args.volley)
    names = args.only.split(",") if args.only else \
        list(SCENARIOS) + list(STORE_SCENARIOS) + ["alloc-fail"]
    failures = 0
    for name in names:
        if name == "alloc-fail":
            t0 = time.time()
            if not args.failmalloc:
                print("skip %-18s both   (no --failmalloc: a sanitizer "
                      "build cannot take it)" % name)
                continue
            bad, cwd = alloc_fail(args.volley,
                                  os.path.abspath(args.failmalloc),
                                  args.keep)
            took = time.time() - t0
            if bad:
                failures += 1
                print("FAIL %-18s both   (%.1f s, kept in %s)" %
                      (name, took, cwd))
                for b in bad[:40]:
                    print("  " + b)
            else:
                print("ok   %-18s both   (%.1f s)" % (name, took))
            continue
        for mode in MODES:
            t0 = time.time()
            bad, cwd = scenario(args.volley, name, mode, args.keep)
            took = time.time() - t0
            if bad is None:
                print("skip %-18s %-6s (a small tmpfs needs root)" %
                      (name, mode))
                shutil.rmtree(cwd, ignore_errors=True)
                if os.environ.get("CI") == "true":
                    failures += 1
                continue
            if bad:
                failures += 1
                print("FAIL %-18s %-6s (%.1f s, kept in %s)" %
                      (name, mode, took, cwd))
                for b in bad:
                    print("  " + b)
                for line in open(os.path.join(cwd, "send.log")):
                    print("  | " + line.rstrip())
            else:
                print("ok   %-18s %-6s (%.1f s)" % (name, mode, took))
                if not args.keep:
                    shutil.rmtree(cwd, ignore_errors=True)
    runs = sum(1 if n == "alloc-fail" else len(MODES) for n in names)
    print("%d of %d scenario runs failed" % (failures, runs))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
