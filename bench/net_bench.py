#!/usr/bin/env python3
"""Network benchmark for real instances.

Starts `strato serve` with the QEMU runtime and two minimal instances, then:
  * rule change to enforcement: AuthorizeSecurityGroupIngress for a port that
    was closed, timed from the request to the first TCP probe (from the
    `strato-outside` namespace) that reaches the instance; and the API call's
    own duration, which bounds enforcement of a revoke from above (the rules
    are swapped in before the call returns). --changes samples, p50 and p99;
  * TCP throughput with iperf3 (Debian's package, copied into the guests
    over SSH with its libraries): instance to instance inside a VPC, and
    outside to instance through the public address, next to the host's own
    loopback as the physical reference.

    bench/run-net [--changes 30] [--seconds 5]
"""
import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from strato_harness import IMAGES, OUTSIDE_NS, kill_vms, ssh, wait_ssh  # noqa: E402
from benchlib import bench_server, machine, pct, write_report  # noqa: E402

REGION = "us-east-1"
PROBE_PORT = 7000

# Sends a TCP connection attempt every 5 ms from inside the outside
# namespace (each waits up to 300 ms for an answer) and prints the wall-clock
# time at which the first attempt that reached the instance's kernel was
# sent: when the rule was in force, to within the 5 ms spacing.
PROBER = r"""
import errno, select, socket, sys, time
dst, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
print("ready", flush=True)
end = time.time() + limit
pending = {}
next_send = 0.0
while time.time() < end:
    now = time.time()
    if now >= next_send:
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((dst, port))
        pending[s] = now
        next_send = now + 0.005
    for s, sent in list(pending.items()):
        if time.time() - sent > 0.3:
            s.close(); del pending[s]
    _, ready, _ = select.select([], list(pending), [], 0.002)
    for s in ready:
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err in (0, errno.ECONNREFUSED):
            print(repr(pending[s]), flush=True)
            sys.exit(0)
        s.close(); del pending[s]
print("timeout", flush=True)
"""


def iperf_files():
    """iperf3 and the libraries it loads, as the host's loader resolves them."""
    binary = shutil.which("iperf3")
    if not binary:
        sys.exit("iperf3 is missing: apt-get install iperf3 (bench/run-net does this)")
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = re.findall(r"=>\s*(/\S+)", out) + re.findall(r"^\s*(/\S+ld-linux\S*)", out, re.M)
    return binary, libs


def install_iperf(host, pem):
    binary, libs = iperf_files()
    ssh(host, pem, "mkdir -p /tmp/iperf")
    for path in [binary] + libs:
        with open(path, "rb") as f:
            r = ssh(host, pem, f"cat > /tmp/iperf/{os.path.basename(path)}", timeout=120, stdin=f)
        if r.returncode != 0:
            raise RuntimeError(f"copying {path}: {r.stderr!r}")
    loader = next(os.path.basename(p) for p in libs if "ld-linux" in p)
    ssh(host, pem, "chmod +x /tmp/iperf/*")
    return f"/tmp/iperf/{loader} --library-path /tmp/iperf /tmp/iperf/iperf3"


