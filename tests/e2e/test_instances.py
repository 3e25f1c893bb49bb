"""Instances: launch, describe, lifecycle, attributes, console, idempotency."""
import base64

from helpers import default_subnet, expect, launch, minimal_image, wait_state

REGION = "eu-central-1"


def test_run_describe_and_the_instance_shape(strato):
    ec2 = strato.client(region=REGION)
    ec2.create_key_pair(KeyName="inst-key", KeyType="ed25519")
    sub = default_subnet(ec2, f"{REGION}b")
    r = launch(ec2, KeyName="inst-key", SubnetId=sub["SubnetId"], UserData="#!/bin/sh\necho hi\n",
               TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web-1"}]},
                                  {"ResourceType": "volume", "Tags": [{"Key": "disk", "Value": "root"}]}],
               MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2})
    assert r["ReservationId"].startswith("r-") and r["OwnerId"] == "111111111111"
    i = r["Instances"][0]
    iid = i["InstanceId"]
    assert i["State"] == {"Code": 0, "Name": "pending"}
    assert i["InstanceType"] == "t2.micro" and i["KeyName"] == "inst-key"
    assert i["Placement"]["AvailabilityZone"] == f"{REGION}b" and i["SubnetId"] == sub["SubnetId"]
    ip = i["PrivateIpAddress"]
    assert i["PrivateDnsName"] == f"ip-{ip.replace('.', '-')}.{REGION}.compute.internal"
    assert i["PublicIpAddress"].startswith("198.18.") or i["PublicIpAddress"].startswith("198.19.")
    assert i["SecurityGroups"][0]["GroupName"] == "default"
    assert i["Tags"] == [{"Key": "Name", "Value": "web-1"}]
    assert i["MetadataOptions"]["HttpTokens"] == "required" and i["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert i["BlockDeviceMappings"][0]["DeviceName"] == "/dev/xvda"
    assert i["NetworkInterfaces"][0]["PrivateIpAddress"] == ip
    running = wait_state(ec2, iid, "running")
    assert running["State"]["Code"] == 16
    vol = running["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vol]}])["Tags"]
    assert tags == [{"ResourceId": vol, "ResourceType": "volume", "Key": "disk", "Value": "root"}]
    ud = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(ud) == b"#!/bin/sh\necho hi\n"
    st = ec2.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]
    assert st["InstanceState"]["Name"] == "running" and st["InstanceStatus"]["Status"] == "ok"
    for name, value in [("instance-id", iid), ("instance-state-name", "running"), ("instance-type", "t2.micro"),
                        ("key-name", "inst-key"), ("private-ip-address", ip), ("availability-zone", f"{REGION}b"),
                        ("subnet-id", sub["SubnetId"]), ("vpc-id", sub["VpcId"]), ("tag:Name", "web-1"), ("tag-key", "Name"),
                        ("image-id", i["ImageId"])]:
        res = ec2.describe_instances(Filters=[{"Name": name, "Values": [value]}])["Reservations"]
        assert iid in [x["InstanceId"] for r in res for x in r["Instances"]], name
    assert ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["db-*"]}])["Reservations"] == []
    expect("InvalidParameterValue", ec2.describe_instances, Filters=[{"Name": "flavour", "Values": ["x"]}])
    ec2.terminate_instances(InstanceIds=[iid])


