"""The AWS CLI, unchanged but for the endpoint and credentials."""
import json
import os
import subprocess
import sys

from strato_harness import ALICE

REGION = "ap-southeast-1"


def aws(strato, *args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ALICE[1], AWS_SECRET_ACCESS_KEY=ALICE[2], AWS_DEFAULT_REGION=REGION,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    env.pop("AWS_SESSION_TOKEN", None)
    exe = os.path.join(os.path.dirname(sys.executable), "aws")
    p = subprocess.run([exe, "--endpoint-url", strato.endpoint, "--output", "json", "ec2", *args],
                       capture_output=True, text=True, env=env)
    if check:
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) if p.stdout.strip() else {}
    return p


def test_cli_flow(strato):
    key = aws(strato, "create-key-pair", "--key-name", "cli-key", "--key-type", "ed25519")
    assert key["KeyName"] == "cli-key"
    sg = aws(strato, "create-security-group", "--group-name", "cli", "--description", "cli")["GroupId"]
    aws(strato, "authorize-security-group-ingress", "--group-id", sg, "--protocol", "tcp", "--port", "22", "--cidr", "0.0.0.0/0")
    subnet = aws(strato, "describe-subnets", "--filters", "Name=default-for-az,Values=true")["Subnets"][0]["SubnetId"]
    ami = aws(strato, "describe-images", "--owners", "strato", "--filters", "Name=name,Values=*minimal*")["Images"][0]["ImageId"]
    r = aws(strato, "run-instances", "--image-id", ami, "--instance-type", "t2.micro", "--count", "1",
            "--key-name", "cli-key", "--security-group-ids", sg, "--subnet-id", subnet,
            "--tag-specifications", "ResourceType=instance,Tags=[{Key=Name,Value=cli}]")
    iid = r["Instances"][0]["InstanceId"]
    aws(strato, "wait", "instance-running", "--instance-ids", iid)
    got = aws(strato, "describe-instances", "--filters", "Name=tag:Name,Values=cli")
    assert got["Reservations"][0]["Instances"][0]["InstanceId"] == iid
    aws(strato, "stop-instances", "--instance-ids", iid)
    aws(strato, "wait", "instance-stopped", "--instance-ids", iid)
    aws(strato, "start-instances", "--instance-ids", iid)
    aws(strato, "wait", "instance-running", "--instance-ids", iid)
    aws(strato, "terminate-instances", "--instance-ids", iid)
    aws(strato, "wait", "instance-terminated", "--instance-ids", iid)
    eip = aws(strato, "allocate-address", "--domain", "vpc")
    assert eip["Domain"] == "vpc"
    bad = aws(strato, "run-instances", "--image-id", "ami-12345678", "--count", "1", check=False)
    assert bad.returncode != 0 and "InvalidAMIID.NotFound" in bad.stderr
    dry = aws(strato, "create-vpc", "--cidr-block", "10.0.0.0/16", "--dry-run", check=False)
    assert dry.returncode != 0 and "DryRunOperation" in dry.stderr
