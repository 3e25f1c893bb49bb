"""Tags on every kind of resource."""
from helpers import expect, launch

REGION = "ca-central-1"


def test_tags_everywhere(strato):
    ec2 = strato.client(region=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.6.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.6.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="tagged", Description="t", VpcId=vpc)["GroupId"]
    key = ec2.create_key_pair(KeyName="tagged", KeyType="ed25519")["KeyPairId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    inst = launch(ec2)["Instances"][0]
    iid = inst["InstanceId"]
    vol = inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    rule = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    ids = [vpc, subnet, sg, key, eip, iid, vol, eni, rule]
    ec2.create_tags(Resources=ids, Tags=[{"Key": "env", "Value": "test"}, {"Key": "owner", "Value": "qa"}])
    rows = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["env"]}])["Tags"]
    assert sorted(r["ResourceId"] for r in rows) == sorted(ids)
    types = {r["ResourceId"]: r["ResourceType"] for r in rows}
    assert types[vpc] == "vpc" and types[iid] == "instance" and types[eip] == "elastic-ip" and types[vol] == "volume"
    assert types[eni] == "network-interface" and types[rule] == "security-group-rule" and types[key] == "key-pair"
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:env", "Values": ["test"]}])["Vpcs"][0]["VpcId"] == vpc
    assert ec2.describe_subnets(Filters=[{"Name": "tag-key", "Values": ["owner"]}])["Subnets"][0]["SubnetId"] == subnet
    # Overwrite, delete by key, delete by key and value.
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "env", "Value": "prod"}])
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc]}, {"Name": "key", "Values": ["env"]}])["Tags"][0]["Value"] == "prod"
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "env", "Value": "not-prod"}])
    assert len(ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc]}])["Tags"]) == 2
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "env"}])
    assert [t["Key"] for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc]}])["Tags"]] == ["owner"]
    ec2.delete_tags(Resources=[subnet])
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [subnet]}])["Tags"] == []
    # Errors leave tags untouched (one transaction).
    expect("InvalidVpcID.NotFound", ec2.create_tags, Resources=[sg, "vpc-0123456789abcdef0"], Tags=[{"Key": "x", "Value": "y"}])
    assert not [t for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [sg]}])["Tags"] if t["Key"] == "x"]
    expect("InvalidID", ec2.create_tags, Resources=["bogus-123"], Tags=[{"Key": "x", "Value": "y"}])
    expect("InvalidParameterValue", ec2.create_tags, Resources=[sg], Tags=[{"Key": "aws:reserved", "Value": "y"}])
    expect("TagLimitExceeded", ec2.create_tags, Resources=[sg], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(49)])
    page = ec2.describe_tags(MaxResults=5)
    assert len(page["Tags"]) == 5 and "NextToken" in page
    ec2.terminate_instances(InstanceIds=[iid])
