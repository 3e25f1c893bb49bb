"""Elastic IPs (state; routing comes with networking)."""
from helpers import expect, launch, wait_state

REGION = "eu-north-1"


def test_allocate_associate_move_release(strato):
    ec2 = strato.client(region=REGION)
    a = ec2.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": [{"Key": "use", "Value": "web"}]}])
    assert a["AllocationId"].startswith("eipalloc-") and a["Domain"] == "vpc" and a["PublicIp"]
    one = launch(ec2)["Instances"][0]["InstanceId"]
    two = launch(ec2)["Instances"][0]["InstanceId"]
    wait_state(ec2, one, "running")
    wait_state(ec2, two, "running")
    assoc = ec2.associate_address(AllocationId=a["AllocationId"], InstanceId=one)["AssociationId"]
    assert assoc.startswith("eipassoc-")
    inst = ec2.describe_instances(InstanceIds=[one])["Reservations"][0]["Instances"][0]
    assert inst["PublicIpAddress"] == a["PublicIp"]
    got = ec2.describe_addresses(AllocationIds=[a["AllocationId"]])["Addresses"][0]
    assert got["InstanceId"] == one and got["AssociationId"] == assoc and got["PrivateIpAddress"] == inst["PrivateIpAddress"]
    assert got["Tags"] == [{"Key": "use", "Value": "web"}]
    assert ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [one]}])["Addresses"][0]["PublicIp"] == a["PublicIp"]
    # Moving needs AllowReassociation.
    expect("Resource.AlreadyAssociated", ec2.associate_address, AllocationId=a["AllocationId"], InstanceId=two)
    ec2.associate_address(AllocationId=a["AllocationId"], InstanceId=two, AllowReassociation=True)
    first = ec2.describe_instances(InstanceIds=[one])["Reservations"][0]["Instances"][0]
    assert first.get("PublicIpAddress") != a["PublicIp"]
    assert ec2.describe_addresses(PublicIps=[a["PublicIp"]])["Addresses"][0]["InstanceId"] == two
    # An EIP survives stop/start of its instance.
    ec2.stop_instances(InstanceIds=[two])
    stopped = wait_state(ec2, two, "stopped")
    assert stopped["PublicIpAddress"] == a["PublicIp"]
    ec2.start_instances(InstanceIds=[two])
    assert wait_state(ec2, two, "running")["PublicIpAddress"] == a["PublicIp"]
    expect("InvalidIPAddress.InUse", ec2.release_address, AllocationId=a["AllocationId"])
    now = ec2.describe_addresses(AllocationIds=[a["AllocationId"]])["Addresses"][0]["AssociationId"]
    ec2.disassociate_address(AssociationId=now)
    assert "AssociationId" not in ec2.describe_addresses(AllocationIds=[a["AllocationId"]])["Addresses"][0]
    expect("InvalidAssociationID.NotFound", ec2.disassociate_address, AssociationId=now)
    ec2.release_address(AllocationId=a["AllocationId"])
    expect("InvalidAllocationID.NotFound", ec2.describe_addresses, AllocationIds=[a["AllocationId"]])
    expect("InvalidAddress.NotFound", ec2.describe_addresses, PublicIps=["203.0.113.9"])
    ec2.terminate_instances(InstanceIds=[one, two])


def test_errors_and_limit(strato):
    ec2 = strato.client(region=REGION)
    expect("InvalidAllocationID.NotFound", ec2.release_address, AllocationId="eipalloc-0123456789abcdef0")
    expect("InvalidAllocationID.NotFound", ec2.associate_address, AllocationId="eipalloc-0123456789abcdef0", InstanceId="i-0123456789abcdef0")
    a = ec2.allocate_address(Domain="vpc")["AllocationId"]
    expect("InvalidInstanceID.NotFound", ec2.associate_address, AllocationId=a, InstanceId="i-0123456789abcdef0")
    expect("MissingParameter", ec2.associate_address, AllocationId=a)
    # An instance in a VPC with no internet gateway cannot have a public address.
    vpc = ec2.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.5.0.0/24")["Subnet"]["SubnetId"]
    iid = launch(ec2, SubnetId=sub)["Instances"][0]["InstanceId"]
    assert "PublicIpAddress" not in ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    expect("Gateway.NotAttached", ec2.associate_address, AllocationId=a, InstanceId=iid)
    ec2.terminate_instances(InstanceIds=[iid])
    more = [ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(4)]
    expect("AddressLimitExceeded", ec2.allocate_address, Domain="vpc")
    for x in more + [a]:
        ec2.release_address(AllocationId=x)
    wait_state(ec2, iid, "terminated")
    ec2.delete_subnet(SubnetId=sub)
    ec2.delete_vpc(VpcId=vpc)
