"""Internet gateways, route tables and network interfaces against the control
plane (simulated runtime; test_network.py sends packets through them)."""
from helpers import expect, launch, wait_state
from strato_harness import BOB, error_code

REGION = "ca-central-1"
ANY = "0.0.0.0/0"


def test_default_vpc_has_an_attached_gateway_and_a_default_route(strato):
    ec2 = strato.client(region=REGION)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]
    assert len(igws) == 1 and igws[0]["Attachments"] == [{"VpcId": vpc, "State": "available"}]
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    assert len(tables) == 1
    routes = {(r["DestinationCidrBlock"], r["GatewayId"], r["State"], r["Origin"]) for r in tables[0]["Routes"]}
    assert routes == {("172.31.0.0/16", "local", "active", "CreateRouteTable"),
                      (ANY, igws[0]["InternetGatewayId"], "active", "CreateRoute")}
    assert tables[0]["Associations"][0]["Main"] is True


def test_internet_gateway_lifecycle(strato):
    ec2 = strato.client(region=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_vpc(CidrBlock="10.21.0.0/16")["Vpc"]["VpcId"]
    expect("DryRunOperation", ec2.create_internet_gateway, DryRun=True)
    igw = ec2.create_internet_gateway(TagSpecifications=[{"ResourceType": "internet-gateway", "Tags": [{"Key": "Name", "Value": "gw"}]}])["InternetGateway"]
    gid = igw["InternetGatewayId"]
    assert gid.startswith("igw-") and igw["Attachments"] == [] and igw["Tags"] == [{"Key": "Name", "Value": "gw"}]
    expect("InvalidInternetGatewayID.NotFound", ec2.attach_internet_gateway, InternetGatewayId="igw-0123456789abcdef0", VpcId=vpc)
    expect("InvalidInternetGatewayID.Malformed", ec2.attach_internet_gateway, InternetGatewayId="igw-zz", VpcId=vpc)
    expect("InvalidVpcID.NotFound", ec2.attach_internet_gateway, InternetGatewayId=gid, VpcId="vpc-0123456789abcdef0")
    expect("DryRunOperation", ec2.attach_internet_gateway, InternetGatewayId=gid, VpcId=vpc, DryRun=True)
    assert ec2.describe_internet_gateways(InternetGatewayIds=[gid])["InternetGateways"][0]["Attachments"] == []
    ec2.attach_internet_gateway(InternetGatewayId=gid, VpcId=vpc)
    expect("Resource.AlreadyAssociated", ec2.attach_internet_gateway, InternetGatewayId=gid, VpcId=other)
    second = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    expect("Resource.AlreadyAssociated", ec2.attach_internet_gateway, InternetGatewayId=second, VpcId=vpc)
    assert [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]] == [gid]
    assert [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=[{"Name": "tag:Name", "Values": ["gw"]}])["InternetGateways"]] == [gid]
    expect("DependencyViolation", ec2.delete_internet_gateway, InternetGatewayId=gid)
    expect("DependencyViolation", ec2.delete_vpc, VpcId=vpc)
    expect("Gateway.NotAttached", ec2.detach_internet_gateway, InternetGatewayId=gid, VpcId=other)
    # Another account sees none of it.
    expect("InvalidInternetGatewayID.NotFound", strato.client(region=REGION, account=BOB).describe_internet_gateways, InternetGatewayIds=[gid])
    ec2.detach_internet_gateway(InternetGatewayId=gid, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=gid)
    ec2.delete_internet_gateway(InternetGatewayId=second)
    expect("InvalidInternetGatewayID.NotFound", ec2.describe_internet_gateways, InternetGatewayIds=[gid])
    ec2.delete_vpc(VpcId=vpc)
    ec2.delete_vpc(VpcId=other)


