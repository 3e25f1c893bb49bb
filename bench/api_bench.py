#!/usr/bin/env python3
"""API benchmark: Strato and moto's server side by side, in one run, on one
machine, driven by the same load generator (bench/loadgen, Rust, SigV4-signed
requests). Each server is measured alone (never both at once) on the same
scenarios, and the report gives throughput, p50/p99 latency and Strato/moto
ratios.

    bench/run-api [--seconds 10] [--concurrency 4] [--instances 500]
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from benchlib import machine, write_report

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LOADGEN = os.path.join(ROOT, "target", "release", "strato-loadgen")
STRATO = os.path.join(ROOT, "target", "release", "strato")
# (name, loadgen scenario, extra settings). Describes run before anything adds
# instances, so they see exactly the launched count; `run` is capped so both
# servers launch the same number of instances.
SCENARIOS = [
    ("describe", "describe", {}),
    ("describe-tag", "describe-tag", {}),
    ("describe-serial", "describe", {"concurrency": 1}),
    ("create-tags", "create-tags", {}),
    ("run", "run", {"max_requests": 1000}),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start_strato():
    port = free_port()
    data = tempfile.mkdtemp(prefix="strato-bench-")
    cfg = os.path.join(data, "bench.toml")
    with open(cfg, "w") as f:
        # Quotas high enough for the load; the simulated runtime is the
        # control plane's own cost, which is what this benchmark measures.
        f.write('[runtime]\nkind = "simulated"\nsimulated_delay_ms = 0\n[limits]\nvcpus_per_region = 1000000\n')
    log = open(os.path.join(data, "serve.log"), "w")
    p = subprocess.Popen([STRATO, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--config", cfg],
                         stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, STRATO_LOG="warn"))
    wait_port(port)
    return p, port, data


def start_moto(venv):
    port = free_port()
    exe = os.path.join(venv, "bin", "moto_server")
    log = open(os.path.join(tempfile.gettempdir(), "moto-bench.log"), "w")
    p = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    wait_port(port)
    return p, port


def loadgen(port, label, scenario, args, concurrency=None, max_requests=None):
    cmd = [LOADGEN, "--endpoint", f"http://127.0.0.1:{port}", "--region", "us-east-1", "--scenario", scenario,
           "--label", label, "--seconds", str(args.seconds), "--concurrency", str(concurrency or args.concurrency),
           "--instances", str(args.instances)]
    if max_requests:
        cmd += ["--max-requests", str(max_requests)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen {label} {scenario} failed: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(port, label, args):
    results = {}
    setup = loadgen(port, label, "setup", args)
    print(f"  {label}: {setup['instances']} instances", flush=True)
    for name, scenario, extra in SCENARIOS:
        r = loadgen(port, label, scenario, args, **extra)
        print(f"  {label} {name}: {r['throughput']:.1f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms ({r['requests']} ok, {r['errors']} errors)", flush=True)
        results[name] = r
    return results



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--instances", type=int, default=500)
    ap.add_argument("--venv", default=os.path.join(ROOT, ".venv-bench"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()

    print("strato:", flush=True)
    sp, sport, sdata = start_strato()
    try:
        strato = measure(sport, "strato", args)
    finally:
        sp.send_signal(signal.SIGTERM)
        sp.wait()
        shutil.rmtree(sdata, ignore_errors=True)
    print("moto:", flush=True)
    mp, mport = start_moto(args.venv)
    try:
        moto = measure(mport, "moto", args)
    finally:
        mp.send_signal(signal.SIGTERM)
        mp.wait()

    rows = []
    for sc, _, _ in SCENARIOS:
        s, m = strato[sc], moto[sc]
        ratio = s["throughput"] / m["throughput"] if m["throughput"] else float("inf")
        rows.append((sc, s, m, ratio))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# API benchmark: Strato vs moto ({stamp})",
        "",
        f"Machine: {machine()}",
        f"Command: `bench/run-api --seconds {args.seconds:g} --concurrency {args.concurrency} --instances {args.instances}`",
        f"Load: {args.instances} instances launched first (half tagged Name=web-*); {args.concurrency} connections; "
        f"{args.seconds:g} s per scenario; `describe-serial` is one connection; `run` launches 1000 instances, one per call. "
        "Each server runs alone while measured; the load generator runs on the same machine.",
        "",
        "| scenario | strato req/s | strato p50 ms | strato p99 ms | moto req/s | moto p50 ms | moto p99 ms | throughput ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for sc, s, m, ratio in rows:
        lines.append(f"| {sc} | {s['throughput']:.1f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {m['throughput']:.1f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {ratio:.0f}x |")
    write_report(args.out, "api-latest.md", lines, {"strato": strato, "moto": moto}, "Raw results:", len(rows) + 8)


if __name__ == "__main__":
    sys.exit(main())
