"""Accounts and regions see only their own resources; state survives restarts."""
import json
import subprocess

from helpers import expect, launch, wait_state
from strato_harness import ALICE, BINARY, BOB


def test_accounts_are_isolated(strato):
    a = strato.client(ALICE, region="ap-south-1")
    b = strato.client(BOB, region="ap-south-1")
    vpc = a.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    a.create_key_pair(KeyName="alice-key", KeyType="ed25519")
    iid = launch(a)["Instances"][0]["InstanceId"]
    assert vpc not in [v["VpcId"] for v in b.describe_vpcs()["Vpcs"]]
    assert b.describe_key_pairs()["KeyPairs"] == []
    assert b.describe_instances()["Reservations"] == []
    expect("InvalidVpcID.NotFound", b.describe_vpcs, VpcIds=[vpc])
    expect("InvalidInstanceID.NotFound", b.terminate_instances, InstanceIds=[iid])
    expect("InvalidVpcID.NotFound", b.create_tags, Resources=[vpc], Tags=[{"Key": "x", "Value": "y"}])
    # Each account has its own default VPC.
    da = a.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    db = b.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    assert da != db
    # Public images are visible to both.
    assert a.describe_images(Owners=["strato"])["Images"] == b.describe_images(Owners=["strato"])["Images"]
    a.terminate_instances(InstanceIds=[iid])


def test_regions_are_isolated(strato):
    x = strato.client(ALICE, region="ap-southeast-2")
    y = strato.client(ALICE, region="ap-northeast-1")
    sg = x.create_security_group(GroupName="regional", Description="r")["GroupId"]
    assert "regional" not in [g["GroupName"] for g in y.describe_security_groups()["SecurityGroups"]]
    expect("InvalidGroup.NotFound", y.describe_security_groups, GroupIds=[sg])
    y.create_security_group(GroupName="regional", Description="same name, other region")
    zx = {s["AvailabilityZone"] for s in x.describe_subnets()["Subnets"]}
    assert zx == {"ap-southeast-2a", "ap-southeast-2b", "ap-southeast-2c"}


def test_state_survives_restart(fresh_strato):
    s = fresh_strato()
    ec2 = s.client(region="sa-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "k", "Value": "v"}]}])["Vpc"]["VpcId"]
    key = ec2.create_key_pair(KeyName="persist", KeyType="ed25519")["KeyFingerprint"]
    running = launch(ec2)["Instances"][0]["InstanceId"]
    stopped = launch(ec2)["Instances"][0]["InstanceId"]
    wait_state(ec2, running, "running")
    wait_state(ec2, stopped, "running")
    ec2.stop_instances(InstanceIds=[stopped])
    wait_state(ec2, stopped, "stopped")
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=running)
    before = ec2.describe_instances()["Reservations"]
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    s.restart()
    ec2 = s.client(region="sa-east-1")
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"] == [{"Key": "k", "Value": "v"}]
    assert ec2.describe_key_pairs(KeyNames=["persist"])["KeyPairs"][0]["KeyFingerprint"] == key
    # The default network is not made twice.
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]] == [default_vpc]
    # The running instance is brought back to running; the stopped one stays stopped.
    assert wait_state(ec2, running, "running")["PublicIpAddress"] == eip["PublicIp"]
    assert wait_state(ec2, stopped, "stopped")
    after = ec2.describe_instances()["Reservations"]
    assert [i["InstanceId"] for r in after for i in r["Instances"]] == [i["InstanceId"] for r in before for i in r["Instances"]]
    assert ec2.describe_addresses()["Addresses"][0]["InstanceId"] == running


def test_kill_9_during_lifecycle_settles(fresh_strato):
    s = fresh_strato()
    ec2 = s.client(region="us-east-2")
    ids = [i["InstanceId"] for i in launch(ec2, MinCount=3, MaxCount=3)["Instances"]]
    s.kill9()
    s.restart()
    ec2 = s.client(region="us-east-2")
    for iid in ids:
        wait_state(ec2, iid, "running")
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_state(ec2, iid, "terminated")


def test_admin_accounts(fresh_strato, tmp_path):
    s = fresh_strato(config='[runtime]\nkind = "simulated"\n')
    out = subprocess.run([BINARY, "admin", "create-account", "--account-id", "333333333333", "--data-dir", s.data_dir],
                         capture_output=True, text=True, check=True).stdout
    k = json.loads(out)
    assert k["AccountId"] == "333333333333" and k["AccessKeyId"].startswith("AKIA") and len(k["SecretAccessKey"]) == 40
    carol = (k["AccountId"], k["AccessKeyId"], k["SecretAccessKey"])
    ec2 = s.client(carol, region="eu-south-1")
    assert ec2.describe_vpcs()["Vpcs"][0]["OwnerId"] == "333333333333"
    listed = subprocess.run([BINARY, "admin", "list-access-keys", "--data-dir", s.data_dir], capture_output=True, text=True, check=True).stdout
    assert k["AccessKeyId"] in listed
    dup = subprocess.run([BINARY, "admin", "create-account", "--account-id", "333333333333", "--data-dir", s.data_dir], capture_output=True, text=True)
    assert dup.returncode != 0 and "already exists" in dup.stderr
    subprocess.run([BINARY, "admin", "delete-access-key", "--access-key-id", k["AccessKeyId"], "--data-dir", s.data_dir], check=True, capture_output=True)
    # A running server keeps keys it has read for up to two seconds.
    import time
    time.sleep(2.5)
    expect("AuthFailure", ec2.describe_vpcs)
