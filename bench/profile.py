#!/usr/bin/env python3
"""bench/profile.py - where a message's instructions go.

    bench/profile.py [--only VARIANTS] [-n N] [--top K]

Callgrind on `volley send` (release build, build-release/) of N and 2N
messages, 8 connections, on loopback; the difference per function
divided by N (start-up, the TLS handshakes and the key loading cancel
out), grouped by where the code lives (volley, sqlite, libc, openssl,
the loader, other libraries), then the top K functions.  Only the
client runs under valgrind.  docs/performance.md keeps its output.

Variants (default: all of them, about 75 seconds on 2 cores):

  text4k      the 4 KB text template of bench/run, Postfix smtp-sink
  text100k    the same template at 100 KB, smtp-sink
  newsletter  bench/newsletter.py's ~100 KB newsletter (HTML + text,
              per-recipient variables in both, an inline PNG), smtp-sink
  plain       4 KB to volley sink in plaintext: the baseline of the three
              below, on the same kind of sink
  tls         4 KB to volley sink over STARTTLS + AUTH PLAIN (the sink
              and certificate made as bench/run's tls section makes them)
  rsa2048     4 KB to volley sink in plaintext, DKIM RSA-2048 signing
  ed25519     4 KB to volley sink in plaintext, DKIM Ed25519 signing

At the end, one table of every variant run: instructions per message in
all and per group.  Every server is started here on loopback and stopped
by its PID.  Run as root or not; needs valgrind, callgrind_annotate and
smtp-sink (for the smtp-sink variants).
"""
import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("br", ROOT + "/bench/run.py")
br = importlib.util.module_from_spec(spec)
spec.loader.exec_module(br)
VOLLEY = br.VOLLEY

# name: (description, sink, message size, TLS, DKIM selectors, template)
VARIANTS = {
    "text4k": ("4 KB text, smtp-sink", "smtp-sink", 4096, False, (), None),
    "text100k": ("100 KB text, smtp-sink", "smtp-sink", 102400, False, (),
                 None),
    "newsletter": ("100 KB newsletter (bench/newsletter.py), smtp-sink",
                   "smtp-sink", 102400, False, (), "newsletter"),
    "plain": ("4 KB text, volley sink, plaintext", "volley sink", 4096,
              False, (), None),
    "tls": ("4 KB text, volley sink, STARTTLS + AUTH PLAIN", "volley sink",
            4096, True, (), None),
    "rsa2048": ("4 KB text, volley sink, plaintext, DKIM RSA-2048",
                "volley sink", 4096, False, ("rsa",), None),
    "ed25519": ("4 KB text, volley sink, plaintext, DKIM Ed25519",
                "volley sink", 4096, False, ("ed",), None),
}
GROUPS = ("volley", "sqlite", "libc", "openssl", "loader", "other")


def group_of(obj):
    """Where a function lives, from the object callgrind_annotate names."""
    base = os.path.basename(obj)
    if "libsqlite3" in base:
        return "sqlite"
    if base.startswith(("libc.so", "libc-", "libm.so", "libpthread")):
        return "libc"
    if base.startswith(("libcrypto", "libssl")):
        return "openssl"
    if base.startswith("ld-linux"):
        return "loader"
    if base == "volley" or "build-release" in obj:
        return "volley"
    return "other"