def bits_per_second(report):
    return json.loads(report)["end"]["sum_received"]["bits_per_second"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=30)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    cfg = f'images_dir = "{IMAGES}"\n[runtime]\nkind = "qemu"\nbuild_default_image = false\n'
    s, accel, ec2, default_sg, pem, ami = bench_server(cfg, REGION)
    results = {}
    try:
        r = ec2.run_instances(ImageId=ami, InstanceType="t3.small", MinCount=2, MaxCount=2, KeyName="bench",
                              SecurityGroupIds=[default_sg])
        ids = [i["InstanceId"] for i in r["Instances"]]
        insts = []
        for iid in ids:
            while True:
                i = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
                if i["State"]["Name"] == "running":
                    break
                time.sleep(0.2)
            insts.append(i)
        a, b = insts
        for i in insts:
            wait_ssh(i["PublicIpAddress"], pem, timeout=180)

        # Rule change to enforcement.
        perm = [{"IpProtocol": "tcp", "FromPort": PROBE_PORT, "ToPort": PROBE_PORT, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        enforce, api_authorize, api_revoke = [], [], []
        for n in range(args.changes):
            prober = subprocess.Popen(["ip", "netns", "exec", OUTSIDE_NS, "python3", "-c", PROBER, b["PublicIpAddress"], str(PROBE_PORT), "10"],
                                      stdout=subprocess.PIPE, text=True)
            assert prober.stdout.readline().strip() == "ready"
            time.sleep(0.2)  # let it fail a few times first: the port must start closed
            t0 = time.time()
            ec2.authorize_security_group_ingress(GroupId=default_sg, IpPermissions=perm)
            api_authorize.append(time.time() - t0)
            line = prober.stdout.readline().strip()
            prober.wait()
            if line == "timeout":
                raise RuntimeError("an authorized port never became reachable")
            enforce.append(float(line) - t0)
            t1 = time.time()
            ec2.revoke_security_group_ingress(GroupId=default_sg, IpPermissions=perm)
            api_revoke.append(time.time() - t1)
            print(f"  change {n + 1}: reachable after {enforce[-1] * 1000:.1f} ms (authorize call {api_authorize[-1] * 1000:.1f} ms, "
                  f"revoke call {api_revoke[-1] * 1000:.1f} ms)", flush=True)
        results["enforce"], results["api_authorize"], results["api_revoke"] = enforce, api_authorize, api_revoke

        # Throughput.
        iperf = {}
        for i in insts:
            iperf[i["InstanceId"]] = install_iperf(i["PublicIpAddress"], pem)
        ec2.authorize_security_group_ingress(GroupId=default_sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5201, "ToPort": 5201, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        ssh(b["PublicIpAddress"], pem, f"{iperf[b['InstanceId']]} -s -D")
        time.sleep(1)
        vm_to_vm = ssh(a["PublicIpAddress"], pem, f"{iperf[a['InstanceId']]} -c {b['PrivateIpAddress']} -t {args.seconds} -J",
                       timeout=args.seconds + 60)
        results["instance_to_instance_bps"] = bits_per_second(vm_to_vm.stdout)
        out_to_vm = subprocess.run(["ip", "netns", "exec", OUTSIDE_NS, "iperf3", "-c", b["PublicIpAddress"], "-t", str(args.seconds), "-J"],
                                   capture_output=True, text=True, timeout=args.seconds + 60)
        results["outside_to_instance_bps"] = bits_per_second(out_to_vm.stdout)
        server = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", "5299", "-1"], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        loop = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", "5299", "-t", str(args.seconds), "-J"],
                              capture_output=True, text=True, timeout=args.seconds + 60)
        server.wait(timeout=30)
        results["host_loopback_bps"] = bits_per_second(loop.stdout)
        print(f"  iperf3: instance->instance {results['instance_to_instance_bps'] / 1e9:.3f} Gbit/s, "
              f"outside->instance {results['outside_to_instance_bps'] / 1e9:.3f} Gbit/s, "
              f"host loopback {results['host_loopback_bps'] / 1e9:.2f} Gbit/s", flush=True)
        ec2.terminate_instances(InstanceIds=ids)
    finally:
        s.stop()
        kill_vms(s)

    ms = lambda xs, p: pct(xs, p) * 1000  # noqa: E731
    loop_bps = results["host_loopback_bps"]
    lines = [
        f"# Network benchmark ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine()}; accelerator: {accel}",
        f"Command: `bench/run-net --changes {args.changes} --seconds {args.seconds}`",
        "",
        "Rule change to enforcement (AuthorizeSecurityGroupIngress on a running minimal instance's group): from the request",
        "to the sending of the first TCP connection attempt that got through; attempts leave the strato-outside namespace",
        "every 5 ms, which bounds the resolution:",
        "",
        "| | n | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        f"| request to first probe through | {len(results['enforce'])} | {ms(results['enforce'], .5):.1f} | {ms(results['enforce'], .99):.1f} | {max(results['enforce']) * 1000:.1f} |",
        f"| AuthorizeSecurityGroupIngress call | {len(results['api_authorize'])} | {ms(results['api_authorize'], .5):.1f} | {ms(results['api_authorize'], .99):.1f} | {max(results['api_authorize']) * 1000:.1f} |",
        f"| RevokeSecurityGroupIngress call (rules swapped before it returns) | {len(results['api_revoke'])} | {ms(results['api_revoke'], .5):.1f} | {ms(results['api_revoke'], .99):.1f} | {max(results['api_revoke']) * 1000:.1f} |",
        "",
        f"TCP throughput, iperf3, {args.seconds} s, one stream (t3.small instances, 2 vCPUs each):",
        "",
        "| path | Gbit/s | ratio to host loopback |",
        "|---|---:|---:|",
        f"| host loopback (physical reference) | {loop_bps / 1e9:.2f} | 1 |",
        f"| instance to instance, same VPC | {results['instance_to_instance_bps'] / 1e9:.3f} | {results['instance_to_instance_bps'] / loop_bps:.4f} |",
        f"| outside to instance, public address | {results['outside_to_instance_bps'] / 1e9:.3f} | {results['outside_to_instance_bps'] / loop_bps:.4f} |",
    ]
    write_report(args.out, "net-latest.md", lines, results, "Raw results (seconds; bits per second):", 22)


if __name__ == "__main__":
    main()
