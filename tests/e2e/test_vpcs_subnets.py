"""VPCs, subnets and the default network."""
from helpers import expect, launch

REGION = "eu-west-2"


def test_default_network_exists_as_on_aws(strato):
    ec2 = strato.client(region=REGION)
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1 and vpcs[0]["CidrBlock"] == "172.31.0.0/16" and vpcs[0]["IsDefault"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])["Subnets"]
    assert sorted(s["CidrBlock"] for s in subnets) == ["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
    assert all(s["DefaultForAz"] and s["MapPublicIpOnLaunch"] for s in subnets)
    assert all(s["AvailableIpAddressCount"] == 4096 - 5 for s in subnets)
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    assert len(groups) == 1
    g = groups[0]
    assert g["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == g["GroupId"]
    assert g["IpPermissionsEgress"][0]["IpProtocol"] == "-1"
    assert g["IpPermissionsEgress"][0]["IpRanges"][0]["CidrIp"] == "0.0.0.0/0"


def test_vpc_lifecycle_and_validation(strato):
    ec2 = strato.client(region=REGION)
    v = ec2.create_vpc(CidrBlock="10.1.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "lab"}]}])["Vpc"]
    assert v["State"] == "available" and v["CidrBlock"] == "10.1.0.0/16" and not v["IsDefault"]
    assert v["Tags"] == [{"Key": "Name", "Value": "lab"}]
    assert ec2.describe_vpcs(VpcIds=[v["VpcId"]])["Vpcs"][0]["VpcId"] == v["VpcId"]
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["lab"]}])["Vpcs"][0]["VpcId"] == v["VpcId"]
    # Every VPC gets its own default group.
    sgs = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [v["VpcId"]]}])["SecurityGroups"]
    assert [g["GroupName"] for g in sgs] == ["default"]
    expect("InvalidVpc.Range", ec2.create_vpc, CidrBlock="10.0.0.0/8")
    expect("InvalidVpc.Range", ec2.create_vpc, CidrBlock="10.0.0.0/29")
    expect("InvalidParameterValue", ec2.create_vpc, CidrBlock="10.0.0.1/16")
    expect("InvalidParameterValue", ec2.create_vpc, CidrBlock="banana")
    expect("InvalidVpcID.NotFound", ec2.describe_vpcs, VpcIds=["vpc-0123456789abcdef0"])
    ec2.delete_vpc(VpcId=v["VpcId"])
    expect("InvalidVpcID.NotFound", ec2.describe_vpcs, VpcIds=[v["VpcId"]])
    assert not ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [v["VpcId"]]}])["SecurityGroups"]


def test_vpc_limit(strato):
    ec2 = strato.client(region="me-south-1")
    made = [ec2.create_vpc(CidrBlock=f"10.{i}.0.0/16")["Vpc"]["VpcId"] for i in range(4)]
    expect("VpcLimitExceeded", ec2.create_vpc, CidrBlock="10.99.0.0/16")
    for v in made:
        ec2.delete_vpc(VpcId=v)


def test_subnets(strato):
    ec2 = strato.client(region=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    s = ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.1.0/24", AvailabilityZone=f"{REGION}b")["Subnet"]
    assert s["AvailableIpAddressCount"] == 251 and s["AvailabilityZone"] == f"{REGION}b"
    assert s["AvailabilityZoneId"] == "euw2-az2" and not s["MapPublicIpOnLaunch"]
    expect("InvalidSubnet.Conflict", ec2.create_subnet, VpcId=vpc, CidrBlock="10.2.1.128/25")
    expect("InvalidSubnet.Range", ec2.create_subnet, VpcId=vpc, CidrBlock="10.3.0.0/24")
    expect("InvalidSubnet.Range", ec2.create_subnet, VpcId=vpc, CidrBlock="10.2.0.0/29")
    expect("InvalidSubnet.Range", ec2.create_subnet, VpcId=vpc, CidrBlock="10.0.0.0/15")
    expect("InvalidParameterValue", ec2.create_subnet, VpcId=vpc, CidrBlock="10.2.9.0/24", AvailabilityZone="us-east-1a")
    expect("InvalidVpcID.NotFound", ec2.create_subnet, VpcId="vpc-0123456789abcdef0", CidrBlock="10.2.2.0/24")
    ec2.modify_subnet_attribute(SubnetId=s["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    assert ec2.describe_subnets(SubnetIds=[s["SubnetId"]])["Subnets"][0]["MapPublicIpOnLaunch"] is True
    expect("InvalidParameterValue", ec2.modify_subnet_attribute, SubnetId=s["SubnetId"], AssignIpv6AddressOnCreation={"Value": True})
    # A subnet in use cannot go, nor can its VPC.
    iid = launch(ec2, SubnetId=s["SubnetId"])["Instances"][0]["InstanceId"]
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["PrivateIpAddress"] == "10.2.1.4", "the first four addresses are AWS's"
    assert ec2.describe_subnets(SubnetIds=[s["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == 250
    expect("DependencyViolation", ec2.delete_subnet, SubnetId=s["SubnetId"])
    expect("DependencyViolation", ec2.delete_vpc, VpcId=vpc)
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    ec2.delete_subnet(SubnetId=s["SubnetId"])
    expect("InvalidSubnetID.NotFound", ec2.describe_subnets, SubnetIds=[s["SubnetId"]])
    ec2.delete_vpc(VpcId=vpc)


def test_pagination(strato):
    ec2 = strato.client(region=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    made = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.3.{i}.0/24")["Subnet"]["SubnetId"] for i in range(12)]
    seen = []
    for page in ec2.get_paginator("describe_subnets").paginate(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}], PaginationConfig={"PageSize": 5}
    ):
        assert len(page["Subnets"]) <= 5
        seen += [s["SubnetId"] for s in page["Subnets"]]
    assert sorted(seen) == sorted(made)
    status, body = strato.raw({"Action": "DescribeSubnets", "MaxResults": "2"}, region=REGION)
    assert status == 400 and "InvalidParameterValue" in body
    expect("InvalidPaginationToken", ec2.describe_subnets, MaxResults=5, NextToken="bogus")
    for s in made:
        ec2.delete_subnet(SubnetId=s)
    ec2.delete_vpc(VpcId=vpc)