def test_detaching_a_gateway_with_mapped_addresses_is_refused(strato):
    ec2 = strato.client(region=REGION)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    gid = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"][0]["InternetGatewayId"]
    iid = launch(ec2)["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    expect("DependencyViolation", ec2.detach_internet_gateway, InternetGatewayId=gid, VpcId=vpc)
    ec2.terminate_instances(InstanceIds=[iid])


def test_route_tables_routes_and_associations(strato):
    ec2 = strato.client(region=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    elsewhere = ec2.create_vpc(CidrBlock="10.31.0.0/16")["Vpc"]["VpcId"]
    status, body = strato.raw({"Action": "CreateRouteTable"}, region=REGION)
    assert (status, error_code(body)) == (400, "MissingParameter")
    expect("InvalidVpcID.NotFound", ec2.create_route_table, VpcId="vpc-0123456789abcdef0")
    expect("DryRunOperation", ec2.create_route_table, VpcId=vpc, DryRun=True)
    t = ec2.create_route_table(VpcId=vpc, ClientToken="rt-1")["RouteTable"]
    rtb = t["RouteTableId"]
    assert rtb.startswith("rtb-") and t["Associations"] == []
    assert [(r["DestinationCidrBlock"], r["GatewayId"]) for r in t["Routes"]] == [("10.30.0.0/16", "local")]
    # The same client token: the same table; for another VPC: a mismatch.
    assert ec2.create_route_table(VpcId=vpc, ClientToken="rt-1")["RouteTable"]["RouteTableId"] == rtb
    expect("IdempotentParameterMismatch", ec2.create_route_table, VpcId=elsewhere, ClientToken="rt-1")

    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    expect("InvalidParameterValue", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock=ANY, GatewayId=igw)
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    expect("InvalidParameterValue", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="10.0.0.1/8", GatewayId=igw)
    expect("InvalidInternetGatewayID.NotFound", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock=ANY, GatewayId="igw-0123456789abcdef0")
    expect("InvalidRouteTableID.NotFound", ec2.create_route, RouteTableId="rtb-0123456789abcdef0", DestinationCidrBlock=ANY, GatewayId=igw)
    status, body = strato.raw({"Action": "CreateRoute", "RouteTableId": rtb, "DestinationCidrBlock": ANY}, region=REGION)
    assert (status, error_code(body)) == (400, "MissingParameter")
    expect("UnsupportedOperation", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock=ANY, NatGatewayId="nat-0123456789abcdef0")
    expect("DryRunOperation", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock=ANY, GatewayId=igw, DryRun=True)
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock=ANY, GatewayId=igw)
    expect("RouteAlreadyExists", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock=ANY, GatewayId=igw)
    expect("InvalidParameterValue", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="10.30.0.0/16", GatewayId=igw)
    expect("InvalidParameterValue", ec2.replace_route, RouteTableId=rtb, DestinationCidrBlock="192.0.2.0/24", GatewayId=igw)
    ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock=ANY, GatewayId=igw)
    found = ec2.describe_route_tables(Filters=[{"Name": "route.gateway-id", "Values": [igw]}])["RouteTables"]
    assert [x["RouteTableId"] for x in found] == [rtb]
    assert [r["Origin"] for r in found[0]["Routes"]] == ["CreateRouteTable", "CreateRoute"]

    # A detached gateway leaves its routes as blackholes.
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    states = {r["DestinationCidrBlock"]: r["State"] for r in ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]}
    assert states == {"10.30.0.0/16": "active", ANY: "blackhole"}
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)

    # Associations.
    other_subnet = ec2.create_subnet(VpcId=elsewhere, CidrBlock="10.31.1.0/24")["Subnet"]["SubnetId"]
    expect("InvalidParameterValue", ec2.associate_route_table, RouteTableId=rtb, SubnetId=other_subnet)
    expect("InvalidSubnetID.NotFound", ec2.associate_route_table, RouteTableId=rtb, SubnetId="subnet-0123456789abcdef0")
    assoc = ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)
    assert assoc["AssociationId"].startswith("rtbassoc-") and assoc["AssociationState"]["State"] == "associated"
    expect("Resource.AlreadyAssociated", ec2.associate_route_table, RouteTableId=rtb, SubnetId=subnet)
    by_subnet = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"]
    assert [x["RouteTableId"] for x in by_subnet] == [rtb]
    expect("DependencyViolation", ec2.delete_route_table, RouteTableId=rtb)
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    expect("InvalidParameterValue", ec2.disassociate_route_table, AssociationId=main["Associations"][0]["RouteTableAssociationId"])
    expect("InvalidAssociationID.NotFound", ec2.disassociate_route_table, AssociationId="rtbassoc-0123456789abcdef0")
    expect("DryRunOperation", ec2.disassociate_route_table, AssociationId=assoc["AssociationId"], DryRun=True)
    ec2.disassociate_route_table(AssociationId=assoc["AssociationId"])

    expect("InvalidRoute.NotFound", ec2.delete_route, RouteTableId=rtb, DestinationCidrBlock="192.0.2.0/24")
    expect("InvalidParameterValue", ec2.delete_route, RouteTableId=rtb, DestinationCidrBlock="10.30.0.0/16")
    ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock=ANY)
    expect("InvalidRouteTableID.NotFound", strato.client(region=REGION, account=BOB).delete_route_table, RouteTableId=rtb)
    expect("DependencyViolation", ec2.delete_vpc, VpcId=vpc)
    ec2.delete_route_table(RouteTableId=rtb)
    expect("InvalidRouteTableID.NotFound", ec2.describe_route_tables, RouteTableIds=[rtb])
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_subnet(SubnetId=other_subnet)
    ec2.delete_vpc(VpcId=vpc)
    ec2.delete_vpc(VpcId=elsewhere)


