#!/usr/bin/python3
"""Side-by-side WebSocket benchmark: duplex vs Boost.Beast, WebSocket++, Node ws,
uWebSockets (inside Bun) and a raw TCP echo (the ceiling). Stdlib only.

    benchmarks/run.py                  # the whole table, 3 runs x ~5 s each
    benchmarks/run.py --runs 5 --duration 10
    benchmarks/run.py --smoke          # 1 run x 1 s, duplex + ceiling only; exit 1 on any zero/error

Builds (Release, -j2) what it needs into build-bench/, pins every server to CPU 0
and the load generator to CPU 1 (taskset), interleaves servers within each run
(the order rotates from run to run), reports the median and a ratio against duplex,
and writes benchmarks/results/latest.{md,json,png} (smoke: smoke.{md,json}).
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")

SCENARIOS = [
    # id, title, loadgen args, main metric
    ("echo_32_p1", "echo 100 conns x 32 B x P1", ["--mode", "echo", "--conns", "100", "--size", "32", "--pipeline", "1"], "msgs_per_s"),
    ("echo_32_p16", "echo 100 conns x 32 B x P16", ["--mode", "echo", "--conns", "100", "--size", "32", "--pipeline", "16"], "msgs_per_s"),
    ("echo_64k_p4", "echo 10 conns x 64 KiB x P4", ["--mode", "echo", "--conns", "10", "--size", "65536", "--pipeline", "4"], "msgs_per_s"),
    ("broadcast_500", "broadcast 500 conns, 5 senders, 64 B", ["--mode", "broadcast", "--conns", "500", "--senders", "5", "--size", "64", "--pipeline", "1"], "deliveries_per_s"),
    ("idle_memory", "idle memory per connection", ["--mode", "idle"], "bytes_per_conn"),
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    log("+", " ".join(cmd))
    return subprocess.run(cmd, **kw)


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().strip()


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version()}


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        new = hard if hard == resource.RLIM_INFINITY else min(hard, max(need, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    log(f"ulimit -n: soft {soft}, hard {hard}")
    return soft


# ---- building and finding the servers ---------------------------------------

def build(build_dir, targets):
    cfg = ["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
           "-DDUPLEX_BUILD_TESTS=OFF", "-DDUPLEX_BUILD_EXAMPLES=OFF", "-DDUPLEX_INSTALL=OFF"]
    if sh(cfg, stdout=subprocess.DEVNULL).returncode != 0:
        sys.exit("cmake configure failed")
    if sh(["cmake", "--build", build_dir, "-j2", "--target"] + targets).returncode != 0:
        sys.exit("build failed")


def npm_ready():
    if os.path.isdir(os.path.join(HERE, "node_modules", "ws")):
        return True
    if not shutil.which("npm"):
        return False
    lock = os.path.exists(os.path.join(HERE, "package-lock.json"))
    r = sh(["npm", "ci" if lock else "install", "--no-audit", "--no-fund"], cwd=HERE,
           stdout=subprocess.DEVNULL, timeout=600)
    return r.returncode == 0 and os.path.isdir(os.path.join(HERE, "node_modules", "ws"))


def bun_path():
    b = os.path.join(HERE, "node_modules", ".bin", "bun")
    try:
        r = subprocess.run([b, "--version"], capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return b, r.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return None, None


def servers_available(build_dir, wanted, notes):
    bin_ = lambda n: os.path.join(build_dir, "benchmarks", n)
    s = {}
    s["duplex"] = lambda port, mode: [bin_("duplex_server"), str(port), mode]
    s["raw_tcp"] = lambda port, mode: [bin_("raw_tcp_echo"), str(port)]
    versions = {"duplex": "working tree", "raw_tcp": "epoll, no WebSocket"}
    for name, exe, ver in (("beast", "beast_server", "Boost 1.74 (Debian libboost-dev)"),
                           ("websocketpp", "websocketpp_server", "0.8.2 (Debian libwebsocketpp-dev, Boost.Asio)")):
        if name not in wanted:
            continue
        if os.path.exists(bin_(exe)):
            s[name] = (lambda e: lambda port, mode: [bin_(e), str(port), mode])(exe)
            versions[name] = ver
        else:
            notes.append(f"{name}: not available (headers not found at configure time)")
    if "ws" in wanted or "bun" in wanted:
        have_npm = npm_ready()
        if "ws" in wanted:
            if have_npm and shutil.which("node"):
                s["ws"] = lambda port, mode: ["node", os.path.join(HERE, "servers", "node_ws_server.mjs"), str(port), mode]
                try:
                    with open(os.path.join(HERE, "node_modules", "ws", "package.json")) as f:
                        wv = json.load(f)["version"]
                except OSError:
                    wv = "?"
                nv = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
                versions["ws"] = f"ws {wv} on Node {nv}"
            else:
                notes.append("ws: not available (npm install failed or node missing)")
        if "bun" in wanted:
            b, v = bun_path() if have_npm else (None, None)
            if b:
                s["bun"] = lambda port, mode: [b, os.path.join(HERE, "servers", "bun_server.js"), str(port), mode]
                versions["bun"] = f"Bun {v} (uWebSockets inside)"
            else:
                notes.append("bun: not available")
    order = [n for n in ["duplex", "beast", "websocketpp", "ws", "bun", "raw_tcp"] if n in wanted and n in s]
    return {n: s[n] for n in order}, versions


# ---- running one measurement ------------------------------------------------

class Server:
    def __init__(self, argv, log_path):
        self.log = open(log_path, "w")
        self.p = subprocess.Popen(["taskset", "-c", "0"] + argv, stdout=subprocess.PIPE,
                                  stderr=self.log, text=True, start_new_session=True)
        deadline = time.time() + 20
        self.ok = False
        while time.time() < deadline:
            line = self.p.stdout.readline()
            if not line:
                break
            self.log.write(line)
            if "listening" in line:
                self.ok = True
                break
        time.sleep(0.3)

    def cpu_seconds(self):
        try:
            with open(f"/proc/{self.p.pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            return 0.0

    def rss_kib(self):
        try:
            with open(f"/proc/{self.p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
                self.p.wait(timeout=5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait()
        self.log.close()


LIVE = []


def cleanup(*_):
    for s in list(LIVE):
        s.stop()
    if _:
        sys.exit(130)


def run_one(loadgen, server_argv, args_lg, port, raw, opts, log_path):
    srv = Server(server_argv, log_path)
    LIVE.append(srv)
    try:
        if not srv.ok:
            return {"error": "server did not start (see " + log_path + ")"}
        lg = ["taskset", "-c", "1", loadgen, "--port", str(port)] + args_lg
        if raw:
            lg.append("--raw")
        idle = "idle" in args_lg
        if idle:
            lg += ["--conns", str(opts.idle_conns), "--hold", str(opts.idle_hold), "--settle", "1",
                   "--source-ips", "4", "--connect-timeout", "120"]
            limit = 180
        else:
            lg += ["--duration", str(opts.duration), "--warmup", str(opts.warmup)]
            limit = opts.duration + opts.warmup + 90
        rss0 = srv.rss_kib()
        cpu0, t0 = srv.cpu_seconds(), time.time()
        p = subprocess.Popen(lg, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        rss1 = None
        last = ""
        try:
            deadline = time.time() + limit
            for line in p.stdout:
                if line.startswith("READY"):
                    time.sleep(1.0)
                    rss1 = srv.rss_kib()
                elif line.strip():
                    last = line.strip()
                if time.time() > deadline:
                    break
            p.wait(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return {"error": "loadgen timed out"}
        cpu1, t1 = srv.cpu_seconds(), time.time()
        try:
            r = json.loads(last)
        except ValueError:
            return {"error": "loadgen printed no JSON: " + last[:200] + p.stderr.read()[:200]}
        r["server_cpu_util"] = round((cpu1 - cpu0) / max(1e-9, t1 - t0), 3)
        if idle:
            r["rss_before_kib"] = rss0
            r["rss_after_kib"] = rss1 or 0
            r["bytes_per_conn"] = round(((rss1 or 0) - rss0) * 1024 / opts.idle_conns, 1) if rss1 else 0
        if srv.p.poll() is not None and not r.get("error"):
            r["error"] = "server exited during the run"
        return r
    finally:
        srv.stop()
        LIVE.remove(srv)


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, kind="num"):
    if v is None:
        return "-"
    if kind == "ratio":
        return f"{v:.2f}x"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


# ---- main -----------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each run")
    ap.add_argument("--servers", default="duplex,beast,websocketpp,ws,bun,raw_tcp")
    ap.add_argument("--scenarios", default=",".join(s[0] for s in SCENARIOS))
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--idle-hold", type=float, default=3.0)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--base-port", type=int, default=19000)
    ap.add_argument("--smoke", action="store_true", help="1 run x 1 s, duplex + raw_tcp, 1000 idle conns; exit 1 on any zero or error")
    opts = ap.parse_args()
    if opts.smoke:
        opts.runs, opts.duration, opts.warmup = 1, 1.0, 0.2
        opts.servers = "duplex,raw_tcp"
        opts.idle_conns, opts.idle_hold = min(opts.idle_conns, 1000), 1.0

    signal.signal(signal.SIGTERM, cleanup)
    signal.signal(signal.SIGINT, cleanup)
    for tool in ("taskset", "cmake"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required")
    if (os.cpu_count() or 1) < 2:
        log("warning: fewer than 2 CPUs; server and loadgen share CPU 0")
    nofile = raise_nofile(opts.idle_conns + 1000)
    if nofile < opts.idle_conns + 100:
        opts.idle_conns = max(100, nofile - 200)
        log(f"warning: ulimit -n {nofile}: idle scenario reduced to {opts.idle_conns} connections")

    wanted = opts.servers.split(",")
    scen = [s for s in SCENARIOS if s[0] in opts.scenarios.split(",")]
    targets = ["loadgen", "raw_tcp_echo", "duplex_server"]
    if not opts.no_build:
        # beast/websocketpp targets exist only when their headers were found.
        build(opts.build_dir, ["bench_suite"] if ("beast" in wanted or "websocketpp" in wanted) else targets)
    loadgen = os.path.join(opts.build_dir, "benchmarks", "loadgen")
    notes = []
    servers, versions = servers_available(opts.build_dir, wanted, notes)
    for n in notes:
        log(n)
    logs_dir = os.path.join(opts.build_dir, "bench-logs")
    os.makedirs(logs_dir, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)

    started = datetime.datetime.now().astimezone()
    load_before = loadavg()
    raw = {}  # (scenario, server) -> list of results
    port = opts.base_port
    names = list(servers)
    for sid, title, args_lg, metric in scen:
        for run in range(opts.runs):
            order = names[run % len(names):] + names[:run % len(names)]  # rotate: A/B interleaved
            for name in order:
                if name == "raw_tcp" and sid == "broadcast_500":
                    continue  # a byte echo cannot fan out frames
                port += 1
                log(f"[{sid}] run {run + 1}/{opts.runs} {name} (port {port})")
                r = run_one(loadgen, servers[name](port, "broadcast" if sid.startswith("broadcast") else "echo"),
                            args_lg, port, name == "raw_tcp", opts,
                            os.path.join(logs_dir, f"{sid}.{name}.{run}.log"))
                r["server"], r["scenario"], r["run"] = name, sid, run
                if r.get("error"):
                    log(f"    error: {r['error']}")
                else:
                    log(f"    {metric} = {r.get(metric)}  (loadgen CPU {r.get('loadgen_cpu_util')}, server CPU {r.get('server_cpu_util')})")
                raw.setdefault((sid, name), []).append(r)
    load_after = loadavg()

    # ---- summarise ------------------------------------------------------
    fields = ["msgs_per_s", "mb_per_s", "deliveries_per_s", "p50_us", "p99_us", "bytes_per_conn",
              "server_cpu_util", "loadgen_cpu_util"]
    summary = {}
    for (sid, name), rs in raw.items():
        good = [r for r in rs if not r.get("error")]
        summary.setdefault(sid, {})[name] = {
            "runs": len(rs), "errors": [r["error"] for r in rs if r.get("error")],
            **{f: median([r.get(f) for r in good]) for f in fields}}

    cmd = " ".join([os.path.relpath(sys.argv[0], ROOT) if os.path.isabs(sys.argv[0]) else sys.argv[0]] + sys.argv[1:])
    meta = {"date": started.isoformat(timespec="seconds"), "machine": machine(), "command": cmd,
            "loadavg_before": load_before, "loadavg_after": load_after, "runs": opts.runs,
            "duration_s": opts.duration, "warmup_s": opts.warmup, "idle_conns": opts.idle_conns,
            "versions": versions, "notes": notes}
    stem = "smoke" if opts.smoke else "latest"
    with open(os.path.join(RESULTS, stem + ".json"), "w") as f:
        json.dump({"meta": meta, "summary": summary,
                   "raw": [r for rs in raw.values() for r in rs]}, f, indent=1)

    md = [f"# duplex side-by-side benchmark ({stem})", "",
          f"- date: {meta['date']}",
          f"- machine: {meta['machine']['nproc']} CPUs, {meta['machine']['cpu_model']}, Linux {meta['machine']['kernel']}",
          f"- command: `{cmd}`",
          f"- load average before: `{load_before}`, after: `{load_after}`"
          + ("  **(machine busy: numbers are noisy)**" if float(load_before.split()[0]) > 1.5 or float(load_after.split()[0]) > 1.5 else ""),
          f"- {opts.runs} run(s) per cell, median shown; {opts.duration:g} s measured after {opts.warmup:g} s warm-up; "
          "server on CPU 0, loadgen on CPU 1 (taskset); one server thread; binary messages; no compression",
          "- versions: " + "; ".join(f"{k}: {v}" for k, v in versions.items())]
    md += [f"- {n}" for n in notes]
    md.append("")
    for sid, title, _args, metric in scen:
        rows = summary.get(sid, {})
        base = rows.get("duplex", {}).get(metric)
        md.append(f"## {title}")
        md.append("")
        if sid == "idle_memory":
            md.append(f"{opts.idle_conns} idle connections; server RSS delta / connections (lower is better; ratio = server / duplex)")
            md.append("")
            md.append("| server | bytes/conn | ratio | RSS before KiB | RSS after KiB | errors |")
            md.append("|---|---:|---:|---:|---:|---|")
            for name in names:
                if name not in rows:
                    continue
                rr = [r for r in raw[(sid, name)] if not r.get("error")]
                v = rows[name][metric]
                md.append(f"| {name} | {fmt(v)} | {fmt(v / base if base and v else None, 'ratio')} | "
                          f"{fmt(median([r.get('rss_before_kib') for r in rr]))} | {fmt(median([r.get('rss_after_kib') for r in rr]))} | "
                          f"{'; '.join(rows[name]['errors']) or ''} |")
        else:
            lat = sid.endswith("p1") or sid.startswith("broadcast")
            head = "deliveries/s" if metric == "deliveries_per_s" else "msgs/s"
            latname = "send→last receiver" if sid.startswith("broadcast") else "RTT"
            cols = ["server", head, "ratio vs duplex", "MB/s"] + ([f"{latname} p50 µs", f"{latname} p99 µs"] if lat else []) + \
                   ["server CPU", "loadgen CPU", "errors"]
            md.append("| " + " | ".join(cols) + " |")
            md.append("|" + "|".join(["---"] + ["---:"] * (len(cols) - 2) + ["---"]) + "|")
            for name in names:
                if name not in rows:
                    continue
                v = rows[name]
                cells = [name, fmt(v[metric]), fmt(v[metric] / base if base and v[metric] else None, "ratio"), fmt(v["mb_per_s"])]
                if lat:
                    cells += [fmt(v["p50_us"]), fmt(v["p99_us"])]
                cells += [fmt(v["server_cpu_util"]), fmt(v["loadgen_cpu_util"]), "; ".join(v["errors"])]
                md.append("| " + " | ".join(cells) + " |")
        md.append("")
    md += ["CPU columns: CPU seconds / wall seconds (1.00 = one core busy). Server CPU is over the whole",
           "loadgen run (connect + warm-up + measurement); loadgen CPU over the measured window only.",
           "A loadgen CPU well below 1.00 means the load generator had CPU to spare.", ""]
    if not opts.smoke:
        png = plot(summary, names, scen)
        if png:
            md.append(f"![messages/s per server]({os.path.basename(png)})")
            md.append("")
    with open(os.path.join(RESULTS, stem + ".md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))

    failures = [f"{sid}/{name}: {r.get('error') or 'zero'}" for (sid, name), rs in raw.items() for r in rs
                if r.get("error") or not (r.get(dict((s[0], s[3]) for s in SCENARIOS)[sid]) or 0) > 0]
    if failures:
        log("FAILED: " + "; ".join(failures))
        return 1 if opts.smoke else 0
    return 0


def plot(summary, names, scen):
    if not shutil.which("gnuplot"):
        if os.geteuid() == 0 and shutil.which("apt-get"):
            sh(["apt-get", "install", "-y", "-q", "gnuplot-nox"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not shutil.which("gnuplot"):
            log("gnuplot not available: no plot")
            return None
    cells = [(sid, title, metric) for sid, title, _a, metric in scen if sid != "idle_memory"]
    if not cells:
        return None
    dat = os.path.join(RESULTS, "latest_plot.dat")
    with open(dat, "w") as f:
        f.write("scenario " + " ".join(names) + "\n")
        for sid, title, metric in cells:
            row = [summary.get(sid, {}).get(n, {}).get(metric) or 0 for n in names]
            f.write('"%s" %s\n' % (title.replace("conns", "c").replace(", 5 senders", " 5s"), " ".join(str(v) for v in row)))
    png = os.path.join(RESULTS, "latest.png")
    gp = f"""set terminal pngcairo size 1100,560 noenhanced font ",10"
set output '{png}'
set title 'messages/s per server (broadcast: deliveries/s), median, log scale; higher is better'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [10:*]
set grid ytics
set key outside right top
set xtics noenhanced
plot for [i=2:{len(names) + 1}] '{dat}' using i:xtic(1) title columnheader(i)
"""
    r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    if r.returncode != 0 or not os.path.exists(png):
        # pngcairo may be missing in gnuplot-nox: fall back to the libgd png terminal
        r = subprocess.run(["gnuplot"], input=gp.replace("pngcairo", "png"), text=True, capture_output=True)
    if r.returncode != 0:
        log("gnuplot failed: " + r.stderr[:300])
        return None
    return png


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cleanup()
