"""Real instances: QEMU VMs booted from the minimal image, reached over SSH
from the `strato-outside` namespace. Every packet stays inside namespaces
Strato made."""
import os
import shutil
import subprocess
import time

import pytest

from helpers import expect, wait_state
from strato_harness import (IMAGES, Strato, ensure_image, kill_vms, open_ssh, qemu_pids, ssh, taps,
                            vm_config, wait_ssh)

REGION = "ap-northeast-2"


@pytest.fixture(scope="module")
def vm_strato():
    ensure_image("minimal")
    s = Strato(config=vm_config()).start()
    try:
        open_ssh(s.client(region=REGION))
        yield s
        # Leave nothing behind: no VM, no namespace.
        ec2 = s.client(region=REGION)
        ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] != "terminated"]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
            for iid in ids:
                wait_state(ec2, iid, "terminated", timeout=60)
    finally:
        s.stop()
        kill_vms(s)


def key(ec2, tmp_path, name):
    kp = ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    path = os.path.join(tmp_path, f"{name}.pem")
    with open(path, "w") as f:
        f.write(kp["KeyMaterial"] + "\n")
    os.chmod(path, 0o600)
    return path


def minimal(ec2):
    return ec2.describe_images(Owners=["strato"], Filters=[{"Name": "name", "Values": ["*minimal*"]}])["Images"][0]["ImageId"]


def public_ip(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PublicIpAddress"]


def test_minimal_instance_end_to_end(vm_strato, tmp_path):
    ec2 = vm_strato.client(region=REGION)
    pem = key(ec2, tmp_path, "vm-key")
    sg = ec2.create_security_group(GroupName="vm-ssh", Description="ssh")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
    user_data = "#!/bin/sh\necho made-by-user-data > /home/ec2-user/from-user-data\n"
    r = ec2.run_instances(ImageId=minimal(ec2), InstanceType="t2.micro", MinCount=1, MaxCount=1, KeyName="vm-key",
                          SecurityGroupIds=[sg], SubnetId=subnet, UserData=user_data)
    iid = r["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running", timeout=60)
    ip = public_ip(ec2, iid)
    # SSH in with the private key CreateKeyPair returned and run a command.
    out = wait_ssh(ip, pem, "id -un; hostname")
    assert out.split()[0] == "ec2-user"
    assert out.split()[1] == r["Instances"][0]["PrivateDnsName"]
    # The user data ran (it may finish a moment after SSH is up).
    deadline = time.time() + 30
    while time.time() < deadline:
        p = ssh(ip, pem, "cat /home/ec2-user/from-user-data")
        if p.returncode == 0:
            break
        time.sleep(0.5)
    assert p.stdout.strip() == "made-by-user-data"
    # The console shows the kernel booting.
    console = ec2.get_console_output(InstanceId=iid)["Output"]
    assert "Linux version" in console and "strato-minimal" in console
    # A file written survives stop and start.
    assert ssh(ip, pem, "echo kept-across-stop > ~/note && sync").returncode == 0
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped", timeout=60)
    assert not [p for p in qemu_pids() if f"strato-{iid}" in open(f"/proc/{p}/cmdline").read()]
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "running", timeout=60)
    ip = public_ip(ec2, iid)
    assert wait_ssh(ip, pem, "cat ~/note").strip() == "kept-across-stop"
    # Reboot: the machine comes back (a new kernel boot id) with the same disk.
    before = wait_ssh(ip, pem, "cat /proc/sys/kernel/random/boot_id").strip()
    ec2.reboot_instances(InstanceIds=[iid])
    deadline = time.time() + 90
    after = None
    while time.time() < deadline:
        p = ssh(ip, pem, "cat /proc/sys/kernel/random/boot_id ~/note")
        if p.returncode == 0 and p.stdout.split()[0] != before:
            after = p.stdout.split()
            break
        time.sleep(0.5)
    assert after and after[1] == "kept-across-stop", \
        "the instance rebooted and kept its disk; console:\n" + ec2.get_console_output(InstanceId=iid, Latest=True).get("Output", "")[-4000:]
    # Terminate: no QEMU process, tap device or overlay file is left.
    instance_dir = os.path.join(vm_strato.data_dir, "instances", iid)
    assert os.path.exists(os.path.join(instance_dir, "root.qcow2"))
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated", timeout=60)
    assert not any(f"strato-{iid}" in open(f"/proc/{p}/cmdline").read() for p in qemu_pids())
    assert not os.path.exists(instance_dir)
    assert not [t for t in taps() if t == "t" + iid[2:16]]


