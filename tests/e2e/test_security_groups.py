"""Security groups and rules (state and validation; enforcement comes with networking)."""
from helpers import expect, launch

REGION = "eu-west-3"

SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ssh"}]}


def test_create_describe_delete(strato):
    ec2 = strato.client(region=REGION)
    g = ec2.create_security_group(GroupName="web", Description="web tier",
                                  TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "tier", "Value": "web"}]}])
    gid = g["GroupId"]
    assert gid.startswith("sg-") and g["SecurityGroupArn"].endswith(f":security-group/{gid}")
    got = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    assert got["GroupName"] == "web" and got["Description"] == "web tier"
    assert got["IpPermissions"] == []
    assert got["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    assert got["Tags"] == [{"Key": "tier", "Value": "web"}]
    assert ec2.describe_security_groups(GroupNames=["web"])["SecurityGroups"][0]["GroupId"] == gid
    expect("InvalidGroup.Duplicate", ec2.create_security_group, GroupName="web", Description="again")
    expect("InvalidGroup.Reserved", ec2.create_security_group, GroupName="default", Description="x")
    expect("InvalidParameterValue", ec2.create_security_group, GroupName="sg-sneaky", Description="x")
    expect("InvalidGroup.NotFound", ec2.describe_security_groups, GroupIds=["sg-0123456789abcdef0"])
    expect("InvalidGroup.NotFound", ec2.describe_security_groups, GroupNames=["nope"])
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    expect("CannotDelete", ec2.delete_security_group, GroupId=default)
    ec2.delete_security_group(GroupId=gid)
    expect("InvalidGroup.NotFound", ec2.describe_security_groups, GroupIds=[gid])


def test_rules(strato):
    ec2 = strato.client(region=REGION)
    gid = ec2.create_security_group(GroupName="rules", Description="r")["GroupId"]
    other = ec2.create_security_group(GroupName="peer", Description="p")["GroupId"]
    r = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        SSH,
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "192.168.0.0/16"}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "UserIdGroupPairs": [{"GroupId": other}]},
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
    ])
    assert r["Return"] is True and len(r["SecurityGroupRules"]) == 5
    assert {x["IsEgress"] for x in r["SecurityGroupRules"]} == {False}
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    perms = {(p["IpProtocol"], p.get("FromPort")): p for p in g["IpPermissions"]}
    assert sorted(x["CidrIp"] for x in perms[("tcp", 443)]["IpRanges"]) == ["10.0.0.0/8", "192.168.0.0/16"]
    assert perms[("tcp", 22)]["IpRanges"] == [{"CidrIp": "0.0.0.0/0", "Description": "ssh"}]
    assert perms[("icmp", 8)]["UserIdGroupPairs"][0]["GroupId"] == other
    assert perms[("udp", 53)]["Ipv6Ranges"] == [{"CidrIpv6": "::/0"}]
    # Filters over rules.
    hit = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.from-port", "Values": ["443"]}])["SecurityGroups"]
    assert [x["GroupId"] for x in hit] == [gid]
    # Duplicates, bad input.
    expect("InvalidPermission.Duplicate", ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=[SSH])
    expect("InvalidParameterValue", ec2.authorize_security_group_ingress, GroupId=gid,
           IpPermissions=[{"IpProtocol": "tcp", "FromPort": 100, "ToPort": 50, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    expect("InvalidParameterValue", ec2.authorize_security_group_ingress, GroupId=gid,
           IpPermissions=[{"IpProtocol": "tcpx", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    expect("InvalidParameterValue", ec2.authorize_security_group_ingress, GroupId=gid,
           IpPermissions=[{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "10.0.0.1/8"}]}])
    expect("InvalidGroup.NotFound", ec2.authorize_security_group_ingress, GroupId=gid,
           IpPermissions=[{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]}])
    expect("InvalidGroup.NotFound", ec2.authorize_security_group_ingress, GroupId="sg-0123456789abcdef0", IpPermissions=[SSH])
    # The older flat form, by group name (default VPC).
    ec2.authorize_security_group_ingress(GroupName="rules", IpProtocol="tcp", FromPort=8080, ToPort=8080, CidrIp="10.1.0.0/16")
    assert any(p.get("FromPort") == 8080 for p in ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"])
    # Rules by id.
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    assert len(rules) == 7  # six ingress + the default egress
    ssh = next(x for x in rules if x.get("FromPort") == 22)
    ec2.modify_security_group_rules(GroupId=gid, SecurityGroupRules=[{"SecurityGroupRuleId": ssh["SecurityGroupRuleId"],
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "CidrIpv4": "10.9.0.0/16", "Description": "moved"}}])
    moved = ec2.describe_security_group_rules(SecurityGroupRuleIds=[ssh["SecurityGroupRuleId"]])["SecurityGroupRules"][0]
    assert (moved["FromPort"], moved["CidrIpv4"], moved["Description"]) == (2222, "10.9.0.0/16", "moved")
    expect("InvalidSecurityGroupRuleId.NotFound", ec2.describe_security_group_rules, SecurityGroupRuleIds=["sgr-0123456789abcdef0"])
    # Revoke by permission and by id.
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[ssh["SecurityGroupRuleId"]])
    expect("InvalidPermission.NotFound", ec2.revoke_security_group_ingress, GroupId=gid, IpPermissions=[SSH])
    left = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    assert len(left) == 5
    # Egress.
    ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    eg = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissionsEgress"]
    assert eg == [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]
    # A group another group refers to cannot go.
    expect("DependencyViolation", ec2.delete_security_group, GroupId=other)


def test_rule_limit(strato):
    ec2 = strato.client(region=REGION)
    gid = ec2.create_security_group(GroupName="many", Description="m")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1000 + i, "ToPort": 1000 + i, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]} for i in range(60)])
    expect("RulesPerSecurityGroupLimitExceeded", ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=[SSH])


def test_groups_per_instance_limit_and_in_use(strato):
    ec2 = strato.client(region=REGION)
    gids = [ec2.create_security_group(GroupName=f"lim{i}", Description="x")["GroupId"] for i in range(6)]
    expect("SecurityGroupsPerInterfaceLimitExceeded", launch, ec2, SecurityGroupIds=gids)
    iid = launch(ec2, SecurityGroupIds=gids[:5])["Instances"][0]["InstanceId"]
    expect("DependencyViolation", ec2.delete_security_group, GroupId=gids[0])
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    for g in gids:
        ec2.delete_security_group(GroupId=g)