def fn_costs(path):
    """{(group, function): instructions} of one callgrind output file."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100",
                          "--inclusive=no", path], capture_output=True,
                         text=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S+?):(\S+)(.*)$", line)
        if not m:
            continue
        fn = m.group(3).split(" ")[0]
        obj = re.search(r"\[([^\]]+)\]", m.group(4))
        where = group_of(obj.group(1)) if obj else "volley"
        if where == "other" and obj:
            fn += f" [{os.path.basename(obj.group(1))}]"
        key = (where, fn)
        costs[key] = costs.get(key, 0) + int(m.group(1).replace(",", ""))
    return costs


class Profiler:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="volley-profile-")
        self.servers = br.Servers()
        self.sinks = {}
        self.summary = []

    def sink(self, kind, tls):
        """(port, extra smtp settings) of a sink of this kind, started
        once on loopback."""
        key = (kind, tls)
        if key not in self.sinks:
            port = br.free_port()
            if kind == "smtp-sink":
                smtp_sink = br.which("smtp-sink")
                if not smtp_sink:
                    sys.exit("smtp-sink is not installed: apt-get install "
                             "postfix")
                cmd = [smtp_sink, "-c", f"127.0.0.1:{port}", "1000"]
                if os.geteuid() == 0:
                    cmd[1:1] = ["-u", "nobody"]
                cfg = 'tls = "none";'
            else:
                cmd = [VOLLEY, "sink", "-q", "--listen", f"127.0.0.1:{port}"]
                cfg = 'tls = "none";'
                if tls:
                    cert, key_file = br.make_cert(self.work)
                    cmd += ["--tls-cert", cert, "--tls-key", key_file,
                            "--auth", f"bench:{br.SINK_PASSWORD}"]
                    cfg = br.tls_cfg(cert)
                    os.environ["BENCH_PASSWORD"] = br.SINK_PASSWORD
            self.servers.start(cmd)
            br.wait_port("127.0.0.1", port)
            self.sinks[key] = (port, cfg)
        return self.sinks[key]

    def callgrind(self, name, n):
        _, kind, size, tls, dkim, template = VARIANTS[name]
        port, cfg = self.sink(kind, tls)
        tdir = None
        if template == "newsletter":
            tdir = os.path.join(self.work, "newsletter")
            if not os.path.isdir(tdir):
                br.NEWSLETTER.write_newsletter(tdir)
        extra = br.dkim_cfg(self.work, *dkim) if dkim else ""
        camp = br.VolleyCampaign(
            self.work, size, n, f'host = "127.0.0.1"; port = {port}; '
            f"connections = 8; {cfg}", extra_cfg=extra, template=tdir)
        cg = os.path.join(self.work, f"cg-{name}-{n}")
        try:
            r = subprocess.run(["valgrind", "--tool=callgrind",
                                f"--callgrind-out-file={cg}", VOLLEY,
                                "send", camp.name, "--quiet"], cwd=camp.dir,
                               capture_output=True, text=True)
            sent = camp.sent()
        finally:
            camp.cleanup()
        if r.returncode != 0 or sent != n:
            sys.exit(f"{name}: volley send under callgrind sent {sent} of "
                     f"{n} (exit {r.returncode}): {r.stderr[-500:]}")
        costs = fn_costs(cg)
        os.remove(cg)
        return costs

    def variant(self, name):
        n = self.args.n
        desc = VARIANTS[name][0]
        print(f"profiling {name}: {desc}, {n} and {2 * n} messages",
              file=sys.stderr, flush=True)
        one, two = self.callgrind(name, n), self.callgrind(name, 2 * n)
        per = {f: (two.get(f, 0) - one.get(f, 0)) / n
               for f in set(one) | set(two)}
        total = sum(per.values())
        groups = {g: 0.0 for g in GROUPS}
        for (where, _), v in per.items():
            groups[where] += v
        print(f"== {name} ({desc}): {total:,.0f} instructions per message")
        for where, v in sorted(groups.items(), key=lambda kv: -kv[1]):
            if v:
                print(f"{v:12,.0f} {100 * v / total:5.1f}%  [{where}]")
        for (where, f), v in sorted(per.items(),
                                    key=lambda kv: -kv[1])[:self.args.top]:
            print(f"{v:12,.0f} {100 * v / total:5.1f}%  {f} ({where})")
        print(flush=True)
        self.summary.append((name, desc, total, groups))

    def report(self):
        if len(self.summary) < 2:
            return
        print("== instructions per message, by variant")
        print()
        print("| variant | what | in all | " + " | ".join(GROUPS) + " |")
        print("|---|---|---|" + "---|" * len(GROUPS))
        for name, desc, total, groups in self.summary:
            print(f"| {name} | {desc} | {total:,.0f} | " +
                  " | ".join(f"{groups[g]:,.0f}" for g in GROUPS) + " |")
        print()

    def run(self):
        names = (self.args.only.split(",") if self.args.only
                 else list(VARIANTS))
        bad = [x for x in names if x not in VARIANTS]
        if bad:
            sys.exit(f"unknown variant {', '.join(bad)}; the variants: "
                     f"{', '.join(VARIANTS)}")
        try:
            for name in names:
                self.variant(name)
            self.report()
        finally:
            self.servers.stop_all()
            shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated variants: " +
                    ", ".join(VARIANTS))
    ap.add_argument("-n", type=int, default=400,
                    help="messages of the first run (the second sends 2N; "
                    "default 400)")
    ap.add_argument("--top", type=int, default=30,
                    help="functions listed per variant (default 30)")
    args = ap.parse_args()
    if not os.path.exists(VOLLEY):
        sys.exit(f"{VOLLEY} is not built: bench/run builds it, or cmake "
                 "-S . -B build-release -DCMAKE_BUILD_TYPE=Release")
    for tool in ("valgrind", "callgrind_annotate"):
        if not br.which(tool):
            sys.exit(f"{tool} is not installed")
    Profiler(args).run()


if __name__ == "__main__":
    main()