def imds(ip, pem, path, token=None, method="GET", headers=()):
    """An HTTP request to the metadata service made from inside the guest."""
    lines = [f"{method} {path} HTTP/1.0", "Host: 169.254.169.254"]
    if token:
        lines.append(f"X-aws-ec2-metadata-token: {token}")
    lines += list(headers)
    req = "\\r\\n".join(lines) + "\\r\\n\\r\\n"
    p = ssh(ip, pem, f"printf '{req}' | nc -w 5 169.254.169.254 80")
    status = int(p.stdout.split()[1]) if p.stdout.startswith("HTTP/") else None
    # (subprocess text mode has turned the CRLFs into newlines)
    body = p.stdout.split("\n\n", 1)[1] if "\n\n" in p.stdout else ""
    return status, body


def test_instance_metadata_from_inside_guests(vm_strato, tmp_path):
    ec2 = vm_strato.client(region=REGION)
    pem = key(ec2, tmp_path, "imds-key")
    ids = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=minimal(ec2), InstanceType="t2.micro", MinCount=2, MaxCount=2, KeyName="imds-key",
        MetadataOptions={"HttpTokens": "required"})["Instances"]]
    for iid in ids:
        wait_state(ec2, iid, "running", timeout=60)
    a, b = (public_ip(ec2, i) for i in ids)
    wait_ssh(a, pem)
    wait_ssh(b, pem)
    # Tokens are required: a plain GET is refused.
    assert imds(a, pem, "/latest/meta-data/instance-id")[0] == 401
    status, token_a = imds(a, pem, "/latest/api/token", method="PUT", headers=["X-aws-ec2-metadata-token-ttl-seconds: 300"])
    assert status == 200 and token_a
    assert imds(a, pem, "/latest/meta-data/instance-id", token=token_a) == (200, ids[0])
    # Each instance sees only itself, whatever it asks.
    status, token_b = imds(b, pem, "/latest/api/token", method="PUT", headers=["X-aws-ec2-metadata-token-ttl-seconds: 300"])
    assert imds(b, pem, "/latest/meta-data/instance-id", token=token_b) == (200, ids[1])
    # A token from one instance is worthless on another.
    assert imds(b, pem, "/latest/meta-data/instance-id", token=token_a)[0] == 401
    # A token request through a proxy is refused.
    assert imds(a, pem, "/latest/api/token", method="PUT",
                headers=["X-aws-ec2-metadata-token-ttl-seconds: 300", "X-Forwarded-For: 10.0.0.1"])[0] == 403
    # Tokens expire.
    status, short = imds(a, pem, "/latest/api/token", method="PUT", headers=["X-aws-ec2-metadata-token-ttl-seconds: 5"])
    assert status == 200
    assert imds(a, pem, "/latest/meta-data/instance-id", token=short)[0] == 200
    time.sleep(6)
    assert imds(a, pem, "/latest/meta-data/instance-id", token=short)[0] == 401
    # Another instance's metadata port cannot be reached directly either.
    p = ssh(a, pem, "for port in 20000 20001 20002 20003; do printf 'GET /latest/meta-data/instance-id HTTP/1.0\\r\\n\\r\\n' | nc -w 2 169.254.169.254 $port; done")
    assert ids[1] not in p.stdout
    # What the service says about the instance.
    assert imds(a, pem, "/latest/meta-data/public-keys/0/openssh-key", token=token_a)[1].startswith("ssh-ed25519 ")
    assert imds(a, pem, "/latest/meta-data/placement/availability-zone", token=token_a)[1].startswith(REGION)
    # ModifyInstanceMetadataOptions takes effect at once.
    ec2.modify_instance_metadata_options(InstanceId=ids[0], HttpTokens="optional")
    assert imds(a, pem, "/latest/meta-data/instance-id") == (200, ids[0])
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_state(ec2, iid, "terminated", timeout=60)


