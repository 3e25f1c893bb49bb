"""What the benchmarks share: the machine line of a report, percentiles, and
a server with a key pair and the minimal image ready for real instances."""
import json
import os
import platform
import re
import tempfile


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        info = ""
    m = re.search(r"model name\s*:\s*(.+)", info)
    cpu = m.group(1) if m else "unknown"
    # Whether KVM could be used at all: the CPU flags for hardware virtualisation.
    virt = "vmx/svm present" if re.search(r"\b(vmx|svm)\b", info) else "no vmx/svm"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}, {virt}), {mem:.0f} GiB, {platform.platform()}"


def pct(xs, p):
    """The p-th quantile (0..1) of xs, interpolated between neighbours."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def bench_server(cfg, region):
    """Starts `strato serve` with `cfg` (the QEMU runtime) and returns it with
    its accelerator, a client of the development account with SSH open in the
    default group, the path of a fresh private key ("bench") and the minimal
    image's id. Needs tests/e2e on sys.path (the harness)."""
    from strato_harness import Strato, ensure_image, open_ssh

    ensure_image("minimal")
    s = Strato(config=cfg).start()
    accel = re.search(r"accel=(\w+)", s.log()).group(1)
    ec2 = s.client(region=region, account=("123456789012", "test", "test"))
    default_sg = open_ssh(ec2)
    pem = os.path.join(tempfile.mkdtemp(), "bench.pem")
    with open(pem, "w") as f:
        f.write(ec2.create_key_pair(KeyName="bench", KeyType="ed25519")["KeyMaterial"] + "\n")
    os.chmod(pem, 0o600)
    ami = ec2.describe_images(Owners=["strato"], Filters=[{"Name": "name", "Values": ["*minimal*"]}])["Images"][0]["ImageId"]
    return s, accel, ec2, default_sg, pem, ami


def write_report(out_dir, name, lines, raw, raw_caption, shown):
    """Writes a report (its lines, then the raw results as JSON under
    `raw_caption`) to out_dir/name, and prints its first `shown` lines."""
    lines = lines + ["", raw_caption, "", "```json", json.dumps(raw, indent=1), "```", ""]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines[:shown]))
    print(f"\nwritten to {os.path.relpath(path)}")
