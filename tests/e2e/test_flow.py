"""The whole user flow in ap-northeast-2, with boto3 and the development key,
exactly as the README shows it, on real VMs."""
import os

import boto3

from strato_harness import Strato, ensure_image, remove_namespaces, vm_config, wait_ssh

REGION = "ap-northeast-2"


def test_boto3_flow_with_development_credentials(fresh_strato, tmp_path):
    ensure_image("minimal")
    s = fresh_strato(config=vm_config(accounts=False))
    assert "development key" in s.log()
    assert "SIMULATED" not in s.log()
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=s.endpoint,
                       aws_access_key_id="test", aws_secret_access_key="test")
    key = ec2.create_key_pair(KeyName="my-key-pair")
    assert key["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    pem = os.path.join(tmp_path, "my-key-pair.pem")
    with open(pem, "w") as f:
        f.write(key["KeyMaterial"] + "\n")
    os.chmod(pem, 0o600)
    sg = ec2.create_security_group(GroupName="ssh", Description="ssh from anywhere")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
    ami = ec2.describe_images(Owners=["strato"], Filters=[{"Name": "name", "Values": ["*minimal*"]}])["Images"][0]["ImageId"]
    r = ec2.run_instances(ImageId=ami, InstanceType="t2.micro", MinCount=1, MaxCount=1,
                          KeyName="my-key-pair", SecurityGroupIds=[sg], SubnetId=subnet)
    iid = r["Instances"][0]["InstanceId"]
    assert r["OwnerId"] == "123456789012"
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    public = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    # The RSA key CreateKeyPair returned opens the instance.
    assert wait_ssh(public, pem, "echo hello from $(hostname)").startswith("hello from ip-")
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    eip = ec2.allocate_address(Domain="vpc")
    assert eip["AllocationId"].startswith("eipalloc-") and eip["PublicIp"]
    s.stop()
    remove_namespaces()


def test_non_loopback_without_credentials_refuses_to_start():
    s = Strato(config=None, listen="0.0.0.0:0")
    try:
        s.start(timeout=10)
        raise AssertionError("strato must refuse to listen on 0.0.0.0 without credentials")
    except RuntimeError as e:
        assert "refusing to listen" in str(e) and "[[accounts]]" in str(e)