def test_capacity_is_enforced(vm_strato):
    ec2 = vm_strato.client(region=REGION)
    expect("InsufficientInstanceCapacity", ec2.run_instances, ImageId=minimal(ec2), InstanceType="p4d.24xlarge",
           MinCount=1, MaxCount=1)
    assert not [i for r in ec2.describe_instances(Filters=[{"Name": "instance-type", "Values": ["p4d.24xlarge"]}])["Reservations"]
                for i in r["Instances"]]


def test_image_built_while_serving_becomes_launchable(tmp_path):
    """`strato image build` runs in its own process; a server that is already
    up must launch the result without a restart."""
    ensure_image("minimal")
    images = tmp_path / "images"
    images.mkdir()
    s = Strato(config=vm_config(images=images)).start()
    try:
        ec2 = s.client(region=REGION)
        ami = minimal(ec2)
        assert ec2.describe_images(ImageIds=[ami])["Images"][0]["State"] == "pending"
        expect("InvalidAMIID.Unavailable", ec2.run_instances, ImageId=ami, InstanceType="t2.micro", MinCount=1, MaxCount=1)
        # What a concurrent build leaves behind: the finished image directory.
        shutil.copytree(os.path.join(IMAGES, "minimal"), images / "minimal")
        iid = ec2.run_instances(ImageId=ami, InstanceType="t2.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        assert ec2.describe_images(ImageIds=[ami])["Images"][0]["State"] == "available"
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated", timeout=60)
    finally:
        s.stop()
        kill_vms(s)


def test_kill_9_in_the_middle_of_launches(vm_strato, tmp_path):
    ec2 = vm_strato.client(region=REGION)
    pem = key(ec2, tmp_path, "crash-key")
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=minimal(ec2), InstanceType="t2.micro", MinCount=3, MaxCount=3,
                                                      KeyName="crash-key")["Instances"]]
    vm_strato.kill9()
    # Something the control plane never knew about, as a crash could leave.
    orphan = os.path.join(vm_strato.data_dir, "instances", "i-0000000000000dead")
    os.makedirs(orphan, exist_ok=True)
    vm_strato.restart()
    ec2 = vm_strato.client(region=REGION)
    for iid in ids:
        wait_state(ec2, iid, "running", timeout=90)
    assert not os.path.exists(orphan)
    wait_ssh(public_ip(ec2, ids[0]), pem)
    running = [p for p in qemu_pids() if any(f"strato-{i}" in open(f"/proc/{p}/cmdline").read() for i in ids)]
    assert len(running) == 3, "one VM per instance, none started twice"
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_state(ec2, iid, "terminated", timeout=60)
    assert not [p for p in qemu_pids() if any(f"strato-{i}" in open(f"/proc/{p}/cmdline").read() for i in ids)]
    assert not [t for t in taps() if any(t == "t" + i[2:16] for i in ids)]


def test_create_image_of_a_real_instance(vm_strato, tmp_path):
    """An image made from a stopped instance carries its disk: an instance
    launched from it finds the file the first one wrote."""
    ec2 = vm_strato.client(region=REGION)
    pem = key(ec2, tmp_path, "ami-key")
    iid = ec2.run_instances(ImageId=minimal(ec2), InstanceType="t2.micro", MinCount=1, MaxCount=1,
                            KeyName="ami-key")["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running", timeout=60)
    assert wait_ssh(public_ip(ec2, iid), pem, "echo baked-in > ~/baked && sync && echo ok").strip() == "ok"
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped", timeout=60)
    ami = ec2.create_image(InstanceId=iid, Name="baked-minimal")["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    child = ec2.run_instances(ImageId=ami, InstanceType="t2.micro", MinCount=1, MaxCount=1,
                              KeyName="ami-key")["Instances"][0]["InstanceId"]
    wait_state(ec2, child, "running", timeout=60)
    assert wait_ssh(public_ip(ec2, child), pem, "cat ~/baked").strip() == "baked-in"
    ec2.terminate_instances(InstanceIds=[iid, child])
    for i in (iid, child):
        wait_state(ec2, i, "terminated", timeout=60)
    ec2.deregister_image(ImageId=ami)


