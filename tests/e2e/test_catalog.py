"""Regions, zones, instance types and images."""
from helpers import expect

REGION = "us-west-2"


def test_regions(strato):
    ec2 = strato.client(region=REGION)
    names = [r["RegionName"] for r in ec2.describe_regions()["Regions"]]
    assert "ap-northeast-2" in names and "us-east-1" in names and len(names) >= 20
    one = ec2.describe_regions(RegionNames=["eu-west-1"])["Regions"]
    assert [r["RegionName"] for r in one] == ["eu-west-1"]
    f = ec2.describe_regions(Filters=[{"Name": "region-name", "Values": ["ap-*"]}])["Regions"]
    assert f and all(r["RegionName"].startswith("ap-") for r in f)
    expect("InvalidParameterValue", ec2.describe_regions, RegionNames=["mars-north-1"])
    expect("InvalidParameterValue", ec2.describe_regions, Filters=[{"Name": "color", "Values": ["x"]}])


def test_zones_follow_the_region_of_the_request(strato):
    for region, stem in [(REGION, "usw2"), ("ap-northeast-2", "apne2")]:
        zones = strato.client(region=region).describe_availability_zones()["AvailabilityZones"]
        assert [z["ZoneName"] for z in zones] == [f"{region}a", f"{region}b", f"{region}c"]
        assert [z["ZoneId"] for z in zones] == [f"{stem}-az1", f"{stem}-az2", f"{stem}-az3"]
        assert all(z["State"] == "available" and z["RegionName"] == region for z in zones)
    ec2 = strato.client(region=REGION)
    z = ec2.describe_availability_zones(ZoneNames=[f"{REGION}b"])["AvailabilityZones"]
    assert [x["ZoneId"] for x in z] == ["usw2-az2"]
    expect("InvalidParameterValue", ec2.describe_availability_zones, ZoneNames=["us-west-2z"])


def test_instance_types(strato):
    ec2 = strato.client(region=REGION)
    t = ec2.describe_instance_types(InstanceTypes=["t2.micro"])["InstanceTypes"][0]
    assert t["VCpuInfo"]["DefaultVCpus"] == 1
    assert t["MemoryInfo"]["SizeInMiB"] == 1024
    assert t["FreeTierEligible"] is True
    g = ec2.describe_instance_types(InstanceTypes=["p4d.24xlarge"])["InstanceTypes"][0]
    assert g["GpuInfo"]["Gpus"][0]["Count"] == 8 and g["GpuInfo"]["Gpus"][0]["Manufacturer"] == "NVIDIA"
    i = ec2.describe_instance_types(InstanceTypes=["i3.large"])["InstanceTypes"][0]
    assert i["InstanceStorageSupported"] and i["InstanceStorageInfo"]["TotalSizeInGB"] == 475
    families = {x["InstanceType"].split(".")[0] for p in ec2.get_paginator("describe_instance_types").paginate()
                for x in p["InstanceTypes"]}
    for fam in ["t2", "t3", "m5", "m6i", "c5", "c6i", "r5", "r6i", "x2idn", "i3", "i4i", "d3", "g5", "p4d"]:
        assert fam in families
    gpus = ec2.describe_instance_types(Filters=[{"Name": "gpu-info.manufacturer", "Values": ["NVIDIA"]}])
    assert all("GpuInfo" in x for x in gpus["InstanceTypes"])
    two = ec2.describe_instance_types(Filters=[{"Name": "vcpu-info.default-vcpus", "Values": ["2"]}], MaxResults=5)
    assert len(two["InstanceTypes"]) == 5 and "NextToken" in two
    expect("InvalidParameterValue", ec2.describe_instance_types, InstanceTypes=["t9.huge"])


def test_instance_type_offerings(strato):
    ec2 = strato.client(region=REGION)
    region = ec2.describe_instance_type_offerings()["InstanceTypeOfferings"]
    assert all(o["Location"] == REGION and o["LocationType"] == "region" for o in region)
    az = ec2.describe_instance_type_offerings(LocationType="availability-zone",
                                              Filters=[{"Name": "instance-type", "Values": ["t2.micro"]}])
    assert sorted(o["Location"] for o in az["InstanceTypeOfferings"]) == [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
    expect("InvalidParameterValue", ec2.describe_instance_type_offerings, LocationType="galaxy")


def test_images(strato):
    ec2 = strato.client(region=REGION)
    imgs = ec2.describe_images(Owners=["strato"])["Images"]
    names = sorted(i["Name"] for i in imgs)
    assert any("minimal" in n for n in names) and any(n.startswith("debian-12") for n in names)
    for i in imgs:
        assert i["Public"] is True and i["State"] == "available" and i["ImageOwnerAlias"] == "strato"
        assert i["RootDeviceType"] == "ebs" and i["BlockDeviceMappings"][0]["DeviceName"] == i["RootDeviceName"]
    # The same image has a stable id, and a different one in another region.
    again = ec2.describe_images(ImageIds=[imgs[0]["ImageId"]])["Images"]
    assert again[0]["Name"] == imgs[0]["Name"]
    other = strato.client(region="eu-west-1").describe_images(Owners=["strato"])["Images"]
    assert {i["ImageId"] for i in other}.isdisjoint({i["ImageId"] for i in imgs})
    # Filters.
    deb = ec2.describe_images(Filters=[{"Name": "name", "Values": ["debian-12*"]}, {"Name": "architecture", "Values": ["x86_64"]}])["Images"]
    assert len(deb) == 1
    assert ec2.describe_images(Filters=[{"Name": "is-public", "Values": ["false"]}])["Images"] == []
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert len(ec2.describe_images(ExecutableUsers=["all"])["Images"]) == len(imgs)
    expect("InvalidAMIID.NotFound", ec2.describe_images, ImageIds=["ami-12345678"])
    expect("InvalidAMIID.Malformed", ec2.describe_images, ImageIds=["ami-xyz"])
    expect("InvalidUserID.Malformed", ec2.describe_images, Owners=["nobody-special"])


def test_image_attributes_and_deregistration(strato):
    ec2 = strato.client(region=REGION)
    img = ec2.describe_images(Owners=["strato"])["Images"][0]
    d = ec2.describe_image_attribute(ImageId=img["ImageId"], Attribute="description")
    assert d["Description"]["Value"] == img["Description"]
    b = ec2.describe_image_attribute(ImageId=img["ImageId"], Attribute="blockDeviceMapping")
    assert b["BlockDeviceMappings"][0]["DeviceName"] == img["RootDeviceName"]
    expect("InvalidParameterValue", ec2.describe_image_attribute, ImageId=img["ImageId"], Attribute="colour")
    expect("AuthFailure", ec2.describe_image_attribute, ImageId=img["ImageId"], Attribute="launchPermission")
    # Platform images belong to the platform.
    expect("AuthFailure", ec2.deregister_image, ImageId=img["ImageId"])
    expect("InvalidAMIID.NotFound", ec2.deregister_image, ImageId="ami-12345678")
    assert ec2.describe_images(ImageIds=[img["ImageId"]])["Images"]
