"""The EC2 Query protocol itself: signatures, errors, XML, DryRun."""
import datetime
import re

from helpers import expect, launch
from strato_harness import ALICE, error_code

REGION = "us-west-1"


def test_signed_get_and_post_both_work(strato):
    for method in ("GET", "POST"):
        status, body = strato.raw({"Action": "DescribeRegions"}, region=REGION, method=method)
        assert status == 200, body
        assert 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"' in body
        assert re.search(r"<requestId>[0-9a-f-]{36}</requestId>", body)
        assert "<DescribeRegionsResponse" in body and "<regionInfo><item>" in body


def test_unsigned_request_is_refused(strato):
    status, body = strato.raw({"Action": "DescribeRegions"}, sign=False)
    assert (status, error_code(body)) == (401, "MissingAuthenticationToken")
    assert "<Response><Errors><Error><Code>" in body and "<RequestID>" in body


def test_wrong_secret_and_unknown_key_are_auth_failures(strato):
    bad = (ALICE[0], ALICE[1], "not-the-secret")
    status, body = strato.raw({"Action": "DescribeRegions"}, account=bad)
    assert (status, error_code(body)) == (401, "AuthFailure")
    unknown = ("000000000009", "AKIDNOBODY", "x")
    status, body = strato.raw({"Action": "DescribeRegions"}, account=unknown)
    assert (status, error_code(body)) == (401, "AuthFailure")


def test_the_development_key_is_off_when_accounts_are_configured(strato):
    status, body = strato.raw({"Action": "DescribeRegions"}, account=("123456789012", "test", "test"))
    assert (status, error_code(body)) == (401, "AuthFailure")


def test_requests_outside_the_time_window_expire(strato):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    status, body = strato.raw({"Action": "DescribeRegions"}, date=old.replace(tzinfo=None))
    assert (status, error_code(body)) == (400, "RequestExpired")
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=20)
    status, body = strato.raw({"Action": "DescribeRegions"}, date=future.replace(tzinfo=None))
    assert (status, error_code(body)) == (400, "RequestExpired")
    near = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    status, body = strato.raw({"Action": "DescribeRegions"}, date=near.replace(tzinfo=None))
    assert status == 200, body


def test_incomplete_signature(strato):
    status, body = strato.raw(
        {"Action": "DescribeRegions"}, sign=False,
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDALICE000000000001/20261204/us-east-1/ec2/aws4_request",
                 "X-Amz-Date": "20261204T000000Z"},
    )
    assert (status, error_code(body)) == (400, "IncompleteSignature")


def test_tampered_body_is_rejected(strato):
    # Sign one body, send another of the same length.
    from urllib.parse import urlencode
    signed_for = urlencode({"Action": "DescribeRegions", "Version": "2016-11-15"}).encode()
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import urllib.request
    req = botocore.awsrequest.AWSRequest(method="POST", url=strato.endpoint + "/", data=signed_for,
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ALICE[1], ALICE[2]), "ec2", REGION).add_auth(req)
    p = req.prepare()
    tampered = signed_for.replace(b"Regions", b"Regionz")
    r = urllib.request.Request(p.url, data=tampered, method="POST", headers=dict(p.headers))
    try:
        urllib.request.urlopen(r)
        raise AssertionError("a tampered body must not be accepted")
    except urllib.error.HTTPError as e:
        assert (e.code, error_code(e.read().decode())) == (401, "AuthFailure")


def test_presigned_url(strato):
    ec2 = strato.client(region=REGION)
    url = ec2.generate_presigned_url("describe_regions", Params={}, ExpiresIn=60, HttpMethod="GET")
    import urllib.request
    with urllib.request.urlopen(url) as r:
        body = r.read().decode()
    assert "<DescribeRegionsResponse" in body


def test_unserved_region(strato):
    status, body = strato.raw({"Action": "DescribeRegions"}, region="xx-nowhere-1")
    assert (status, error_code(body)) == (401, "AuthFailure")
    assert "valid region" in body


def test_wrong_service_in_scope(strato):
    status, body = strato.raw({"Action": "DescribeRegions"}, service="s3")
    assert (status, error_code(body)) == (401, "AuthFailure")