def test_network_interfaces(strato):
    ec2 = strato.client(region=REGION)
    r = launch(ec2, TagSpecifications=[{"ResourceType": "network-interface", "Tags": [{"Key": "nic", "Value": "primary"}]}])
    inst = r["Instances"][0]
    iid = inst["InstanceId"]
    eni_id = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"]
    assert len(enis) == 1
    e = enis[0]
    assert e["Attachment"]["InstanceId"] == iid and e["PrivateIpAddress"] == inst["PrivateIpAddress"]
    assert e["MacAddress"] == inst["NetworkInterfaces"][0]["MacAddress"] and e["Status"] == "in-use"
    assert e["Association"]["PublicIp"] == inst["PublicIpAddress"]
    assert e["TagSet"] == [{"Key": "nic", "Value": "primary"}]
    by_instance = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["NetworkInterfaces"]
    assert [x["NetworkInterfaceId"] for x in by_instance] == [eni_id]
    expect("InvalidNetworkInterfaceID.NotFound", ec2.describe_network_interfaces, NetworkInterfaceIds=["eni-0123456789abcdef0"])
    expect("InvalidParameterValue", ec2.describe_network_interfaces, Filters=[{"Name": "no-such-filter", "Values": ["x"]}])

    vpc = inst["VpcId"]
    sg = ec2.create_security_group(GroupName="nic-group", Description="nic", VpcId=vpc)["GroupId"]
    expect("DryRunOperation", ec2.modify_network_interface_attribute, NetworkInterfaceId=eni_id, Groups=[sg], DryRun=True)
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=[sg])
    assert [g["GroupId"] for g in ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["SecurityGroups"]] == [sg]
    expect("InvalidGroup.NotFound", ec2.modify_network_interface_attribute, NetworkInterfaceId=eni_id, Groups=["sg-0123456789abcdef0"])
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, SourceDestCheck={"Value": False})
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]["SourceDestCheck"] is False
    status, body = strato.raw({"Action": "ModifyNetworkInterfaceAttribute", "NetworkInterfaceId": eni_id}, region=REGION)
    assert (status, error_code(body)) == (400, "MissingParameter")
    expect("InvalidNetworkInterfaceID.NotFound", ec2.modify_network_interface_attribute, NetworkInterfaceId="eni-0123456789abcdef0", Groups=[sg])
    expect("DependencyViolation", ec2.delete_security_group, GroupId=sg)
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    assert ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["NetworkInterfaces"] == []
    ec2.delete_security_group(GroupId=sg)