def test_launch_errors_leave_nothing_behind(strato):
    ec2 = strato.client(region=REGION)
    def ids():
        return sorted(i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"])
    before = ids()
    ami = minimal_image(ec2)
    expect("InvalidAMIID.NotFound", ec2.run_instances, ImageId="ami-12345678", MinCount=1, MaxCount=1)
    expect("InvalidAMIID.Malformed", ec2.run_instances, ImageId="ami-!", MinCount=1, MaxCount=1)
    expect("InvalidParameterValue", ec2.run_instances, ImageId=ami, InstanceType="t9.enormous", MinCount=1, MaxCount=1)
    expect("InvalidKeyPair.NotFound", ec2.run_instances, ImageId=ami, KeyName="nope", MinCount=1, MaxCount=1)
    expect("InvalidGroup.NotFound", ec2.run_instances, ImageId=ami, SecurityGroupIds=["sg-0123456789abcdef0"], MinCount=1, MaxCount=1)
    expect("InvalidSubnetID.NotFound", ec2.run_instances, ImageId=ami, SubnetId="subnet-0123456789abcdef0", MinCount=1, MaxCount=1)
    expect("InvalidParameterValue", ec2.run_instances, ImageId=ami, MinCount=3, MaxCount=2)
    expect("InvalidParameterValue", ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1, UserData="x" * 20000)
    expect("InvalidParameterValue", ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1,
           PrivateIpAddress="10.99.0.5")
    expect("InvalidBlockDeviceMapping", ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1,
           BlockDeviceMappings=[{"DeviceName": "/dev/xvdb", "Ebs": {}}])
    debian = ec2.describe_images(Filters=[{"Name": "name", "Values": ["debian-12*"]}])["Images"][0]["ImageId"]
    expect("InvalidBlockDeviceMapping", ec2.run_instances, ImageId=debian, MinCount=1, MaxCount=1,
           BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 4}}])
    expect("InvalidParameterValue", ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1,
           MetadataOptions={"HttpTokens": "sometimes"})
    expect("InvalidParameterValue", ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1,
           InstanceInitiatedShutdownBehavior="explode")
    # A group from another VPC does not fit the subnet.
    vpc = ec2.create_vpc(CidrBlock="10.4.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_security_group(GroupName="foreign", Description="f", VpcId=vpc)["GroupId"]
    expect("InvalidParameter", ec2.run_instances, ImageId=ami, SecurityGroupIds=[foreign], MinCount=1, MaxCount=1)
    ec2.delete_security_group(GroupId=foreign)
    ec2.delete_vpc(VpcId=vpc)
    assert ids() == before
    ips = ec2.describe_addresses()["Addresses"]
    assert ips == []


def test_block_devices_and_volume_size(strato):
    ec2 = strato.client(region=REGION)
    r = launch(ec2, BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 12, "DeleteOnTermination": False}},
                                         {"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 5}}])
    bdm = {b["DeviceName"]: b for b in r["Instances"][0]["BlockDeviceMappings"]}
    assert set(bdm) == {"/dev/xvda", "/dev/sdb"}
    assert bdm["/dev/xvda"]["Ebs"]["DeleteOnTermination"] is False
    iid = r["Instances"][0]["InstanceId"]
    expect("InvalidBlockDeviceMapping", launch, ec2, BlockDeviceMappings=[{"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 1}},
                                                                          {"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 1}}])
    ec2.terminate_instances(InstanceIds=[iid])


def test_lifecycle_and_illegal_transitions(strato):
    ec2 = strato.client(region=REGION)
    iid = launch(ec2)["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    # Starting a running instance is a no-op that reports it running.
    s = ec2.start_instances(InstanceIds=[iid])["StartingInstances"][0]
    assert s["CurrentState"]["Name"] == "running" and s["PreviousState"]["Name"] == "running"
    ec2.reboot_instances(InstanceIds=[iid])
    stop = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"][0]
    assert (stop["PreviousState"]["Name"], stop["CurrentState"]["Name"]) == ("running", "stopping")
    stopped = wait_state(ec2, iid, "stopped")
    assert stopped["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert "PublicIpAddress" not in stopped, "AWS releases an auto-assigned public IP at stop"
    expect("IncorrectInstanceState", ec2.reboot_instances, InstanceIds=[iid])
    # Instance type changes only while stopped.
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.small"})
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")["InstanceType"]["Value"] == "t3.small"
    ec2.start_instances(InstanceIds=[iid])
    running = wait_state(ec2, iid, "running")
    assert running["InstanceType"] == "t3.small" and running.get("PublicIpAddress")
    expect("IncorrectInstanceState", ec2.modify_instance_attribute, InstanceId=iid, InstanceType={"Value": "t3.micro"})
    # Termination protection.
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})
    expect("OperationNotPermitted", ec2.terminate_instances, InstanceIds=[iid])
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
    t = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
    assert (t["PreviousState"]["Name"], t["CurrentState"]["Name"]) == ("running", "shutting-down")
    wait_state(ec2, iid, "terminated")
    expect("IncorrectInstanceState", ec2.start_instances, InstanceIds=[iid])
    expect("IncorrectInstanceState", ec2.stop_instances, InstanceIds=[iid])
    again = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
    assert again["CurrentState"]["Name"] == "terminated"
    # Terminated instances stay visible for a while.
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"] == "terminated"
    expect("InvalidInstanceID.NotFound", ec2.stop_instances, InstanceIds=["i-0123456789abcdef0"])
    expect("InvalidInstanceID.NotFound", ec2.describe_instances, InstanceIds=[iid, "i-0123456789abcdef0"])


def test_force_stop_and_attributes(strato):
    ec2 = strato.client(region=REGION)
    iid = launch(ec2)["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    ec2.stop_instances(InstanceIds=[iid], Force=True)
    wait_state(ec2, iid, "stopped")
    ec2.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"new data"})
    got = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(got) == b"new data"
    ec2.modify_instance_attribute(InstanceId=iid, InstanceInitiatedShutdownBehavior={"Value": "terminate"})
    b = ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")
    assert b["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    g = ec2.describe_instance_attribute(InstanceId=iid, Attribute="groupSet")["Groups"]
    assert g[0]["GroupName"] == "default"
    new_group = ec2.create_security_group(GroupName="swap", Description="s")["GroupId"]
    ec2.modify_instance_attribute(InstanceId=iid, Groups=[new_group])
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="groupSet")["Groups"][0]["GroupId"] == new_group
    expect("InvalidParameterValue", ec2.describe_instance_attribute, InstanceId=iid, Attribute="mood")
    expect("InvalidParameterCombination", ec2.modify_instance_attribute, InstanceId=iid,
           SourceDestCheck={"Value": False}, DisableApiStop={"Value": True})
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    ec2.delete_security_group(GroupId=new_group)


def test_console_output(strato):
    ec2 = strato.client(region=REGION)
    iid = launch(ec2)["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    out = ec2.get_console_output(InstanceId=iid)
    assert out["InstanceId"] == iid and "Timestamp" in out
    assert "booting" in out["Output"]
    ec2.terminate_instances(InstanceIds=[iid])


def test_min_max_count_and_reservations(strato):
    ec2 = strato.client(region=REGION)
    r = launch(ec2, MinCount=2, MaxCount=3)
    assert len(r["Instances"]) == 3
    assert sorted(i["AmiLaunchIndex"] for i in r["Instances"]) == [0, 1, 2]
    ids = [i["InstanceId"] for i in r["Instances"]]
    assert len({i["PrivateIpAddress"] for i in r["Instances"]}) == 3
    res = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    assert len(res) == 1 and res[0]["ReservationId"] == r["ReservationId"]
    # Pagination over instances.
    page = ec2.describe_instances(Filters=[{"Name": "reservation-id", "Values": [r["ReservationId"]]}], MaxResults=5)
    assert sum(len(x["Instances"]) for x in page["Reservations"]) == 3
    expect("InvalidParameterCombination", ec2.describe_instances, InstanceIds=ids, MaxResults=5)
    ec2.terminate_instances(InstanceIds=ids)


def test_client_token_idempotency(strato):
    ec2 = strato.client(region=REGION)
    ami = minimal_image(ec2)
    a = ec2.run_instances(ImageId=ami, InstanceType="t2.micro", MinCount=1, MaxCount=1, ClientToken="token-1")
    b = ec2.run_instances(ImageId=ami, InstanceType="t2.micro", MinCount=1, MaxCount=1, ClientToken="token-1")
    assert a["ReservationId"] == b["ReservationId"]
    assert [i["InstanceId"] for i in a["Instances"]] == [i["InstanceId"] for i in b["Instances"]]
    assert b["Instances"][0]["ClientToken"] == "token-1"
    expect("IdempotentParameterMismatch", ec2.run_instances, ImageId=ami, InstanceType="t2.small", MinCount=1, MaxCount=1, ClientToken="token-1")
    count = sum(len(r["Instances"]) for r in ec2.describe_instances(Filters=[{"Name": "client-token", "Values": ["token-1"]}])["Reservations"])
    assert count == 1
    ec2.terminate_instances(InstanceIds=[a["Instances"][0]["InstanceId"]])


def test_specific_private_ip(strato):
    ec2 = strato.client(region=REGION)
    sub = default_subnet(ec2, f"{REGION}c")
    r = launch(ec2, SubnetId=sub["SubnetId"], PrivateIpAddress="172.31.40.40")
    assert r["Instances"][0]["PrivateIpAddress"] == "172.31.40.40"
    expect("InvalidIPAddress.InUse", launch, ec2, SubnetId=sub["SubnetId"], PrivateIpAddress="172.31.40.40")
    expect("InvalidParameterValue", launch, ec2, SubnetId=sub["SubnetId"], PrivateIpAddress="172.31.32.1")
    ec2.terminate_instances(InstanceIds=[r["Instances"][0]["InstanceId"]])
