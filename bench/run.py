#!/usr/bin/env python3
"""bench/run - every performance figure volley claims, from one command.

    bench/run [--quick] [--only SECTIONS] [--out DIR]

Builds volley in release mode (build-release/) if needed, then runs:

  micro    bench_render, bench_mime, bench_session, bench_store, bench_import
  e2e      loopback, Postfix's smtp-sink as the one sink: smtp-source,
           Python smtplib, Nodemailer (pool), volley send (store + per
           recipient rendering + results recorded) and a raw replay of
           pre-built pipelined streams; 4 KB and 64 KB; 1, 8, 32
           connections; messages/s and client CPU per 1,000 messages
  newsletter the ~100 KB newsletter of bench/newsletter.py (HTML + text,
           per-recipient variables in both, an inline PNG) through volley
           send to smtp-sink beside smtp-source -l SIZE (SIZE: one
           rendered message, from volley preview), 8 connections, same
           count, rounds alternating; messages/s, client CPU and
           smtp-sink's CPU per 1,000 messages
  loadtest volley loadtest against smtp-sink beside smtp-source, same
           connections (8), count and bytes, at 1 KB and 4 KB;
           messages/s, client CPU and smtp-sink's CPU per 1,000 messages
  insn     user-space instructions per message, volley send and
           smtp-source (valgrind --tool=callgrind; perf needs hardware
           counters a VM may not have)
  tls      STARTTLS + AUTH PLAIN against volley sink: volley, Python,
           Nodemailer, and volley in plaintext on the same sink
  latency  two network namespaces, 10 ms each way through
           bench/delay_relay (this kernel has no netem), 8 connections
  durable  volley send of 1,000,000 recipients (quick: 100,000), 4 KB,
           rendered per recipient, every result committed, to volley
           sink with CHUNKING, 8 connections, beside volley loadtest
           --chunking on (the bare engine) with as many messages of the
           same size on the same sink; messages/s, CPU, peak RSS
  memory   peak RSS of volley send: the durable section's 1,000,000
           recipients (run here if that section was not), 16 messages of
           50 MB through 1 and 4 connections (BDAT and DATA), and (full
           run only, one round, about 5 minutes) a 10,000,000-recipient
           campaign
  importmem peak RSS and rows/s of volley import of 10^5, 10^6 and (full
           run only, one round) 10^7 rows of email,name with 1% duplicates
           and 0.1% bad rows, each into a new store, then the 10^6 rows
           again into the 10^7-row campaign (all duplicates)
  dkim     bench_dkim (signatures per CPU-second, RSA-2048 and Ed25519,
           4 KB and 100 KB, relaxed/relaxed; the key operation and the
           hashing apart) beside `openssl speed rsa2048 ed25519`; and
           volley send, 4 KB, 8 connections, to volley sink, with
           signing off, RSA-2048, Ed25519 and both: messages/s and CPU
  postgres PostgreSQL rows: none until that backend exists (a line in
           the targets says so)

Targets (issue 17 and before) are checked at the end: met, or **no**,
with the measured ratio.

It writes bench/results/<date>.md and .json (and latest.md, latest.json)
with the machine's core count and the date, and prints the Markdown.
Every server is started here, on loopback or in the namespaces made here,
and stopped by its PID.  --quick runs one round of smaller counts (about
two minutes on 2 cores); the full run takes medians of 3 rounds (about
20 minutes on 2 cores, 4 to 6 of them the 10,000,000-recipient campaign:
its CSV, its import and its send; under 25 in all).
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-release")
VOLLEY = os.path.join(BUILD, "cli", "volley")
PEERS = os.path.join(ROOT, "bench", "peers")
SBIN = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
SINK_PASSWORD = "bench-secret"


def _load(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "bench", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


NEWSLETTER = _load("newsletter")    # bench/newsletter.py


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def which(name):
    for d in os.environ.get("PATH", "").split(":") + SBIN:
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, netns=None, timeout=10.0):
    """Wait until something listens on host:port (inside netns if given)."""
    end = time.time() + timeout
    while time.time() < end:
        if netns is None:
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                pass
        else:
            r = subprocess.run(["ip", "netns", "exec", netns, "python3", "-c",
                                "import socket,sys; socket.create_connection"
                                "((sys.argv[1], int(sys.argv[2])), 0.5)",
                                host, str(port)], capture_output=True)
            if r.returncode == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


class Servers:
    """Background processes started here, stopped by their PID."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, **kw):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)


# The system (kernel) CPU seconds of the last run_client's child: what
# its sends and receives cost in the kernel, which no user-space change
# can cut (the newsletter target's floor).
LAST_SYS_CPU = [None]


def run_client(cmd, cwd=None, env=None, netns=None, timeout=900):
    """Run one client; return (wall seconds, CPU seconds, stdout, rc,
    peak RSS KB); its system CPU seconds into LAST_SYS_CPU[0]."""
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    start = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    # wait4 gives this child's own CPU time, whatever else runs.
    out_chunks, err_chunks = [], []
    t1 = threading.Thread(target=lambda: out_chunks.append(p.stdout.read()))
    t2 = threading.Thread(target=lambda: err_chunks.append(p.stderr.read()))
    t1.start()
    t2.start()
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            break
        if time.monotonic() > deadline:
            p.kill()
        time.sleep(0.005)
    wall = time.monotonic() - start
    t1.join()
    t2.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    LAST_SYS_CPU[0] = ru.ru_stime
    out = out_chunks[0].decode(errors="replace") if out_chunks else ""
    err = err_chunks[0].decode(errors="replace") if err_chunks else ""
    if p.returncode != 0:
        log(f"  ! {' '.join(cmd[:6])}... exited {p.returncode}: "
            f"{err.strip()[-300:]}")
    return wall, ru.ru_utime + ru.ru_stime, out, p.returncode, ru.ru_maxrss


def med(values):
    return statistics.median(values) if values else None


