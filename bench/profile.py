"""bench/profile.py - where a message's instructions go: callgrind on
`volley send` (release build) of N and 2N messages of 4 KB and 100 KB to
Postfix's smtp-sink on loopback, the difference per function divided by
N (start-up cancels out), the top 30 of each.  docs/performance.md keeps
its output.  Run as root or not; needs valgrind and smtp-sink."""
import os, re, subprocess, sys, tempfile, shutil, importlib.util, signal
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("br", ROOT + "/bench/run.py")
br = importlib.util.module_from_spec(spec); spec.loader.exec_module(br)
VOLLEY = ROOT + "/build-release/cli/volley"
work = tempfile.mkdtemp(prefix="volley-profile-")
port = br.free_port()
cmd = ["/usr/sbin/smtp-sink", "-c", f"127.0.0.1:{port}", "1000"]
if os.geteuid() == 0:
    cmd[1:1] = ["-u", "nobody"]
sink = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
br.wait_port("127.0.0.1", port)

def fn_costs(path):
    out = subprocess.run(["callgrind_annotate", "--threshold=100",
                          "--inclusive=no", path], capture_output=True,
                         text=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S+?):(\S+)", line)
        if m:
            fn = m.group(3).split(" ")[0]
            where = ("sqlite" if "libsqlite3" in line else
                     "libc" if "libc.so" in line else
                     "openssl" if "libcrypto" in line or "libssl" in line
                     else "loader" if "ld-linux" in line else "volley")
            key = (where, fn)
            costs[key] = costs.get(key, 0) + int(m.group(1).replace(",",
                                                                    ""))
    return costs

def run(size, n, tls_cfg=""):
    cfg = f'host = "127.0.0.1"; port = {port}; tls = "none"; connections = 8;'
    camp = br.VolleyCampaign(work, size, n, cfg)
    cg = os.path.join(work, f"cg-{size}-{n}")
    subprocess.run(["valgrind", "--tool=callgrind",
                    f"--callgrind-out-file={cg}", VOLLEY, "send",
                    camp.name, "--quiet"], cwd=camp.dir, capture_output=True)
    camp.cleanup()
    return fn_costs(cg)

try:
    for size in (4096, 102400):
        n = 400
        one, two = run(size, n), run(size, 2 * n)
        per = {f: (two.get(f, 0) - one.get(f, 0)) / n
               for f in set(one) | set(two)}
        total = sum(per.values())
        print(f"== {size} bytes: {total:,.0f} instructions per message")
        groups = {}
        for (where, f), v in per.items():
            groups[where] = groups.get(where, 0) + v
        for where, v in sorted(groups.items(), key=lambda kv: -kv[1]):
            print(f"{v:12,.0f} {100*v/total:5.1f}%  [{where}]")
        for (where, f), v in sorted(per.items(), key=lambda kv: -kv[1])[:30]:
            print(f"{v:12,.0f} {100*v/total:5.1f}%  {f} ({where})")
finally:
    sink.send_signal(signal.SIGTERM); sink.wait()
    shutil.rmtree(work, ignore_errors=True)
