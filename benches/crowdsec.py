#!/usr/bin/env python3
"""CrowdSec LAPI bench (issue #18): blocks shared between two portsentry daemons through
a real LAPI (Debian's crowdsec, run by tests/crowdsec/lapi), as root.

Usage: benches/crowdsec.py BIN [DECISIONS=0] [SCANS=50] [IDLE_SECS=60]

Topology (namespaces made here and deleted at the end, even on failure): csbS (scanner,
198.18.0.1/24) -- csbA (host A, 198.18.0.2/24; 198.19.1.1/30 with the LAPI on :8080)
-- csbB (host B, 198.19.1.2/30). A pushes (watcher), B pulls (bouncer) every 1 s.

Measures, printed as RESULT lines:
  - lapi_stream: the LAPI alone serving the startup stream of DECISIONS decisions to a
    client that only reads it (what no bouncer can go below);
  - startup: B's first pull of DECISIONS decisions loaded beforehand with
    `cscli decisions import`: seconds from B's start to its "applied N of M decisions"
    line, and B's VmHWM then;
  - propagation: SCANS single SYNs from distinct spoofed sources (198.18.0.100 on) to
    A's monitored port 1; time from the SYN to the element in B's kernel set (seen with
    `nft monitor`), p50 and p99;
  - idle: B's CPU seconds over IDLE_SECS of polling an unchanged stream, per hour.
Every generator is bounded (one SYN per scan); only 198.18.0.0/15 is used.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAPI = os.path.join(ROOT, "tests/crowdsec/lapi")
NS = ("csbS", "csbA", "csbB")


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def teardown(procs, lapi_dir):
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
    if lapi_dir:
        sh(LAPI, "stop", lapi_dir, check=False)
    for ns in NS:
        sh("ip", "netns", "del", ns, check=False)


def bed():
    for ns in NS:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", "csbs0", "netns", "csbS", "type", "veth", "peer", "name", "csba0", "netns", "csbA")
    sh("ip", "link", "add", "csba1", "netns", "csbA", "type", "veth", "peer", "name", "csbb0", "netns", "csbB")
    for ns, dev, addr in [("csbS", "csbs0", "198.18.0.1/24"), ("csbA", "csba0", "198.18.0.2/24"),
                          ("csbA", "csba1", "198.19.1.1/30"), ("csbB", "csbb0", "198.19.1.2/30")]:
        sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")


def daemon(ns, binary, conf, out):
    p = subprocess.Popen(["ip", "netns", "exec", ns, binary] + os.environ.get("CSB_ARGS", "").split() + ["-c", conf],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = out

    def read():
        for line in p.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))
    threading.Thread(target=read, daemon=True).start()
    return p


def wait_line(lines, pred, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        for t, l in list(lines):
            if pred(l):
                return t, l
        time.sleep(0.01)
    raise SystemExit(f"timeout waiting for a line; last: {[l for _, l in lines[-5:]]}")


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_secs(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return
    binary = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    scans = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    idle = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    work = tempfile.mkdtemp(prefix="csbench")
    lapi_dir = os.path.join(work, "lapi")
    procs = []
    try:
        teardown([], None)
        bed()
        sh(LAPI, "start", lapi_dir, "csbA", "198.19.1.1:8080")
        key = sh(LAPI, "cscli", lapi_dir, "--error", "bouncers", "add", "host-b", "-o", "raw").stdout.strip()
        sh(LAPI, "cscli", lapi_dir, "--error", "machines", "add", "host-a", "--password", "pw-a-123456",
           "-f", os.path.join(work, "m.yaml"))
        if n:
            csv = os.path.join(work, "d.csv")
            with open(csv, "w") as f:
                f.write("duration,scope,value,reason\n")
                base = (198 << 24) | (18 << 16) | (16 << 8)
                i = k = 0
                while k < n:
                    a = base + i
                    i += 1
                    q = [(a >> s) & 255 for s in (24, 16, 8, 0)]
                    if q[1] == 19 and q[2] == 1:
                        continue  # the A-B link
                    f.write(f"4h,ip,{q[0]}.{q[1]}.{q[2]}.{q[3]},bench/import\n")
                    k += 1
            t = time.monotonic()
            sh(LAPI, "cscli", lapi_dir, "--error", "decisions", "import", "-i", csv)
            print(f"# imported {n} decisions in {time.monotonic() - t:.1f} s")
        for name in ("a", "b"):
            os.makedirs(os.path.join(work, name))
        common = ('TCP_PORTS="1"\nBLOCK_TCP="1"\nBLOCK_BACKEND="nft"\nBLOCK_TIMEOUT="1h"\n'
                  'BLOCK_MAX="300000"\nCROWDSEC_LAPI_URL="http://198.19.1.1:8080"\nCROWDSEC_POLL_INTERVAL="1s"\n')
        conf_a = os.path.join(work, "a/p.conf")
        with open(conf_a, "w") as f:
            f.write(common + f'BLOCK_STATE_FILE="{work}/a/blocks"\nIGNORE_FILE="{work}/a/ignore"\n'
                    'CROWDSEC_MACHINE_ID="host-a"\nCROWDSEC_MACHINE_PASSWORD="pw-a-123456"\n')
        with open(os.path.join(work, "a/ignore"), "w") as f:
            f.write("198.19.1.0/30\n")
        conf_b = os.path.join(work, "b/p.conf")
        with open(conf_b, "w") as f:
            f.write(common + f'BLOCK_STATE_FILE="{work}/b/blocks"\nCROWDSEC_BOUNCER_KEY="{key}"\n')
        if n:
            # the LAPI's own share of a start: serving the whole startup stream to a
            # client that only reads it (the same bouncer key; startup=true is stateless)
            fetch = ("import time,urllib.request as u\n"
                     "r=u.Request('http://198.19.1.1:8080/v1/decisions/stream?startup=true',"
                     "headers={'X-Api-Key':'%s'})\n"
                     "t=time.monotonic();b=u.urlopen(r,timeout=120).read()\n"
                     "print(len(b),time.monotonic()-t)\n" % key)
            out = sh("ip", "netns", "exec", "csbB", "python3", "-c", fetch).stdout.split()
            print(f"RESULT crowdsec lapi_stream decisions={n} bytes={out[0]} seconds={float(out[1]):.3f}")
        la, lb = [], []
        procs.append(daemon("csbA", binary, conf_a, la))
        wait_line(la, lambda l: l == "Portsentry is now active and listening.", 30)
        t0 = time.monotonic()
        pb = daemon("csbB", binary, conf_b, lb)
        procs.append(pb)
        if n:
            t, line = wait_line(lb, lambda l: "decisions from the LAPI at start" in l, 300)
            m = re.search(r"applied (\d+) of (\d+)", line)
            print(f"RESULT crowdsec startup decisions={n} applied={m.group(1)} seconds={t - t0:.3f} "
                  f"vmhwm_mb={status(pb.pid, 'VmHWM') / 1024:.1f} rss_mb={status(pb.pid, 'VmRSS') / 1024:.1f}")
        wait_line(lb, lambda l: l == "Portsentry is now active and listening.", 60)
        # B's kernel set, followed
        mon = subprocess.Popen(["ip", "netns", "exec", "csbB", "nft", "monitor", "elements"],
                               stdout=subprocess.PIPE, text=True)
        procs.append(mon)
        seen = {}

        def follow():
            for line in mon.stdout:
                t = time.monotonic()
                if line.startswith("add element"):
                    for a in re.findall(r"198\.18\.0\.\d+", line):
                        seen.setdefault(a, t)
        threading.Thread(target=follow, daemon=True).start()
        time.sleep(0.5)
        lat = []
        for i in range(scans):
            src = f"198.18.0.{100 + i}"
            t = time.monotonic()
            sh("ip", "netns", "exec", "csbS", "hping3", "-q", "-S", "-p", "1", "-c", "1", "-a", src,
               "198.18.0.2", check=False, timeout=10)
            end = t + 10
            while src not in seen and time.monotonic() < end:
                time.sleep(0.002)
            if src in seen:
                lat.append(seen[src] - t)
            time.sleep(0.3)
        if lat:
            print(f"RESULT crowdsec propagation decisions={n} scans={scans} arrived={len(lat)} "
                  f"p50_ms={pct(lat, 50) * 1000:.0f} p99_ms={pct(lat, 99) * 1000:.0f} "
                  f"max_ms={max(lat) * 1000:.0f}")
        c0 = cpu_secs(pb.pid)
        time.sleep(idle)
        used = cpu_secs(pb.pid) - c0
        print(f"RESULT crowdsec idle decisions={n} cpu_s_per_hour={used * 3600 / idle:.1f} "
              f"rss_mb={status(pb.pid, 'VmRSS') / 1024:.1f}")
        for t, line in lb:
            if "crowdsec:" in line and "pulled" in line:
                print(f"# B: {line}")
    finally:
        teardown(procs, lapi_dir)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
