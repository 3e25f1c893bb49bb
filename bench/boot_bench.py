#!/usr/bin/env python3
"""Launch-to-SSH and density benchmark for real instances.

Starts `strato serve` with the QEMU runtime, then measures, for the minimal
image, the time from RunInstances to the first successful SSH command (run
with OpenSSH from the `strato-outside` namespace):
  * one launch at a time (--launches, default 10), and
  * five at once (in rounds, for as many samples);
then launches --density instances of t2.nano, waits until each answers SSH,
and reads each QEMU's memory: its resident set, the part of it that is guest
RAM the guest has touched, and the rest (QEMU's own overhead).

    bench/run-boot [--launches 10] [--density 20]
"""
import argparse
import concurrent.futures
import datetime
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from strato_harness import IMAGES, kill_vms, ssh  # noqa: E402
from benchlib import bench_server, machine, pct, write_report  # noqa: E402

REGION = "us-east-1"



def launch_and_time(ec2, ami, pem, itype="t2.micro", timeout=180):
    t0 = time.time()
    r = ec2.run_instances(ImageId=ami, InstanceType=itype, MinCount=1, MaxCount=1, KeyName="bench")
    iid = r["Instances"][0]["InstanceId"]
    ip = r["Instances"][0]["PublicIpAddress"]
    while time.time() - t0 < timeout:
        try:
            if ssh(ip, pem, "true", timeout=10).returncode == 0:
                return iid, time.time() - t0
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{iid} did not answer SSH within {timeout}s")


def terminate(ec2, ids):
    if not ids:
        return
    ec2.terminate_instances(InstanceIds=ids)
    deadline = time.time() + 120
    while time.time() < deadline:
        states = [i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
        if all(s == "terminated" for s in states):
            return
        time.sleep(0.5)


def qemu_memory(pid, guest_mib):
    """(rss_kib, guest_ram_rss_kib) of one QEMU: the guest RAM is the
    anonymous mapping of exactly the guest's size."""
    rss = 0
    guest = 0
    size = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                a, b = line.split()[0].split("-")
                size = (int(b, 16) - int(a, 16)) // 1024
            elif line.startswith("Rss:"):
                kib = int(line.split()[1])
                rss += kib
                if size == guest_mib * 1024:
                    guest += kib
    return rss, guest



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--launches", type=int, default=10)
    ap.add_argument("--density", type=int, default=20)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    cfg = (f'images_dir = "{IMAGES}"\n[runtime]\nkind = "qemu"\nbuild_default_image = false\n'
           'cpu_overcommit = 64.0\nmemory_overcommit = 4.0\n')
    s, accel, ec2, _, pem, ami = bench_server(cfg, REGION)
    results = {}
    try:
        # One at a time.
        serial = []
        for n in range(args.launches):
            iid, t = launch_and_time(ec2, ami, pem)
            serial.append(t)
            print(f"  serial {n + 1}: {t:.2f} s", flush=True)
            terminate(ec2, [iid])
        # Five at once.
        parallel = []
        rounds = max(1, args.launches // 5)
        for n in range(rounds):
            with concurrent.futures.ThreadPoolExecutor(5) as pool:
                done = list(pool.map(lambda _: launch_and_time(ec2, ami, pem), range(5)))
            parallel += [t for _, t in done]
            print(f"  five at once, round {n + 1}: " + ", ".join(f"{t:.2f}" for _, t in done), flush=True)
            terminate(ec2, [i for i, _ in done])
        results["serial"] = serial
        results["parallel"] = parallel
        # Density: many small instances at once, then their memory.
        ids = []
        for n in range(args.density):
            r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1, KeyName="bench")
            ids.append((r["Instances"][0]["InstanceId"], r["Instances"][0]["PublicIpAddress"]))
        deadline = time.time() + 600
        up = set()
        while len(up) < len(ids) and time.time() < deadline:
            for iid, ip in ids:
                if iid in up:
                    continue
                try:
                    if ssh(ip, pem, "true", timeout=20).returncode == 0:
                        up.add(iid)
                except subprocess.TimeoutExpired:
                    pass  # a guest this busy may take longer than that to answer
            time.sleep(0.5)
        time.sleep(5)
        mem = []
        for pid in [int(p) for p in subprocess.run(["pgrep", "-f", "qemu-system-x86_64.*-name strato-i-"], capture_output=True, text=True).stdout.split()]:
            cmd = open(f"/proc/{pid}/cmdline").read()
            if s.data_dir in cmd:
                mem.append(qemu_memory(pid, 512))
        results["density"] = {"launched": len(ids), "answering_ssh": len(up), "memory_kib": mem}
        terminate(ec2, [i for i, _ in ids])
    finally:
        s.stop()
        kill_vms(s)

    total_rss = [m[0] for m in results["density"]["memory_kib"]]
    guest = [m[1] for m in results["density"]["memory_kib"]]
    overhead = [a - b for a, b in zip(total_rss, guest)]
    host_kib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024
    per = statistics.mean(total_rss) if total_rss else float("nan")
    fits = int((24 * 1024 * 1024 - 2 * 1024 * 1024) / per) if total_rss else 0
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Launch-to-SSH and density benchmark ({stamp})",
        "",
        f"Machine: {machine()}; accelerator: {accel}",
        f"Command: `bench/run-boot --launches {args.launches} --density {args.density}`",
        "Image: minimal; launch-to-SSH is from the RunInstances call to the first successful `ssh … true` "
        "(OpenSSH, from the strato-outside namespace, polling every 50 ms).",
        "",
        "| launches | n | p50 s | p95 s | min s | max s |",
        "|---|---:|---:|---:|---:|---:|",
        f"| one at a time (t2.micro) | {len(results['serial'])} | {pct(results['serial'], .5):.2f} | {pct(results['serial'], .95):.2f} | {min(results['serial']):.2f} | {max(results['serial']):.2f} |",
        f"| five at once (t2.micro) | {len(results['parallel'])} | {pct(results['parallel'], .5):.2f} | {pct(results['parallel'], .95):.2f} | {min(results['parallel']):.2f} | {max(results['parallel']):.2f} |",
        "",
        f"Density: {results['density']['launched']} t2.nano instances (512 MiB each) launched together, "
        f"{results['density']['answering_ssh']} answering SSH; per QEMU process once idle:",
        "",
        "| | mean MiB | max MiB |",
        "|---|---:|---:|",
        f"| resident set (RSS) | {statistics.mean(total_rss) / 1024:.1f} | {max(total_rss) / 1024:.1f} |" if total_rss else "| resident set | - | - |",
        f"| of which guest RAM the guest touched | {statistics.mean(guest) / 1024:.1f} | {max(guest) / 1024:.1f} |" if guest else "",
        f"| QEMU's own (RSS beyond guest RAM) | {statistics.mean(overhead) / 1024:.1f} | {max(overhead) / 1024:.1f} |" if overhead else "",
        "",
        f"At that footprint one 24 GiB machine (2 GiB kept for the host) holds about **{fits}** idle minimal instances "
        f"by memory; under TCG the CPU is the tighter limit while they boot (this host: {os.cpu_count()} CPUs, "
        f"{host_kib / 2**20:.0f} GiB).",
    ]
    write_report(args.out, "boot-latest.md", lines, results, "Raw results (seconds; memory in KiB as (RSS, guest RAM RSS)):", 22)


if __name__ == "__main__":
    main()