def test_unknown_action_missing_action_and_version(strato):
    status, body = strato.raw({"Action": "LaunchRockets"}, region=REGION)
    assert (status, error_code(body)) == (400, "InvalidAction")
    status, body = strato.raw({}, region=REGION)
    assert (status, error_code(body)) == (400, "MissingAction")
    status, body = strato.raw({"Action": "DescribeRegions"}, region=REGION, version=None)
    assert (status, error_code(body)) == (400, "MissingParameter")


def test_unknown_and_malformed_parameters(strato):
    status, body = strato.raw({"Action": "DescribeVpcs", "Bogus": "1"}, region=REGION)
    assert (status, error_code(body)) == (400, "UnknownParameter")
    assert "Bogus" in body
    status, body = strato.raw({"Action": "DescribeVpcs", "MaxResults": "many"}, region=REGION)
    assert (status, error_code(body)) == (400, "InvalidParameterValue")
    status, body = strato.raw({"Action": "DescribeVpcs", "DryRun": "perhaps"}, region=REGION)
    assert (status, error_code(body)) == (400, "InvalidParameterValue")
    status, body = strato.raw({"Action": "DescribeInstances", "InstanceId.0": "i-12345678"}, region=REGION)
    assert (status, error_code(body)) == (400, "InvalidParameterValue")
    status, body = strato.raw({"Action": "CreateVpc"}, region=REGION)
    assert (status, error_code(body)) == (400, "MissingParameter")


def test_malformed_ids(strato):
    ec2 = strato.client(region=REGION)
    expect("InvalidInstanceID.Malformed", ec2.describe_instances, InstanceIds=["i-xyz"])
    expect("InvalidAMIID.Malformed", ec2.describe_images, ImageIds=["ami-bogus!"])
    expect("InvalidVpcID.Malformed", ec2.describe_vpcs, VpcIds=["vpc-1"])
    expect("InvalidSubnetID.Malformed", ec2.describe_subnets, SubnetIds=["subnet-zz"])
    expect("InvalidGroupId.Malformed", ec2.describe_security_groups, GroupIds=["sg-nope"])
    expect("InvalidAllocationID.Malformed", ec2.release_address, AllocationId="eipalloc-1")


def test_oversized_body(strato):
    body = b"Action=DescribeRegions&Version=2016-11-15&Junk=" + b"x" * (1024 * 1024 + 10)
    status, text = strato.raw({}, region=REGION, body=body, version=None)
    assert (status, error_code(text)) == (413, "RequestEntityTooLarge")


def test_garbage_never_causes_a_server_error(strato):
    cases = [
        {"Action": "RunInstances", "MinCount": "-1", "MaxCount": "99999999999999999999"},
        {"Action": "DescribeInstances", "Filter.1.Name": "", "Filter.99999.Value.1": "x"},
        {"Action": "CreateTags", "ResourceId.1": "\u0000\u00ff", "Tag.1.Key": "k"},
        {"Action": "AuthorizeSecurityGroupIngress", "GroupId": "sg-12345678", "IpPermissions.1.IpProtocol": "tcp",
         "IpPermissions.1.FromPort": "70000"},
        {"Action": "CreateVpc", "CidrBlock": "999.1.1.1/99"},
        {"Action": "ImportKeyPair", "KeyName": "k", "PublicKeyMaterial": "!!!"},
        {"Action": "DescribeInstances", "MaxResults": "5", "NextToken": "%%%"},
    ]
    for params in cases:
        status, body = strato.raw(params, region=REGION)
        assert 400 <= status < 500, (params, status, body)
        assert error_code(body), body


