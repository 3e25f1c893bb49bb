"""[network] host_route: the host itself reaches instances' public addresses
through a link into the outside namespace. Every packet still stays on this
machine: the test checks the route before it sends anything."""
import os
import subprocess
import time

from helpers import wait_state
from strato_harness import Strato, ensure_image, kill_vms, open_ssh, vm_config

REGION = "sa-east-1"


def route_dev(address):
    return subprocess.run(["ip", "route", "get", address], capture_output=True, text=True).stdout


def test_host_route_reaches_public_addresses(tmp_path):
    ensure_image("minimal")
    s = Strato(config=vm_config(extra="[network]\nhost_route = true\n")).start()
    try:
        ec2 = s.client(region=REGION)
        open_ssh(ec2)
        pem = os.path.join(tmp_path, "k.pem")
        with open(pem, "w") as f:
            f.write(ec2.create_key_pair(KeyName="k", KeyType="ed25519")["KeyMaterial"] + "\n")
        os.chmod(pem, 0o600)
        ami = ec2.describe_images(Owners=["strato"], Filters=[{"Name": "name", "Values": ["*minimal*"]}])["Images"][0]["ImageId"]
        iid = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1, KeyName="k")["Instances"][0]["InstanceId"]
        public = wait_state(ec2, iid, "running", timeout=120)["PublicIpAddress"]
        # The guard: the address must lead into Strato's namespace, or nothing is sent.
        assert "dev strato-host" in route_dev(public), route_dev(public)
        out = ""
        for _ in range(60):
            r = subprocess.run(["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=2",
                                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-i", pem, f"ec2-user@{public}", "hostname"],
                               capture_output=True, text=True, timeout=20)
            out = r.stdout.strip()
            if r.returncode == 0:
                break
        assert out.startswith("ip-172-31-"), out
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated", timeout=60)
    finally:
        s.stop()
        kill_vms(s)
    # With the outside namespace gone, the link and the host's route go too
    # (the kernel dismantles a deleted namespace's devices in the background).
    deadline = time.time() + 20
    while subprocess.run(["ip", "link", "show", "strato-host"], capture_output=True).returncode == 0 and time.time() < deadline:
        time.sleep(0.2)
    assert subprocess.run(["ip", "link", "show", "strato-host"], capture_output=True).returncode != 0
    assert "strato-host" not in subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