def proc_cpu(pid):
    """A process's CPU seconds so far (user + system, its exited threads
    included): from its CPU-time clock, to the nanosecond (a sink's
    share of a short run is a few clock ticks, which /proc counts in
    whole ticks), else from /proc."""
    try:
        # Linux's clock id for a process's CPU time (CPUCLOCK_SCHED of
        # the whole thread group): ((~pid) << 3) | 2
        return time.clock_gettime(((~pid) << 3) | 2)
    except (OSError, OverflowError):
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the name: state is field 3, utime 14 and stime 15 (1-based)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stats(values):
    if not values:
        return None
    return {"median": med(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def fmt(v, digits=0):
    if v is None:
        return "-"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def fmt_range(s, digits=0):
    if s is None:
        return "-"
    if s.get("runs", 0) == 1 or "min" not in s:
        return fmt(s["median"], digits)
    return (f"{fmt(s['median'], digits)} ({fmt(s['min'], digits)}-"
            f"{fmt(s['max'], digits)})")


# --- build -----------------------------------------------------------------

def build():
    log("building release (build-release/)")
    subprocess.run(["cmake", "-S", ROOT, "-B", BUILD,
                    "-DCMAKE_BUILD_TYPE=Release"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j", str(os.cpu_count())],
                   check=True, stdout=subprocess.DEVNULL)


def ensure_nodemailer():
    if not which("node"):
        return "node is not installed"
    if os.path.isdir(os.path.join(PEERS, "node_modules", "nodemailer")):
        return None
    if not which("npm"):
        return "npm is not installed"
    log("installing nodemailer (npm ci in bench/peers)")
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEERS,
                       capture_output=True)
    if r.returncode != 0:
        return "npm ci failed: " + r.stderr.decode(errors="replace")[-200:]
    return None


# --- message content shared by the clients ----------------------------------

def write_template(directory, size):
    """A text template that renders to about `size` bytes per message."""
    os.makedirs(directory, exist_ok=True)
    line = ("We are writing to you in {{city}} about your {{plan}} plan; "
            "this line gives the message its size.\n")
    head = "Hello {{first_name}} {{last_name}},\n\n"
    # ~420 bytes of headers; the rendered line is about as long as the
    # template line (short values replace the tags).
    body_len = max(size - 420 - len(head), 0)
    n = max(body_len // (len(line) - 4), 1)
    with open(os.path.join(directory, "body.txt"), "w") as f:
        f.write(head + line * n)
    with open(os.path.join(directory, "message.cfg"), "w") as f:
        f.write('subject = "Your update, {{first_name}}";\n'
                'from = "Volley Bench <bench@example.org>";\n')


def write_recipients(path, n):
    with open(path, "w") as f:
        f.write("email,first_name,last_name,city,plan\n")
        for i in range(n):
            f.write(f"rcpt{i}@example.org,First{i},Last{i},"
                    f"City{i % 97},pro\n")


def write_import_csv(path, n):
    """n rows of email,name in scrambled order: 1% repeat an earlier row's
    address (half of those in upper case), 0.1% are not addresses."""
    with open(path, "w") as f:
        w = f.write
        w("email,name\n")
        for i in range(n):
            if i % 1000 == 999:
                w(f"not-an-address-{i},Bad {i}\n")
                continue
            j = i // 2 if i % 100 == 50 else i
            h = (j * 2654435761) & 0xffffffff
            a = f"u{h:08x}.{j}@d{j % 1000}.example.com"
            if j != i and i % 200 == 50:
                a = a.upper()
            w(f"{a},Name {i}\n")


def make_cert(work):
    """A self-signed P-256 certificate for localhost and 127.0.0.1 in
    work (made once): (cert, key) paths, for volley sink's STARTTLS."""
    cert = os.path.join(work, "cert.pem")
    key = os.path.join(work, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
    return cert, key


def tls_cfg(cert):
    """The smtp settings for STARTTLS + AUTH PLAIN to a volley sink
    started with cert and --auth bench:SINK_PASSWORD (the password from
    BENCH_PASSWORD, which the caller sets)."""
    return (f'tls = "starttls"; tls_name = "localhost"; '
            f'ca_file = "{cert}"; username = "bench"; '
            'password_env = "BENCH_PASSWORD";')


def dkim_cfg(work, *selectors):
    """volley.cfg's dkim list signing with the keys of selectors ("rsa":
    RSA-2048, "ed": Ed25519), made once in work/dkim-keys."""
    keys = os.path.join(work, "dkim-keys")
    os.makedirs(keys, exist_ok=True)
    entries = []
    for sel in selectors:
        path = os.path.join(keys, sel + ".key")
        if not os.path.exists(path):
            subprocess.run([VOLLEY, "dkim", "keygen", "--domain",
                            "example.org", "--selector", sel,
                            "--algorithm", {"rsa": "rsa",
                                            "ed": "ed25519"}[sel],
                            "--out", path], check=True, capture_output=True)
        entries.append(f'{{ domain = "example.org"; selector = "{sel}"; '
                       f'key_file = "{path}"; }}')
    return f"dkim = ( {', '.join(entries)} );\n"


class VolleyCampaign:
    """A store with one campaign of n recipients, ready to send."""

    def __init__(self, work, size, n, smtp_cfg, name="bench", extra_cfg="",
                 template=None):
        self.dir = tempfile.mkdtemp(prefix="volley-", dir=work)
        tdir = template or os.path.join(work, f"template-{size}")
        if not os.path.isdir(tdir):
            write_template(tdir, size)
        csv = os.path.join(work, f"recipients-{n}.csv")
        if not os.path.exists(csv):
            write_recipients(csv, n)
        with open(os.path.join(self.dir, "volley.cfg"), "w") as f:
            f.write('store = { path = "bench.db"; };\n')
            f.write("smtp = { " + smtp_cfg + " };\n")
            f.write(extra_cfg)
        self.name = name
        for args in (["init"],
                     ["campaign", "create", name, "--from",
                      "bench@example.org", "--template", tdir],
                     ["import", name, csv]):
            subprocess.run([VOLLEY] + args, cwd=self.dir, check=True,
                           stdout=subprocess.DEVNULL)

    def rendered_size(self, limit=10):
        """Mean bytes of one rendered message (CRLF line ends, as on the
        wire before dot-stuffing), from `volley preview` of the first
        `limit` recipients."""
        out = os.path.join(self.dir, "preview")
        subprocess.run([VOLLEY, "preview", self.name, "--limit",
                        str(limit), "--out", out], cwd=self.dir, check=True,
                       stdout=subprocess.DEVNULL)
        sizes = [os.path.getsize(os.path.join(out, f))
                 for f in os.listdir(out) if f.endswith(".eml")]
        shutil.rmtree(out, ignore_errors=True)
        return round(sum(sizes) / len(sizes))

    def sent(self):
        out = subprocess.run([VOLLEY, "status", "--json"], cwd=self.dir,
                             check=True, capture_output=True).stdout
        return json.loads(out)[0]["sent"]

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the runs ---------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.rounds = 1 if args.quick else 3
        self.work = tempfile.mkdtemp(prefix="volley-bench-")
        self.servers = Servers()
        self.results = {"micro": {}, "e2e": [], "tls": [], "latency": {},
                        "loadtest": [],
                        "insn": {}, "memory": {}, "import_memory": [],
                        "dkim": {}, "notes": [], "newsletter": [],
                        "durable": [], "memory_10m": {}, "postgres": {}}
        self.durable_done = False
        self.last_maxrss_mb = None
        self.node_problem = ensure_nodemailer()
        if self.node_problem:
            self.note(f"Nodemailer rows skipped: {self.node_problem}")
        self.smtp_sink = which("smtp-sink")
        self.smtp_source = which("smtp-source")
        if not self.smtp_sink:
            self.note("Postfix (smtp-sink, smtp-source) is not installed: "
                      "apt-get install postfix")

    def note(self, text):
        log("note: " + text)
        self.results["notes"].append(text)

    # clients: each returns (msgs ok, wall, cpu)
    def client_cmd(self, client, host, port, conns, n, size, tls=None,
                   netns=None):
        if client == "smtp-source":
            if not self.smtp_source:
                return None
            # -d: one connection for many messages; -N: distinct recipients
            return [self.smtp_source, "-d", "-N", "-s", str(conns), "-m",
                    str(n), "-l", str(size), "-f", "bench@example.org",
                    "-t", "rcpt@example.org", f"{host}:{port}"]
        if client == "python-smtplib":
            cmd = [sys.executable, os.path.join(PEERS, "smtplib_client.py")]
        elif client == "nodemailer":
            if self.node_problem:
                return None
            cmd = ["node", os.path.join(PEERS, "nodemailer_client.js")]
        elif client.startswith("raw-replay"):
            cmd = [os.path.join(BUILD, "bench", "raw_replay"), "--server",
                   f"{host}:{port}", "--connections", str(conns), "--count",
                   str(n), "--size", str(size)]
            if client == "raw-replay-bdat":
                cmd.append("--bdat")
            elif client == "raw-replay-354":
                cmd.append("--wait-354")
            return cmd
        else:
            raise ValueError(client)
        cmd += ["--host", host, "--port", str(port), "--connections",
                str(conns), "--count", str(n), "--size", str(size)]
        if tls:
            cmd += ["--starttls", "--user", "bench", "--password-env",
                    "BENCH_PASSWORD", "--cafile", tls]
        return cmd

    def run_peer(self, client, host, port, conns, n, size, tls=None,
                 netns=None):
        cmd = self.client_cmd(client, host, port, conns, n, size, tls, netns)
        if cmd is None:
            return None
        env = dict(os.environ, BENCH_PASSWORD=SINK_PASSWORD)
        wall, cpu, out, rc, _ = run_client(cmd, env=env, netns=netns)
        ok = n if rc == 0 else 0
        m = re.search(r"^\{.*\}\s*$", out, re.M)
        if m:
            try:
                j = json.loads(m.group(0))
                ok = j.get("ok", ok)
                if "seconds" in j and client != "smtp-source":
                    # the client's own timing of its send phase; process
                    # start-up (node, python) is left out, to their favour
                    wall = j["seconds"]
            except ValueError:
                pass
        if ok != n:
            log(f"  ! {client}: {ok} of {n} delivered")
            return None
        return ok, wall, cpu

    def run_volley(self, host, port, conns, n, size, extra="", netns=None,
                   sink_chunking=True, template=None):
        """volley send of n recipients; (sent, seconds, CPU seconds), and
        the process's peak RSS in self.last_maxrss_mb."""
        cfg = (f'host = "{host}"; port = {port}; tls = "none"; '
               f"connections = {conns}; {extra}")
        camp = VolleyCampaign(self.work, size, n, cfg, template=template)
        try:
            wall, cpu, out, rc, maxrss = run_client(
                [VOLLEY, "send", camp.name, "--quiet"], cwd=camp.dir,
                netns=netns)
            sent = camp.sent()
        finally:
            camp.cleanup()
        self.last_maxrss_mb = maxrss / 1024
        if rc != 0 or sent != n:
            log(f"  ! volley send: {sent} of {n} sent")
            return None
        return sent, self.send_phase(out, wall), cpu

    @staticmethod
    def send_phase(out, wall):
        """volley send's own timing of its send (connections up to the
        last result), as the peers report theirs: without the process's
        start (store open, template load) and exit."""
        m = re.search(r"\(([\d.]+) s, \d+ messages/s\)", out)
        return float(m.group(1)) if m and float(m.group(1)) > 0 else wall

    def repeat(self, fn, *a, **kw):
        """self.rounds runs of fn, which returns (ok, seconds, CPU
        seconds) or None: stats of the rates and of CPU s / 1,000."""
        rates, cpus, _ = self.repeat_on(None, fn, *a, **kw)
        return rates, cpus

    def repeat_on(self, sink, fn, *a, **kw):
        """repeat(), and with sink (a Popen; None: none) the sink's CPU
        s / 1,000 messages during each run (what a ceiling on two shared
        cores is made of) as a third stats, else None."""
        rates, cpus, sinks = [], [], []
        for _ in range(self.rounds):
            before = proc_cpu(sink.pid) if sink else 0
            r = fn(*a, **kw)
            if r is None:
                continue
            ok, wall, cpu = r
            rates.append(ok / wall)
            cpus.append(cpu * 1000.0 / ok)
            if sink:
                sinks.append((proc_cpu(sink.pid) - before) * 1000.0 / ok)
        return stats(rates), stats(cpus), stats(sinks)

    def start_smtp_sink(self, host="127.0.0.1", netns=None):
        port = free_port() if netns is None else 2526
        cmd = [self.smtp_sink, "-u", "nobody", "-c", f"{host}:{port}",
               "1000"]
        if os.geteuid() != 0:
            cmd = [self.smtp_sink, "-c", f"{host}:{port}", "1000"]
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        p = self.servers.start(cmd)
        wait_port(host, port, netns)
        return p, port

    def start_volley_sink(self, host="127.0.0.1", tls=None, netns=None,
                          port=None):
        port = port or free_port()
        cmd = [VOLLEY, "sink", "-q", "--listen", f"{host}:{port}"]
        if tls:
            cmd += ["--tls-cert", tls[0], "--tls-key", tls[1], "--auth",
                    f"bench:{SINK_PASSWORD}"]
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        p = self.servers.start(cmd)
        wait_port(host, port, netns)
        return p, port

    # --- sections -----------------------------------------------------------

    def micro(self):
        log("micro benchmarks")
        m = self.results["micro"]
        b = os.path.join(BUILD, "bench")
        secs = "0.3" if self.quick else "0.5"
        out = subprocess.run([os.path.join(b, "bench_render"), "-s", secs],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            g = re.match(r"(\S+)\s+median\s+(\d+) messages per CPU-second"
                         r" \(min (\d+), max (\d+)", line)
            if g:
                m["render_" + g.group(1)] = {
                    "median": float(g.group(2)), "min": float(g.group(3)),
                    "max": float(g.group(4)),
                    "unit": "messages per CPU-second"}
        m["render_raw"] = out
        for prog in ("bench_mime", "bench_session"):
            path = os.path.join(b, prog)
            if not os.path.exists(path):
                self.note(f"{prog} is not built")
                continue
            out = subprocess.run([path, "-s", "0.2" if self.quick else "0.3"],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                g = re.match(r"RESULT (\S+) ([\d.e+-]+) (.+)$", line)
                if g:
                    m[g.group(1)] = {"median": float(g.group(2)),
                                     "unit": g.group(3).strip()}
        out = subprocess.run([os.path.join(b, "bench_store"), "--jobs",
                              "200000" if self.quick else "1000000"],
                             capture_output=True, text=True).stdout
        m["store_raw"] = out
        rows = "200000" if self.quick else "1000000"
        out = subprocess.run([os.path.join(b, "bench_import"), "--rows",
                              rows, "--runs", str(self.rounds)],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            g = re.match(r"(import|store only|SQLite only): (\d+) rows.*"
                         r"median (\d+) rows/s \(min (\d+), max (\d+)", line)
            if g:
                m["import_" + g.group(1).replace(" ", "_")] = {
                    "rows": int(g.group(2)), "median": int(g.group(3)),
                    "min": int(g.group(4)), "max": int(g.group(5)),
                    "unit": "rows/s"}

    def e2e(self):
        if not self.smtp_sink:
            return
        log("end to end on loopback, Postfix smtp-sink")
        sink, port = self.start_smtp_sink()
        sizes = [(4096, 10000 if self.quick else 50000),
                 (65536, 1000 if self.quick else 1000)]
        conn_list = [8] if self.quick else [1, 8, 32]
        clients = ["smtp-source", "python-smtplib", "nodemailer", "volley",
                   "raw-replay"]
        try:
            for size, n in sizes:
                for conns in conn_list:
                    for client in clients:
                        log(f"  {client}: {size} B x {n}, {conns} conn")
                        if client == "volley":
                            rate, cpu = self.repeat(
                                self.run_volley, "127.0.0.1", port, conns,
                                n, size)
                        else:
                            rate, cpu = self.repeat(
                                self.run_peer, client, "127.0.0.1", port,
                                conns, n, size)
                        self.results["e2e"].append({
                            "size": size, "messages": n,
                            "connections": conns, "client": client,
                            "sink": "smtp-sink", "rate": rate,
                            "cpu_s_per_1000": cpu})
        finally:
            self.servers.stop(sink)

    def rendered_size(self, size=4096, template=None):
        """Bytes of one message the template renders to for the
        recipients written here (volley preview, mean of 10)."""
        probe = VolleyCampaign(self.work, size, 10,
                               'host = "127.0.0.1"; port = 25; '
                               'tls = "none";', template=template)
        try:
            return probe.rendered_size()
        finally:
            probe.cleanup()

    def alternate(self, clients, sink=None):
        """self.rounds rounds of each (name, fn) in clients, in turn, so
        that a drift in the machine's speed hits all of them; fn returns
        (ok, seconds, CPU seconds) or None.  With sink (a Popen), that
        process's CPU during each run is added to the tuple (None without
        one), then the client's system CPU seconds (LAST_SYS_CPU).
        Returns {name: [tuples]} and {name: [peak RSS MB of volley
        send]}."""
        runs = {name: [] for name, _ in clients}
        rss = {name: [] for name, _ in clients}
        for _ in range(self.rounds):
            for name, fn in clients:
                before = proc_cpu(sink.pid) if sink else 0
                self.last_maxrss_mb = None
                LAST_SYS_CPU[0] = None
                r = fn()
                if r is None:
                    continue
                sc = proc_cpu(sink.pid) - before if sink else None
                runs[name].append(tuple(r) + (sc, LAST_SYS_CPU[0]))
                if self.last_maxrss_mb is not None:
                    rss[name].append(self.last_maxrss_mb)
        return runs, rss

    @staticmethod
    def side_by_side_row(client, rr, **fields):
        """A result row from alternate()'s runs of one client."""
        row = dict(client=client, **fields)
        row["rate"] = stats([ok / wall for ok, wall, *_ in rr])
        row["cpu_s_per_1000"] = stats([cpu * 1000.0 / ok
                                       for ok, _, cpu, *_ in rr])
        if rr and rr[0][3] is not None:
            row["sink_cpu_s_per_1000"] = stats(
                [sc * 1000.0 / ok for ok, _, _, sc, *_ in rr])
            row["sink_busy"] = stats([sc / wall
                                      for _, wall, _, sc, *_ in rr])
        if rr and all(len(r) > 4 and r[4] is not None for r in rr):
            row["sys_cpu_s_per_1000"] = stats(
                [r[4] * 1000.0 / r[0] for r in rr])
        return row

    def newsletter(self):
        """The 100 KB newsletter of bench/newsletter.py (HTML with its
        text version, per-recipient variables in both, an inline PNG)
        through volley send to smtp-sink, 8 connections, beside
        smtp-source -l SIZE, SIZE the bytes of one rendered message
        (volley preview), the same count and connections.  Rounds
        alternate the clients; smtp-sink's CPU per message from /proc."""
        if not self.smtp_sink or not self.smtp_source:
            self.note("newsletter section skipped: needs smtp-sink and "
                      "smtp-source")
            return
        tdir = os.path.join(self.work, "newsletter")
        NEWSLETTER.write_newsletter(tdir)
        size = self.rendered_size(template=tdir)
        n = 5000 if self.quick else 20000
        conns = 8
        log(f"newsletter: {size:,} B x {n:,}, {conns} conn, smtp-sink: "
            "volley send beside smtp-source")
        sink, port = self.start_smtp_sink()
        try:
            runs, _ = self.alternate([
                ("smtp-source", lambda: self.run_peer(
                    "smtp-source", "127.0.0.1", port, conns, n, size)),
                ("volley", lambda: self.run_volley(
                    "127.0.0.1", port, conns, n, size, template=tdir))],
                sink=sink)
        finally:
            self.servers.stop(sink)
        self.results["newsletter"] = [
            self.side_by_side_row(client, rr, messages=n, size=size,
                                  connections=conns, sink="smtp-sink",
                                  template="bench/newsletter.py")
            for client, rr in runs.items()]

    def insn(self):
        """Instructions per message, counted by callgrind: repeatable on a
        noisy machine where perf has no hardware counters (VMs).  Two
        runs, N and 2N messages, so start-up cancels out: (I(2N) - I(N))
        / N.  User-space instructions only, every thread counted."""
        vg = which("valgrind")
        if not vg or not self.smtp_sink:
            self.note("instructions per message skipped (needs valgrind)")
            return
        log("instructions per message (valgrind --tool=callgrind)")
        sink, port = self.start_smtp_sink()
        n = 400
        vg_cmd = [vg, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        try:
            counts = {}
            for messages in (n, 2 * n):
                cfg = (f'host = "127.0.0.1"; port = {port}; tls = "none"; '
                       "connections = 8;")
                camp = VolleyCampaign(self.work, 4096, messages, cfg)
                r = subprocess.run(vg_cmd + [VOLLEY, "send", camp.name,
                                             "--quiet"], cwd=camp.dir,
                                   capture_output=True, text=True)
                camp.cleanup()
                counts.setdefault("volley send", []).append(
                    self.collected(r.stderr))
                r = subprocess.run(vg_cmd + [
                    VOLLEY, "loadtest", "--server", f"127.0.0.1:{port}",
                    "--connections", "8", "--count", str(messages),
                    "--size", "4208", "--quiet"], capture_output=True,
                    text=True)
                counts.setdefault("volley loadtest (engine alone)",
                                  []).append(self.collected(r.stderr))
                if self.smtp_source:
                    r = subprocess.run(vg_cmd + self.client_cmd(
                        "smtp-source", "127.0.0.1", port, 8, messages, 4096),
                        capture_output=True, text=True)
                    counts.setdefault("smtp-source", []).append(
                        self.collected(r.stderr))
            for client, (one, two) in counts.items():
                if one and two:
                    self.results["insn"][client] = (two - one) / n
        finally:
            self.servers.stop(sink)
        if not self.results["insn"]:
            self.note("callgrind gave no instruction counts here")

    @staticmethod
    def collected(text):
        m = re.search(r"Collected\s*:\s*(\d+)", text)
        return int(m.group(1)) if m else None

    # smtp-source puts ~112 bytes of its own headers above its -l body
    LOADTEST_HEADERS = 112

    def loadtest(self):
        """volley loadtest (engine only: no store, no rendering) against
        smtp-sink, beside smtp-source with the same connections, count and
        bytes on the wire, at 1 KB and 4 KB.  Rounds alternate the two
        clients, so a drift in the machine's speed hits both.  smtp-sink's
        own CPU per message is read from /proc: the sink is one thread and
        near 100% busy with either client, so the rate ratio is the ratio
        of what each client costs the sink per message, and the sink's
        cost of scanning the body (the same for both) weighs more the
        larger the message."""
        if not self.smtp_sink or not self.smtp_source:
            return
        log("loadtest vs smtp-source, smtp-sink")
        sink, port = self.start_smtp_sink()
        n = 20000 if self.quick else 50000
        rows = []
        try:
            for wire in (1024, 4208):
                body = wire - self.LOADTEST_HEADERS
                runs = {"smtp-source": [], "volley loadtest": []}
                for _ in range(self.rounds):
                    for client in runs:
                        log(f"  {client}: {wire} B x {n}, 8 conn")
                        before = proc_cpu(sink.pid)
                        if client == "smtp-source":
                            r = self.run_peer(client, "127.0.0.1", port, 8,
                                              n, body)
                        else:
                            r = self.run_loadtest(port, 8, n, wire)
                        if r is not None:
                            runs[client].append(
                                r + (proc_cpu(sink.pid) - before,))
                for client, rr in runs.items():
                    rows.append({
                        "client": client, "messages": n, "size": wire,
                        "connections": 8, "sink": "smtp-sink",
                        "rate": stats([ok / wall for ok, wall, _, _ in rr]),
                        "cpu_s_per_1000": stats(
                            [cpu * 1000.0 / ok for ok, _, cpu, _ in rr]),
                        "sink_cpu_s_per_1000": stats(
                            [sc * 1000.0 / ok for ok, _, _, sc in rr]),
                        "sink_busy": stats(
                            [sc / wall for _, wall, _, sc in rr])})
        finally:
            self.servers.stop(sink)
        self.results["loadtest"] = rows

    def run_loadtest(self, port, conns, n, size=4208, chunking=False,
                     own_time=False):
        """volley loadtest; (sent, seconds, CPU seconds).  The seconds are
        the whole process's, or with own_time its own elapsed_s (from the
        first connection to the last one's end), as volley send's send
        phase is taken from its summary."""
        jpath = os.path.join(self.work, "loadtest.json")
        cmd = [VOLLEY, "loadtest", "--server", f"127.0.0.1:{port}",
               "--connections", str(conns), "--count", str(n), "--size",
               str(size), "--quiet", "--json", jpath]
        if chunking:
            cmd += ["--chunking", "on"]
        wall, cpu, out, rc, _ = run_client(cmd)
        if rc != 0:
            return None
        with open(jpath) as f:
            j = json.load(f)
        sent = j.get("messages", {}).get("sent", 0)
        if sent != n:
            log(f"  ! volley loadtest: {sent} of {n} sent")
            return None
        if own_time and j.get("elapsed_s", 0) > 0:
            wall = j["elapsed_s"]
        return sent, wall, cpu

    def make_cert(self):
        return make_cert(self.work)

    def tls(self):
        log("TLS: STARTTLS + AUTH PLAIN, volley sink")
        cert, key = self.make_cert()
        sink, port = self.start_volley_sink(tls=(cert, key))
        # MAIL before AUTH is refused there: plaintext gets its own sink
        plain, plain_port = self.start_volley_sink()
        # volley's rows send ten times the peers' count: 5,000 messages
        # take it a tenth of a second, too short for the send phase's
        # hundredths to time
        peer_n = 5000
        volley_n = 10000 if self.quick else 50000
        conns = 8
        try:
            auth = tls_cfg(cert)
            os.environ["BENCH_PASSWORD"] = SINK_PASSWORD
            for client in ("volley", "volley-plaintext", "python-smtplib",
                           "nodemailer"):
                n = volley_n if client.startswith("volley") else peer_n
                log(f"  {client}: 4096 B x {n}, {conns} conn")
                scpu = None
                if client == "volley":
                    rate, cpu, scpu = self.repeat_on(
                        sink, self.run_volley_tls, port, conns, n, auth)
                elif client == "volley-plaintext":
                    rate, cpu, scpu = self.repeat_on(
                        plain, self.run_volley, "127.0.0.1", plain_port,
                        conns, n, 4096)
                else:
                    rate, cpu = self.repeat(self.run_peer, client,
                                            "localhost", port, conns, n,
                                            4096, tls=cert)
                row = {"client": client, "size": 4096, "messages": n,
                       "connections": conns, "sink": "volley sink",
                       "tls": client != "volley-plaintext", "rate": rate,
                       "cpu_s_per_1000": cpu}
                if scpu:
                    row["sink_cpu_s_per_1000"] = scpu
                self.results["tls"].append(row)
            aes = self.aes_gcm_speed()
            if aes:
                # the bytes each message puts through the cipher
                aes["wire_bytes"] = self.rendered_size(4096)
            self.results["tls_aes"] = aes
        finally:
            self.servers.stop(sink)
            self.servers.stop(plain)

    def aes_gcm_speed(self):
        """`openssl speed -evp aes-128-gcm` in 16 KB blocks (a full TLS
        record; volley's writes of up to 256 KB fill them), bytes a
        second on one core: the cipher TLS 1.3 between volley and volley
        sink agrees on, the floor of what TLS adds to each side."""
        if not which("openssl"):
            return None
        r = subprocess.run([which("openssl"), "speed", "-evp",
                            "aes-128-gcm", "-bytes", "16384", "-seconds",
                            "1" if self.quick else "2"],
                           capture_output=True, text=True)
        for line in r.stdout.splitlines():
            g = re.match(r"AES-128-GCM\s+([\d.]+)k\s*$", line, re.I)
            if g and float(g.group(1)) > 0:
                return {"bytes_per_s": float(g.group(1)) * 1000,
                        "block": 16384}
        return None

    def run_volley_tls(self, port, conns, n, auth):
        cfg = (f'host = "127.0.0.1"; port = {port}; connections = {conns}; '
               + auth)
        camp = VolleyCampaign(self.work, 4096, n, cfg)
        try:
            wall, cpu, out, rc, _ = run_client(
                [VOLLEY, "send", camp.name, "--quiet"], cwd=camp.dir)
            sent = camp.sent()
        finally:
            camp.cleanup()
        if rc != 0 or sent != n:
            log(f"  ! volley send (TLS): {sent} of {n} sent")
            return None
        return sent, self.send_phase(out, wall), cpu

    def latency(self):
        netns_sh = os.path.join(ROOT, "bench", "netns.sh")
        relay = os.path.join(BUILD, "bench", "delay_relay")
        if os.geteuid() != 0 or not which("ip"):
            self.note("latency section skipped: needs root and iproute2")
            return
        log("latency: namespaces volleyA/volleyB, 10 ms each way")
        subprocess.run([netns_sh, "down"], capture_output=True)
        r = subprocess.run([netns_sh, "up"], capture_output=True, text=True)
        if r.returncode != 0:
            self.note("latency section skipped: netns.sh up failed: " +
                      r.stderr.strip()[-200:])
            return
        lat = self.results["latency"]
        sink_host, relay_host = "10.77.0.2", "10.77.0.1"
        n = 500 if self.quick else 600
        conns = 8
        try:
            smtp_sink, smtp_sink_port = self.start_smtp_sink(sink_host,
                                                             "volleyB")
            vsink, vsink_port = self.start_volley_sink(sink_host,
                                                       netns="volleyB",
                                                       port=2527)
            relays = {}
            for name, target in (("smtp-sink", smtp_sink_port),
                                 ("volley sink", vsink_port)):
                lport = target + 100
                self.servers.start(["ip", "netns", "exec", "volleyA", relay,
                                    "--listen", f"{relay_host}:{lport}",
                                    "--to", f"{sink_host}:{target}",
                                    "--delay-ms", "10"])
                wait_port(relay_host, lport, "volleyA")
                relays[name] = lport
            # the round trip a client sees: NOOPs through the relay
            r = subprocess.run(["ip", "netns", "exec", "volleyA",
                                os.path.join(BUILD, "bench", "raw_replay"),
                                "--server",
                                f"{relay_host}:{relays['smtp-sink']}",
                                "--rtt"], capture_output=True, text=True)
            m = re.search(r'"rtt_ms":\s*([\d.]+)', r.stdout)
            rtt = float(m.group(1)) if m else None
            lat["rtt_ms"] = rtt
            lat["connections"] = conns
            lat["messages"] = n
            lat["limit_one_rtt_per_msg"] = conns / (rtt / 1000.0) \
                if rtt else None
            rows = []
            for client, sink in (("smtp-source", "smtp-sink"),
                                 ("python-smtplib", "smtp-sink"),
                                 ("nodemailer", "smtp-sink"),
                                 ("volley DATA pipelining", "smtp-sink"),
                                 ("volley CHUNKING", "volley sink")):
                log(f"  {client} via {sink}: {n} x 4096 B, {conns} conn")
                port = relays[sink]
                if client.startswith("volley"):
                    extra = "chunking = false;" if "DATA" in client else ""
                    rate, cpu = self.repeat(self.run_volley, relay_host,
                                            port, conns, n, 4096, extra,
                                            netns="volleyA")
                else:
                    rate, cpu = self.repeat(self.run_peer, client,
                                            relay_host, port, conns, n,
                                            4096, netns="volleyA")
                rows.append({"client": client, "sink": sink, "rate": rate,
                             "cpu_s_per_1000": cpu})
            lat["rows"] = rows
        finally:
            self.servers.stop_all()
            subprocess.run([netns_sh, "down"], capture_output=True)

    # the big_messages attachment: base64 (4/3, CRLF every 76) makes the
    # message 50 MB (MiB, as the peak RSS is counted)
    BIG_ATTACHMENT = 38300000
    BIG_COUNT = 16

    def big_messages(self):
        """Peak RSS of volley send with 50 MB messages (a 38 MB
        attachment), 1 and 4 connections, BDAT and DATA: what a
        connection holds beyond the template is its one message, and 4
        connections must stay under 4 x 2 x the message."""
        log(f"memory: {self.BIG_COUNT} messages of 50 MB, 1 and 4 "
            "connections")
        tdir = os.path.join(self.work, "template-big")
        os.makedirs(tdir, exist_ok=True)
        with open(os.path.join(tdir, "big.bin"), "wb") as f:
            left = self.BIG_ATTACHMENT
            while left > 0:
                f.write(os.urandom(min(left, 1000000)))
                left -= 1000000
        with open(os.path.join(tdir, "body.txt"), "w") as f:
            f.write("Hello {{first_name}}, the file is attached.\n")
        with open(os.path.join(tdir, "message.cfg"), "w") as f:
            f.write('subject = "big";\nfrom = "bench@example.org";\n'
                    'attachments = [ "big.bin" ];\n')
        probe = VolleyCampaign(self.work, 0, 1, 'host = "127.0.0.1"; '
                               'port = 25; tls = "none";', template=tdir)
        try:
            size = probe.rendered_size(limit=1)
        finally:
            probe.cleanup()
        message_mb = size / 2 ** 20
        sink, port = self.start_volley_sink()
        rows = []
        try:
            for chunking in ("true", "false"):
                for conns in (1, 4):
                    camp = VolleyCampaign(
                        self.work, 0, self.BIG_COUNT,
                        f'host = "127.0.0.1"; port = {port}; '
                        f'tls = "none"; connections = {conns}; '
                        f'chunking = {chunking};', name="big",
                        template=tdir)
                    try:
                        wall, cpu, out, rc, maxrss = run_client(
                            [VOLLEY, "send", "big", "--quiet"],
                            cwd=camp.dir)
                        sent = camp.sent()
                    finally:
                        camp.cleanup()
                    if rc != 0 or sent != self.BIG_COUNT:
                        self.note(f"big messages, {conns} conn, chunking "
                                  f"{chunking}: {sent} of "
                                  f"{self.BIG_COUNT} sent")
                        continue
                    rows.append({"mode": "BDAT" if chunking == "true"
                                 else "DATA", "connections": conns,
                                 "max_rss_mb": maxrss / 1024,
                                 "message_mb": message_mb,
                                 "messages": self.BIG_COUNT,
                                 "mb_per_s": self.BIG_COUNT * message_mb
                                 / self.send_phase(out, wall)})
        finally:
            self.servers.stop(sink)
        self.results["big_messages"] = rows

    def durable(self):
        """The durable path beside the bare engine: volley send of
        1,000,000 recipients (quick: 100,000) of the 4 KB template,
        rendered per recipient, every result committed to SQLite, to
        volley sink (CHUNKING), 8 connections, beside `volley loadtest
        --chunking on` (generated messages, no store) of as many messages
        of the same size on the same sink.  Rounds alternate the two;
        each one's own timing of its send.  volley send's peak RSS is the
        memory section's 1,000,000-recipient figure."""
        if self.durable_done:
            return
        self.durable_done = True
        n = 100000 if self.quick else 1000000
        conns = 8
        size = self.rendered_size(4096)
        log(f"durable: volley send of {n:,} recipients ({size:,} B) beside "
            f"volley loadtest --chunking on, volley sink, {conns} conn")
        sink, port = self.start_volley_sink()
        try:
            runs, rss = self.alternate([
                ("volley send", lambda: self.run_volley(
                    "127.0.0.1", port, conns, n, 4096,
                    extra="chunking = true;")),
                ("volley loadtest", lambda: self.run_loadtest(
                    port, conns, n, size, chunking=True, own_time=True))],
                sink=sink)
        finally:
            self.servers.stop(sink)
        rows = []
        for client, rr in runs.items():
            row = self.side_by_side_row(client, rr, messages=n, size=size,
                                        connections=conns,
                                        sink="volley sink", chunking=True)
            if rss[client]:
                row["max_rss_mb"] = stats(rss[client])
            rows.append(row)
        self.results["durable"] = rows
        send = rows[0]
        if send["rate"] and rss["volley send"]:
            self.results["memory"] = {
                "recipients": n, "sent": n,
                "max_rss_mb": max(rss["volley send"]),
                "rate": send["rate"]["median"],
                "cpu_s_per_1000": send["cpu_s_per_1000"]["median"],
                "from": "durable"}

    def memory(self):
        self.big_messages()
        # the 1,000,000-recipient (quick: 100,000) send is the durable
        # section's: run it here if that section was not (yet) run
        self.durable()
        if self.quick:
            self.note("memory: the 10,000,000-recipient send is in the "
                      "full run only")
            self.results["memory_10m"] = {"recipients": 10000000,
                                          "skipped": "full run only"}
            return
        self.memory_10m()

    def memory_10m(self, n=10000000):
        """Peak RSS of volley send of a 10,000,000-recipient campaign
        (4 KB, 8 connections, volley sink): one round, several minutes
        (the CSV, the import, then the send)."""
        log(f"memory: volley send of {n:,} recipients to volley sink "
            "(minutes)")
        sink, port = self.start_volley_sink()
        started = time.monotonic()
        camp = None
        try:
            cfg = (f'host = "127.0.0.1"; port = {port}; tls = "none"; '
                   "connections = 8;")
            camp = VolleyCampaign(self.work, 4096, n, cfg)
            os.remove(os.path.join(self.work, f"recipients-{n}.csv"))
            wall, cpu, out, rc, maxrss = run_client(
                [VOLLEY, "send", camp.name, "--quiet"], cwd=camp.dir,
                timeout=3600)
            sent = camp.sent()
            if rc != 0 or sent != n:
                self.note(f"memory: the {n:,}-recipient send sent {sent:,}")
            self.results["memory_10m"] = {
                "recipients": n, "sent": sent, "max_rss_mb": maxrss / 1024,
                "rate": sent / self.send_phase(out, wall),
                "cpu_s_per_1000": cpu * 1000 / max(sent, 1),
                "seconds_in_all": time.monotonic() - started}
        finally:
            if camp:
                camp.cleanup()
            self.servers.stop(sink)

    def postgres(self):
        """PostgreSQL rows (claims and records per second, volley send
        with 1, 2 and 4 processes on one campaign, beside SQLite's): none
        until the backend exists; say so rather than show a figure."""
        found = sorted(f for f in os.listdir(os.path.join(ROOT, "store"))
                       if re.search(r"(^|_)(pg|postgres)", f, re.I))
        if found:
            why = ("store/ has " + ", ".join(found) + ", but bench/run "
                   "does not measure PostgreSQL yet")
        else:
            why = "the PostgreSQL backend does not exist yet"
        log("postgres: " + why)
        self.results["postgres"] = {"measured": False, "reason": why}

    def import_one(self, store_dir, csv, n, rounds, what):
        """volley import of csv into campaign c of store_dir's store, which
        is made afresh each round unless it exists; peak RSS and rows/s."""
        rss, rates, last = [], [], None
        for _ in range(rounds):
            fresh = not os.path.exists(os.path.join(store_dir, "volley.db"))
            if fresh:
                for args in (["init"],
                             ["campaign", "create", "c", "--from",
                              "bench@example.org"]):
                    subprocess.run([VOLLEY] + args, cwd=store_dir,
                                   check=True, stdout=subprocess.DEVNULL)
            wall, cpu, out, rc, maxrss = run_client(
                [VOLLEY, "import", "c", csv, "--skip-invalid", "--rejects",
                 os.path.join(store_dir, "rejects.csv")], cwd=store_dir)
            g = re.search(r"imported (\d+) recipients? .*\((\d+) "
                          r"duplicates? skipped, (\d+) bad rows? skipped"
                          r"(?:, \d+ suppressed)?\) in ([\d.]+) s", out)
            if rc != 0 or not g:
                self.note(f"import of {n:,} rows failed")
                return None
            last = {"what": what, "rows": n, "added": int(g.group(1)),
                    "duplicates": int(g.group(2)),
                    "rejected": int(g.group(3)),
                    "cpu_s": cpu, "wall_s": wall}
            rss.append(maxrss / 1024)
            # its own rate, from the exact time, when it prints one
            exact = re.search(r", (\d+) rows/s", out)
            rates.append(float(exact.group(1)) if exact else
                         n / max(float(g.group(4)), 1e-3))
            if fresh and rounds > 1:
                for name in ("volley.db", "volley.db-wal", "volley.db-shm"):
                    p = os.path.join(store_dir, name)
                    if os.path.exists(p):
                        os.remove(p)
        last["max_rss_mb"] = stats(rss)
        last["rate"] = stats(rates)
        return last

    def importmem(self):
        sizes = [100000, 1000000] + ([] if self.quick else [10000000])
        log("import memory: volley import of " +
            ", ".join(f"{n:,}" for n in sizes) + " rows")
        rows = []
        for n in sizes:
            csv = os.path.join(self.work, f"import-{n}.csv")
            write_import_csv(csv, n)
            d = tempfile.mkdtemp(prefix="import-", dir=self.work)
            r = self.import_one(d, csv, n, 1 if n >= 10000000 else
                                self.rounds, "new store")
            if r:
                rows.append(r)
            if n == 10000000:
                again = os.path.join(self.work, "import-1000000.csv")
                r = self.import_one(d, again, 1000000, 1,
                                    "again into the 10^7 campaign")
                if r:
                    rows.append(r)
            shutil.rmtree(d, ignore_errors=True)
        for n in sizes:
            os.remove(os.path.join(self.work, f"import-{n}.csv"))
        self.results["import_memory"] = rows

    # --- dkim -------------------------------------------------------------

    def dkim(self):
        """DKIM: bench_dkim (one core), openssl speed beside it, and volley
        send with signing off, RSA-2048, Ed25519 and both."""
        log("dkim: bench_dkim, openssl speed, volley send with signing")
        d = self.results["dkim"]
        out = subprocess.run([os.path.join(BUILD, "bench", "bench_dkim"),
                              "-s", "0.3" if self.quick else "1"],
                             capture_output=True, text=True).stdout
        d["micro"] = {}
        for line in out.splitlines():
            g = re.match(r"RESULT dkim_(\S+) ([\d.]+) (.+)$", line)
            if g:
                d["micro"][g.group(1)] = {"value": float(g.group(2)),
                                          "unit": g.group(3).strip()}
        d["micro_raw"] = out
        if which("openssl"):
            r = subprocess.run([which("openssl"), "speed", "-seconds",
                                "1" if self.quick else "3", "rsa2048",
                                "ed25519"], capture_output=True, text=True)
            for line in r.stdout.splitlines():
                g = re.match(r"rsa 2048 bits .*?([\d.]+)\s+[\d.]+\s*$",
                             line)
                if g:
                    d["openssl_rsa2048"] = float(g.group(1))
                g = re.match(r"\s*253 bits EdDSA \(Ed25519\)\s+\S+\s+\S+"
                             r"\s+([\d.]+)", line)
                if g:
                    d["openssl_ed25519"] = float(g.group(1))
        else:
            self.note("dkim: no openssl command: no openssl speed figures")
        variants = [("off", ""),
                    ("rsa2048", dkim_cfg(self.work, "rsa")),
                    ("ed25519", dkim_cfg(self.work, "ed")),
                    ("rsa2048+ed25519", dkim_cfg(self.work, "rsa", "ed"))]
        n = 5000 if self.quick else 20000
        conns = 8
        sink, port = self.start_volley_sink()
        d["send"] = []
        try:
            for name, extra in variants:
                log(f"  volley send, signing {name}: 4096 B x {n}, "
                    f"{conns} conn")
                rate, cpu, scpu = self.repeat_on(
                    sink, self.run_volley_dkim, port, conns, n, extra)
                d["send"].append({"signing": name, "messages": n,
                                  "size": 4096, "connections": conns,
                                  "sink": "volley sink", "rate": rate,
                                  "cpu_s_per_1000": cpu,
                                  "sink_cpu_s_per_1000": scpu})
        finally:
            self.servers.stop(sink)

    def run_volley_dkim(self, port, conns, n, extra):
        cfg = (f'host = "127.0.0.1"; port = {port}; tls = "none"; '
               f"connections = {conns};")
        camp = VolleyCampaign(self.work, 4096, n, cfg, extra_cfg=extra)
        try:
            wall, cpu, out, rc, _ = run_client(
                [VOLLEY, "send", camp.name, "--quiet"], cwd=camp.dir)
            sent = camp.sent()
        finally:
            camp.cleanup()
        if rc != 0 or sent != n:
            log(f"  ! volley send (dkim): {sent} of {n} sent")
            return None
        return sent, self.send_phase(out, wall), cpu

    def dkim_markdown(self):
        d = self.results["dkim"]
        m = d.get("micro", {})
        out = ["## DKIM signing", ""]
        if m:
            def v(k):
                return m[k]["value"] if k in m else None
            out += ["`bench_dkim` (one core, relaxed/relaxed, per "
                    "CPU-second), beside `openssl speed rsa2048 ed25519` "
                    "(sign/s); hashing = the whole less the key "
                    "operation, per message.", "",
                    "| algorithm | 4 KB signatures/s | 100 KB "
                    "signatures/s | key operation alone | openssl speed "
                    "| hashing 4 KB | hashing 100 KB |",
                    "|---|---|---|---|---|---|---|"]
            for alg, label, ossl in (("rsa2048", "RSA-2048",
                                      "openssl_rsa2048"),
                                     ("ed25519", "Ed25519",
                                      "openssl_ed25519")):
                out.append(
                    f"| {label} | {fmt(v(alg + '_4k'))} | "
                    f"{fmt(v(alg + '_100k'))} | {fmt(v(alg + '_key'))} | "
                    f"{fmt(d.get(ossl))} | "
                    f"{fmt(v(alg + '_4k_hash_us'), 1)} us | "
                    f"{fmt(v(alg + '_100k_hash_us'), 1)} us |")
            out += ["", f"Both keys at once, 100 KB: "
                    f"{fmt(v('both_100k'))} messages/s (the body hashed "
                    f"once). Plain SHA-256 of the body: "
                    f"{fmt(v('sha256_4k'))}/s at 4 KB, "
                    f"{fmt(v('sha256_100k'))}/s at 100 KB.", ""]
        if d.get("send"):
            off = next((r for r in d["send"] if r["signing"] == "off"),
                       None)
            out += ["`volley send`, 4 KB, 8 connections, volley sink "
                    "(both on this machine):", "",
                    "| signing | messages/s | client CPU s / 1,000 | "
                    "added CPU per message |", "|---|---|---|---|"]
            for r in d["send"]:
                added = None
                if off and off["cpu_s_per_1000"] and r["cpu_s_per_1000"]:
                    added = (r["cpu_s_per_1000"]["median"] -
                             off["cpu_s_per_1000"]["median"]) * 1000
                out.append(f"| {r['signing']} | {fmt_range(r['rate'])} | "
                           f"{fmt_range(r['cpu_s_per_1000'], 3)} | "
                           f"{fmt(added, 0) + ' us' if added else '-'} |")
            out.append("")
        return out

    # --- report -------------------------------------------------------------

    def row(self, section, **match):
        for r in self.results[section]:
            if all(r.get(k) == v for k, v in match.items()):
                return r
        return None

    def targets(self):
        t = []

        def med_of(r, key="rate"):
            return r[key]["median"] if r and r.get(key) else None

        v = self.row("e2e", size=4096, connections=8, client="volley")
        s = self.row("e2e", size=4096, connections=8, client="smtp-source")
        raw = self.row("e2e", size=4096, connections=8, client="raw-replay")
        if v and s:
            ratio = med_of(v) / med_of(s) if med_of(s) and med_of(v) else None
            t.append(("loopback 4 KB, 8 conn: volley >= 1.3x smtp-source "
                      "msg/s", ratio, ratio is not None and ratio >= 1.3,
                      f"{fmt(ratio, 2)}x"))
            cv, cs = med_of(v, "cpu_s_per_1000"), med_of(s, "cpu_s_per_1000")
            ratio = cv / cs if cv and cs else None
            t.append(("loopback 4 KB, 8 conn: volley CPU/msg <= 0.5x "
                      "smtp-source", ratio, ratio is not None and ratio <= 0.5,
                      f"{fmt(ratio, 2)}x"))
        if v and raw:
            ratio = med_of(v) / med_of(raw) if med_of(raw) and med_of(v) \
                else None
            t.append(("loopback 4 KB, 8 conn: volley >= 0.85x raw replay",
                      ratio, ratio is not None and ratio >= 0.85,
                      f"{fmt(ratio, 2)}x"))
        v = self.row("newsletter", client="volley")
        s = self.row("newsletter", client="smtp-source")
        if v and s:
            label = (f"newsletter {v['size'] / 1024:.0f} KB, 8 conn, "
                     "smtp-sink")
            cv, cs = med_of(v, "cpu_s_per_1000"), med_of(s, "cpu_s_per_1000")
            ratio = cv / cs if cv and cs else None
            shown = f"{fmt(ratio, 2)}x"
            # The kernel's part of volley's CPU (sending the same bytes
            # through the same TCP): above 0.5x, saving user-space work
            # alone cannot meet the target; only less kernel work could.
            sv = med_of(v, "sys_cpu_s_per_1000")
            if sv and cs:
                floor = sv / cs
                shown += (f"; volley's kernel time alone is {fmt(floor, 2)}x"
                          + (" (no user-space saving alone can meet it)"
                             if floor > 0.5 else ""))
            t.append((f"{label}: volley CPU/msg <= 0.5x smtp-source -l "
                      f"{v['size']}", ratio,
                      ratio is not None and ratio <= 0.5, shown))
            ratio = med_of(v) / med_of(s) if med_of(s) and med_of(v) else None
            t.append((f"{label}: volley msg/s >= smtp-source's", ratio,
                      ratio is not None and ratio >= 1,
                      f"{fmt(ratio, 2)}x"))
        v = self.row("durable", client="volley send")
        lt = self.row("durable", client="volley loadtest")
        if v:
            rate = med_of(v)
            shown = f"{fmt(rate)} msg/s"
            if med_of(lt) and rate:
                shown += (f"; loadtest {fmt(med_of(lt))} msg/s, send "
                          f"{fmt(rate / med_of(lt), 2)}x it")
            cv, sv = (med_of(v, "cpu_s_per_1000"),
                      med_of(v, "sink_cpu_s_per_1000"))
            if cv and sv:
                shown += (f"; CPU a message: client {fmt(cv * 1000, 1)} us"
                          f", sink {fmt(sv * 1000, 1)} us")
            t.append((f"durable: volley send of {v['messages']:,} to "
                      "volley sink (CHUNKING, 8 conn) >= 200,000 msg/s",
                      rate, rate is not None and rate >= 200000, shown))
        vt = self.row("tls", client="volley")
        vp = self.row("tls", client="volley-plaintext")
        if vt and vp and med_of(vt) and med_of(vp):
            ratio = med_of(vt) / med_of(vp)
            shown = f"{fmt(ratio, 2)}x"
            bound = self.tls_bound(vt, vp)
            if bound:
                shown += (f"; client + sink CPU a message {bound['plain']:.1f}"
                          f" us plaintext, {bound['tls']:.1f} us TLS, of "
                          f"which AES-128-GCM both ways needs "
                          f"{bound['aes']:.1f} us: at most "
                          f"{bound['ratio']:.2f}x at equal load")
            t.append(("TLS: STARTTLS + AUTH >= 0.9x the same run in "
                      "plaintext", ratio, ratio >= 0.9, shown))
            peers = [r for r in self.results["tls"]
                     if not r["client"].startswith("volley") and med_of(r)]
            best = max((med_of(r) for r in peers), default=None)
            if best:
                t.append(("TLS: volley ahead of every peer",
                          med_of(vt) / best, med_of(vt) > best,
                          f"{fmt(med_of(vt) / best, 2)}x the best peer"))
        lat = self.results["latency"]
        if lat.get("rows") and lat.get("limit_one_rtt_per_msg"):
            limit = lat["limit_one_rtt_per_msg"]
            for r in lat["rows"]:
                if r["client"] == "volley DATA pipelining" and med_of(r):
                    ratio = med_of(r) / limit
                    t.append(("20 ms RTT, 8 conn: DATA pipelining within 10% "
                              "of one RTT per message", ratio, ratio >= 0.9,
                              f"{fmt(ratio, 2)}x the limit"))
                if r["client"] == "volley CHUNKING" and med_of(r):
                    ratio = med_of(r) / limit
                    t.append(("20 ms RTT, 8 conn: CHUNKING >= 4x one RTT per "
                              "message", ratio, ratio >= 4,
                              f"{fmt(ratio, 2)}x the limit"))
        for size in (1024, 4208):
            v = self.row("loadtest", size=size, client="volley loadtest")
            s = self.row("loadtest", size=size, client="smtp-source")
            if not (med_of(v) and med_of(s)):
                continue
            label = f"loadtest {size // 1024} KB"
            ratio = med_of(v) / med_of(s)
            t.append((f"{label}: >= 2x smtp-source's rate on smtp-sink",
                      ratio, ratio >= 2, f"{fmt(ratio, 2)}x"))
            cv, cs = med_of(v, "cpu_s_per_1000"), med_of(s, "cpu_s_per_1000")
            if cv and cs:
                t.append((f"{label}: less client CPU per message than "
                          "smtp-source", cv / cs, cv < cs,
                          f"{fmt(cv / cs, 2)}x"))
        for r in self.results["import_memory"]:
            if r["rows"] == 10000000 and r["what"] == "new store":
                v = r["max_rss_mb"]["median"]
                t.append(("peak RSS of a 10,000,000-row import < 100 MB", v,
                          v < 100, f"{fmt(v, 1)} MB"))
        mem = self.results["memory"]
        if mem:
            t.append((f"peak RSS of a {mem['recipients']:,}-recipient send "
                      "< 100 MB",
                      mem["max_rss_mb"], mem["max_rss_mb"] < 100,
                      f"{fmt(mem['max_rss_mb'], 1)} MB"))
        m10 = self.results["memory_10m"]
        if m10:
            label = (f"peak RSS of a {m10['recipients']:,}-recipient send "
                     "< 100 MB")
        if m10.get("skipped"):
            t.append((label, None, None, f"not run: {m10['skipped']}"))
        elif m10:
            ok = m10["sent"] == m10["recipients"]
            t.append((label,
                      m10["max_rss_mb"], ok and m10["max_rss_mb"] < 100,
                      f"{fmt(m10['max_rss_mb'], 1)} MB" +
                      ("" if ok else f" ({m10['sent']:,} sent)")))
        for b in self.results.get("big_messages", []):
            if b["connections"] != 4 or "message_mb" not in b:
                continue
            limit = 4 * 2 * b["message_mb"]
            t.append((f"{b['message_mb']:.0f} MB messages, 4 conn, "
                      f"{b['mode']}: peak RSS < 4 x 2 x the message",
                      b["max_rss_mb"], b["max_rss_mb"] < limit,
                      f"{fmt(b['max_rss_mb'])} MB of {fmt(limit)} MB"))
        dk = self.results["dkim"]
        sends = {r["signing"]: r for r in dk.get("send", [])}
        rsa, ed, off = (sends.get("rsa2048"), sends.get("ed25519"),
                        sends.get("off"))
        cores = self.results["machine"]["cores"]
        micro = dk.get("micro", {})

        def dkim_cap(key):
            """The highest signed rate the cores allow: the unsigned
            client's and sink's CPU a message, plus the key operation
            alone (bench_dkim, one core), nothing for hashing."""
            k = micro.get(key, {}).get("value")
            c = med_of(off, "cpu_s_per_1000")
            sc = (off or {}).get("sink_cpu_s_per_1000")
            sc = sc["median"] if sc else None
            # a sink CPU of 0 (under the clock tick) leaves the cap
            # higher, never lower, than the truth
            if not (k and c) or sc is None:
                return None
            return cores / ((c + sc) / 1000.0 + 1.0 / k)

        if med_of(rsa) and dk.get("openssl_rsa2048"):
            limit = cores * dk["openssl_rsa2048"]
            ratio = med_of(rsa) / limit
            shown = (f"{fmt(ratio, 2)}x ({fmt(med_of(rsa))} of {cores} x "
                     f"{fmt(dk['openssl_rsa2048'])} msg/s)")
            cap = dkim_cap("rsa2048_key")
            if cap:
                # bench_dkim's key operation, not openssl speed's: two
                # measurements of one thing, which differ by run
                shown += (f"; bench_dkim's key operation plus the unsigned "
                          f"work come to {fmt(cap / limit, 2)}x")
            t.append(("DKIM RSA-2048: send rate >= 0.9x cores x openssl "
                      "speed sign/s", ratio, ratio >= 0.9, shown))
        if med_of(ed) and med_of(off):
            ratio = med_of(ed) / med_of(off)
            shown = f"{fmt(ratio, 2)}x"
            cap = dkim_cap("ed25519_key")
            if cap:
                shown += (f"; the key operation "
                          f"({fmt(1e6 / micro['ed25519_key']['value'], 1)}"
                          f" us) and the unsigned work allow about "
                          f"{fmt(cap / med_of(off), 2)}x"
                          + (" (out of reach)"
                             if cap / med_of(off) < 0.8 else ""))
            t.append(("DKIM Ed25519: send rate >= 0.8x unsigned", ratio,
                      ratio >= 0.8, shown))
        pg = self.results["postgres"]
        if pg and not pg.get("measured"):
            t.append(("PostgreSQL: claims and records/s; volley send with "
                      "1, 2, 4 processes beside SQLite", None, None,
                      f"not measured: {pg['reason']}"))
        self.results["targets"] = [
            {"target": a, "value": b, "met": c, "shown": d}
            for a, b, c, d in t]
        return t

    def tls_bound(self, vt, vp):
        """What TLS costs a message beside plaintext (client and sink,
        microseconds), how much of it AES-128-GCM needs both ways (the
        sender encrypts, the sink decrypts: openssl speed's rate over the
        message's bytes), and the rate ratio the cores would allow at the
        same load if TLS added nothing else; None without the figures."""
        aes = self.results.get("tls_aes")
        try:
            plain = (vp["cpu_s_per_1000"]["median"] +
                     vp["sink_cpu_s_per_1000"]["median"]) * 1000
            tls = (vt["cpu_s_per_1000"]["median"] +
                   vt["sink_cpu_s_per_1000"]["median"]) * 1000
        except (KeyError, TypeError):
            return None
        if not aes or not aes.get("wire_bytes"):
            return None
        cipher = 2 * aes["wire_bytes"] / aes["bytes_per_s"] * 1e6
        return {"plain": plain, "tls": tls, "aes": cipher,
                "ratio": plain / (plain + cipher)}

    def markdown(self):
        r = self.results
        out = [f"# volley benchmarks, {r['date']}", "",
               f"{r['machine']['cores']} cores, {r['machine']['system']}; "
               f"{'quick run (1 round)' if self.quick else 'medians of 3 runs (min-max)'}; "
               "`bench/run" + (" --quick" if self.quick else "") + "`", ""]
        t = self.targets()
        if t:
            out += ["## Targets", "", "| target | measured | met |",
                    "|---|---|---|"]
            for name, _, met, shown in t:
                said = "-" if met is None else "yes" if met else "**no**"
                out.append(f"| {name} | {shown} | {said} |")
            out.append("")
        if r["e2e"]:
            out += ["## End to end, loopback, Postfix smtp-sink", "",
                    "Messages/s and client CPU seconds per 1,000 messages; "
                    "ratio = the client's messages/s over volley's.", ""]
            out += ["| size | conns | client | messages/s | CPU s / 1,000 "
                    "| ratio to volley |", "|---|---|---|---|---|---|"]
            for e in r["e2e"]:
                v = self.row("e2e", size=e["size"],
                             connections=e["connections"], client="volley")
                ratio = (e["rate"]["median"] / v["rate"]["median"]
                         if e["rate"] and v and v["rate"] else None)
                out.append(f"| {e['size'] // 1024} KB x {e['messages']:,} | "
                           f"{e['connections']} | {e['client']} | "
                           f"{fmt_range(e['rate'])} | "
                           f"{fmt_range(e['cpu_s_per_1000'], 3)} | "
                           f"{fmt(ratio, 2)} |")
            out.append("")
        if r["newsletter"]:
            e0 = r["newsletter"][0]
            out += [f"## {e0['size'] / 1024:.0f} KB newsletter, Postfix "
                    f"smtp-sink, {e0['connections']} connections", "",
                    "`volley send` of bench/newsletter.py's template (HTML "
                    "and its text version, per-recipient variables in "
                    "both, an inline PNG; rendered per recipient, every "
                    "result recorded) beside `smtp-source -l "
                    f"{e0['size']}` ({e0['size']:,} bytes: one rendered "
                    "message, from `volley preview`), the same count and "
                    "connections, rounds alternating. smtp-sink is one "
                    "thread: \"sink busy\" near 100% means the sink is "
                    "the limit.", "",
                    "| client | messages | messages/s | client CPU s / "
                    "1,000 | of which kernel | smtp-sink CPU s / 1,000 | "
                    "sink busy |",
                    "|---|---|---|---|---|---|---|"]
            for e in r["newsletter"]:
                busy = e.get("sink_busy")
                out.append(f"| {e['client']} | {e['messages']:,} | "
                           f"{fmt_range(e['rate'])} | "
                           f"{fmt_range(e['cpu_s_per_1000'], 3)} | "
                           f"{fmt_range(e.get('sys_cpu_s_per_1000'), 3)} | "
                           f"{fmt_range(e.get('sink_cpu_s_per_1000'), 3)} | "
                           f"{fmt(busy['median'] * 100) if busy else '-'}% |")
            out.append("")
        if r["loadtest"]:
            out += ["## `volley loadtest` beside smtp-source, smtp-sink, "
                    "8 connections", "",
                    "The same bytes on the wire from both clients. "
                    "smtp-sink is one thread: \"sink busy\" near 100% means "
                    "the sink is the limit, and the rates compare what each "
                    "client costs it per message.", "",
                    "| size | client | messages | messages/s | client CPU "
                    "s / 1,000 | smtp-sink CPU s / 1,000 | sink busy |",
                    "|---|---|---|---|---|---|---|"]
            for e in r["loadtest"]:
                busy = e.get("sink_busy")
                out.append(f"| {e['size']:,} B | {e['client']} | "
                           f"{e['messages']:,} | {fmt_range(e['rate'])} | "
                           f"{fmt_range(e['cpu_s_per_1000'], 3)} | "
                           f"{fmt_range(e.get('sink_cpu_s_per_1000'), 3)} | "
                           f"{fmt(busy['median'] * 100) if busy else '-'}% |")
            out.append("")
        if r["tls"]:
            out += ["## TLS (STARTTLS + AUTH PLAIN), volley sink, 4 KB, "
                    "8 connections", "",
                    "| client | messages | messages/s | CPU s / 1,000 | "
                    "sink CPU s / 1,000 |",
                    "|---|---|---|---|---|"]
            for e in r["tls"]:
                label = ("volley, plaintext, same sink"
                         if e["client"] == "volley-plaintext"
                         else e["client"])
                out.append(f"| {label} | {e['messages']:,} | "
                           f"{fmt_range(e['rate'])} | "
                           f"{fmt_range(e['cpu_s_per_1000'], 3)} | "
                           f"{fmt_range(e.get('sink_cpu_s_per_1000'), 4)} |")
            out.append("")
            aes = r.get("tls_aes")
            if aes:
                out += [f"`openssl speed -evp aes-128-gcm -bytes 16384`: "
                        f"{fmt(aes['bytes_per_s'] / 1e6)} MB/s on one core, "
                        f"{fmt(aes['wire_bytes'] / aes['bytes_per_s'] * 1e6, 2)}"
                        f" us for one {aes['wire_bytes']:,}-byte message on "
                        "each side (the sender encrypts, the sink "
                        "decrypts).", ""]
        lat = r["latency"]
        if lat.get("rows"):
            out += [f"## 20 ms round trip, {lat['connections']} connections, "
                    f"{lat['messages']:,} x 4 KB", "",
                    f"Measured round trip (SMTP NOOP): "
                    f"{fmt(lat['rtt_ms'], 1)} ms; one round trip per message "
                    f"allows {fmt(lat['limit_one_rtt_per_msg'])} messages/s.",
                    "", "| client | sink | messages/s | x the limit |",
                    "|---|---|---|---|"]
            for e in lat["rows"]:
                ratio = (e["rate"]["median"] / lat["limit_one_rtt_per_msg"]
                         if e["rate"] else None)
                out.append(f"| {e['client']} | {e['sink']} | "
                           f"{fmt_range(e['rate'])} | {fmt(ratio, 2)} |")
            out.append("")
        if r["durable"]:
            e0 = r["durable"][0]
            lt = self.row("durable", client="volley loadtest")
            out += ["## The durable path beside the bare engine, volley "
                    f"sink with CHUNKING, {e0['connections']} connections",
                    "", f"`volley send` of {e0['messages']:,} recipients "
                    "(the 4 KB template rendered per recipient, every "
                    "result committed to SQLite) and `volley loadtest "
                    "--chunking on` (generated messages, no store) of as "
                    f"many {e0['size']:,}-byte messages to the same volley "
                    "sink, rounds alternating; messages/s from each one's "
                    "own timing of its send.", "",
                    "| client | messages/s | client CPU s / 1,000 | sink "
                    "CPU s / 1,000 | peak RSS MB | ratio to loadtest |",
                    "|---|---|---|---|---|---|"]
            for e in r["durable"]:
                ratio = (e["rate"]["median"] / lt["rate"]["median"]
                         if e["rate"] and lt and lt["rate"] else None)
                out.append(f"| {e['client']} | {fmt_range(e['rate'])} | "
                           f"{fmt_range(e['cpu_s_per_1000'], 4)} | "
                           f"{fmt_range(e.get('sink_cpu_s_per_1000'), 4)} | "
                           f"{fmt_range(e.get('max_rss_mb'), 1)} | "
                           f"{fmt(ratio, 2)} |")
            out.append("")
        if r["insn"]:
            out += ["## Instructions per message (callgrind, user space, "
                    "4 KB, 8 connections, smtp-sink)", "",
                    "| client | instructions per message |", "|---|---|"]
            for k, v in r["insn"].items():
                out.append(f"| {k} | {fmt(v)} |")
            out.append("")
        if r["memory"] or r.get("big_messages") or r["memory_10m"]:
            out += ["## Memory", ""]
        if r["memory"]:
            m = r["memory"]
            out += [f"volley send of {m['recipients']:,} recipients (4 KB, "
                    f"8 connections, volley sink"
                    f"{'; the durable rows above' if m.get('from') else ''}"
                    f"): peak RSS {fmt(m['max_rss_mb'], 1)} MB, "
                    f"{fmt(m['rate'])} messages/s.", ""]
        m10 = r["memory_10m"]
        if m10 and not m10.get("skipped"):
            out += [f"volley send of a {m10['recipients']:,}-recipient "
                    "campaign (4 KB, 8 connections, volley sink, one run): "
                    f"{m10['sent']:,} sent, peak RSS "
                    f"{fmt(m10['max_rss_mb'], 1)} MB, {fmt(m10['rate'])} "
                    f"messages/s, {fmt(m10['cpu_s_per_1000'], 3)} CPU s / "
                    f"1,000.", ""]
        if r.get("big_messages"):
            b0 = r["big_messages"][0]
            if "message_mb" in b0:
                out += [f"{b0['messages']} messages of "
                        f"{b0['message_mb']:.1f} MB (a "
                        f"{self.BIG_ATTACHMENT / 2 ** 20:.1f} MB attachment, "
                        "base64) to volley sink: peak RSS of volley send.",
                        ""]
            out += ["| mode | connections | peak RSS (MB) | RSS / message "
                    "| MB/s |", "|---|---|---|---|---|"]
            for b in r["big_messages"]:
                per = (b["max_rss_mb"] / b["message_mb"]
                       if b.get("message_mb") else None)
                out.append(f"| {b['mode']} | {b['connections']} | "
                           f"{fmt(b['max_rss_mb'])} | {fmt(per, 1)} | "
                           f"{fmt(b['mb_per_s'])} |")
            out.append("")
        if r["import_memory"]:
            out += ["## Import memory", "",
                    "`volley import --skip-invalid` of email,name rows "
                    "(1% duplicates, 0.1% bad rows); peak RSS from wait4, "
                    "rows/s from the command's own summary.", "",
                    "| rows | into | added | duplicates | bad rows | "
                    "peak RSS MB | rows/s |", "|---|---|---|---|---|---|---|"]
            for e in r["import_memory"]:
                out.append(f"| {e['rows']:,} | {e['what']} | "
                           f"{e['added']:,} | {e['duplicates']:,} | "
                           f"{e['rejected']:,} | "
                           f"{fmt_range(e['max_rss_mb'], 1)} | "
                           f"{fmt_range(e['rate'])} |")
            out.append("")
        micro = r["micro"]
        if micro:
            out += ["## Micro benchmarks", "", "| what | figure |",
                    "|---|---|"]
            for k, v in micro.items():
                if isinstance(v, dict):
                    shown = fmt_range(v) if "min" in v else fmt(v["median"],
                                                                 1)
                    out.append(f"| {k} | {shown} {v.get('unit', '')} |")
            out.append("")
            if micro.get("store_raw"):
                out += ["bench_store:", "", "```",
                        micro["store_raw"].strip(), "```", ""]
        if r.get("dkim"):
            out += self.dkim_markdown()
        if r["notes"]:
            out += ["## Notes", ""] + [f"- {n}" for n in r["notes"]] + [""]
        return "\n".join(out)

    def run(self):
        sections = self.args.only.split(",") if self.args.only else \
            ["micro", "e2e", "newsletter", "loadtest", "insn", "tls",
             "latency", "durable", "memory", "importmem", "dkim",
             "postgres"]
        self.results["date"] = datetime.datetime.now(
            datetime.timezone.utc).isoformat(timespec="seconds")
        self.results["machine"] = {"cores": os.cpu_count(),
                                   "system": platform.platform()}
        self.results["quick"] = self.quick
        started = time.monotonic()
        try:
            for s in sections:
                getattr(self, s)()
        finally:
            self.servers.stop_all()
            shutil.rmtree(self.work, ignore_errors=True)
        self.results["seconds"] = time.monotonic() - started
        outdir = self.args.out
        os.makedirs(outdir, exist_ok=True)
        with open(os.path.join(outdir, "partial.json"), "w") as f:
            json.dump(self.results, f, indent=1)
        md = self.markdown()
        md += f"\nThe run took {self.results['seconds']:.0f} s.\n"
        stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
        for name in (stamp, "latest"):
            with open(os.path.join(outdir, name + ".md"), "w") as f:
                f.write(md)
            with open(os.path.join(outdir, name + ".json"), "w") as f:
                json.dump(self.results, f, indent=1)
        print(md)
        log(f"written: {outdir}/{stamp}.md and .json")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="one round of smaller counts, about two minutes")
    ap.add_argument("--only", help="comma-separated sections: micro, e2e, "
                    "newsletter, loadtest, insn, tls, latency, durable, "
                    "memory, importmem, dkim, postgres")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--no-build", action="store_true",
                    help="use build-release/ as it is")
    args = ap.parse_args()
    if not args.no_build:
        build()
    Bench(args).run()


if __name__ == "__main__":
    main()