# Every mutating action, with arguments good enough to pass validation.
def mutating_calls(ec2, ctx):
    return [
        ("create_key_pair", dict(KeyName="dry-key")),
        ("import_key_pair", dict(KeyName="dry-imp", PublicKeyMaterial=ctx["pub"])),
        ("delete_key_pair", dict(KeyName="whatever")),
        ("create_vpc", dict(CidrBlock="10.9.0.0/16")),
        ("delete_vpc", dict(VpcId=ctx["vpc"])),
        ("create_subnet", dict(VpcId=ctx["vpc"], CidrBlock="10.0.9.0/24")),
        ("delete_subnet", dict(SubnetId=ctx["subnet"])),
        ("create_security_group", dict(GroupName="dry", Description="dry")),
        ("delete_security_group", dict(GroupId=ctx["sg"])),
        ("authorize_security_group_ingress", dict(GroupId=ctx["sg"], IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])),
        ("authorize_security_group_egress", dict(GroupId=ctx["sg"], IpPermissions=[{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])),
        ("revoke_security_group_ingress", dict(GroupId=ctx["sg"], IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])),
        ("revoke_security_group_egress", dict(GroupId=ctx["sg"], IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])),
        ("modify_security_group_rules", dict(GroupId=ctx["sg"], SecurityGroupRules=[{"SecurityGroupRuleId": ctx["rule"], "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "CidrIpv4": "0.0.0.0/0"}}])),
        ("run_instances", dict(ImageId=ctx["ami"], InstanceType="t2.micro", MinCount=1, MaxCount=1)),
        ("start_instances", dict(InstanceIds=[ctx["iid"]])),
        ("stop_instances", dict(InstanceIds=[ctx["iid"]])),
        ("reboot_instances", dict(InstanceIds=[ctx["iid"]])),
        ("terminate_instances", dict(InstanceIds=[ctx["iid"]])),
        ("modify_instance_attribute", dict(InstanceId=ctx["iid"], DisableApiTermination={"Value": True})),
        ("allocate_address", dict(Domain="vpc")),
        ("associate_address", dict(AllocationId=ctx["eip"], InstanceId=ctx["iid"])),
        ("disassociate_address", dict(AssociationId="eipassoc-12345678")),
        ("release_address", dict(AllocationId=ctx["eip"])),
        ("create_tags", dict(Resources=[ctx["vpc"]], Tags=[{"Key": "dry", "Value": "run"}])),
        ("delete_tags", dict(Resources=[ctx["vpc"]], Tags=[{"Key": "keep"}])),
        ("deregister_image", dict(ImageId=ctx["ami"])),
    ]


def snapshot(ec2):
    """Everything an account can see in a region."""
    return {
        "instances": ec2.describe_instances()["Reservations"],
        "keys": ec2.describe_key_pairs()["KeyPairs"],
        "vpcs": ec2.describe_vpcs()["Vpcs"],
        "subnets": ec2.describe_subnets()["Subnets"],
        "groups": ec2.describe_security_groups()["SecurityGroups"],
        "addresses": ec2.describe_addresses()["Addresses"],
        "tags": ec2.describe_tags()["Tags"],
    }


def test_dry_run_on_every_mutating_action_has_no_side_effect(strato):
    import subprocess
    import tempfile
    ec2 = strato.client(region=REGION)
    d = tempfile.mkdtemp()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/k"], check=True)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "keep", "Value": "me"}])
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="dryrun", Description="d", VpcId=vpc)["GroupId"]
    rule = ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    r = launch(ec2)
    iid = r["Instances"][0]["InstanceId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ctx = dict(vpc=vpc, subnet=subnet, sg=sg, rule=rule, iid=iid, eip=eip, ami=r["Instances"][0]["ImageId"],
               pub=open(f"{d}/k.pub").read())
    import time
    time.sleep(0.3)  # let the launch settle so the snapshot is stable
    before = snapshot(ec2)
    calls = mutating_calls(ec2, ctx)
    assert len(calls) >= 27  # every mutating action that has DryRun (ModifySubnetAttribute has none)
    for name, args in calls:
        resp = expect("DryRunOperation", getattr(ec2, name), DryRun=True, **args)
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 412, name
    after = snapshot(ec2)
    assert after == before


def test_describe_actions_accept_dry_run_too(strato):
    ec2 = strato.client(region=REGION)
    for name in ["describe_instances", "describe_vpcs", "describe_images", "describe_regions", "describe_key_pairs"]:
        expect("DryRunOperation", getattr(ec2, name), DryRun=True)