def test_debian_instance_runs_cloud_init(vm_strato, tmp_path):
    """The Debian image is a full distribution: systemd, OpenSSH, and
    cloud-init reading user data and keys from the metadata service."""
    ensure_image("debian-12")
    ec2 = vm_strato.client(region=REGION)
    deb = ec2.describe_images(Owners=["strato"], Filters=[{"Name": "name", "Values": ["debian-12*"]}])["Images"][0]
    pem = key(ec2, tmp_path, "deb-key")
    user_data = ("#cloud-config\n"
                 "write_files:\n"
                 "  - path: /etc/strato-test\n"
                 "    content: written-by-cloud-init\n"
                 "runcmd:\n"
                 "  - [sh, -c, 'echo ran > /run/strato-runcmd']\n")
    iid = ec2.run_instances(ImageId=deb["ImageId"], InstanceType="t3.small", MinCount=1, MaxCount=1,
                            KeyName="deb-key", UserData=user_data)["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running", timeout=60)
    ip = public_ip(ec2, iid)
    try:
        wait_ssh(ip, pem, user="admin", timeout=300)
    except AssertionError:
        print(ec2.get_console_output(InstanceId=iid, Latest=True).get("Output", "")[-6000:])
        raise
    out = ssh(ip, pem, "cloud-init status --wait >/dev/null; cat /etc/strato-test; echo; cat /run/strato-runcmd; "
                       "cloud-init query instance_id; cloud-init query platform", user="admin", timeout=120)
    assert out.stdout.split() == ["written-by-cloud-init", "ran", iid, "ec2"], out.stdout + out.stderr
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated", timeout=90)


def test_register_image_from_an_imported_disk(vm_strato):
    """RegisterImage takes a disk file the operator put in the import
    directory; the kernel comes out of the disk's own /boot."""
    ensure_image("debian-12")
    ec2 = vm_strato.client(region=REGION)
    import_dir = os.path.join(vm_strato.data_dir, "import")
    os.makedirs(import_dir, exist_ok=True)
    subprocess.run(["cp", "--sparse=always", os.path.join(IMAGES, "debian-12", "root.img"),
                    os.path.join(import_dir, "my-disk.img")], check=True)
    # Nothing outside the import directory can be named.
    expect("InvalidParameterValue", ec2.register_image, Name="sneaky", ImageLocation="../../../../etc/shadow")
    expect("InvalidParameterValue", ec2.register_image, Name="sneaky", ImageLocation="/etc/shadow")
    expect("InvalidParameterValue", ec2.register_image, Name="sneaky", ImageLocation="no-such.img")
    assert ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["sneaky"]}])["Images"] == []
    ami = ec2.register_image(Name="imported-debian", ImageLocation="my-disk.img", Architecture="x86_64",
                             RootDeviceName="/dev/xvda", VirtualizationType="hvm")["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    img = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert img["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 2, "the image is as large as the disk"
    expect("InvalidBlockDeviceMapping", ec2.run_instances, ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1,
           BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 1}}])
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1,
                            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 3}}])["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running", timeout=60)
    # The imported disk, grown to 3 GiB, boots as the instance's root: its
    # systemd starts cloud-init, which finds the metadata service.
    deadline = time.time() + 240
    console = ""
    while time.time() < deadline and "Datasource DataSourceEc2" not in console:
        time.sleep(2)
        console = ec2.get_console_output(InstanceId=iid, Latest=True).get("Output", "")
    assert "virtio_blk virtio0: [vda] 6291456 512-byte logical blocks" in console
    assert "Datasource DataSourceEc2" in console, console[-3000:]
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated", timeout=90)
    ec2.deregister_image(ImageId=ami)
