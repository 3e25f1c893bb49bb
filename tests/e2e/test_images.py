"""CreateImage and RegisterImage against the control plane (simulated runtime;
test_vm.py boots a made image for real)."""
from helpers import expect, launch, wait_state
from strato_harness import BOB, error_code

REGION = "sa-east-1"


def test_create_image_from_an_instance(strato):
    ec2 = strato.client(region=REGION)
    iid = launch(ec2)["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    # A running instance needs NoReboot (a crash-consistent copy); EC2 would
    # otherwise reboot it, which Strato does not do behind the user's back.
    expect("IncorrectInstanceState", ec2.create_image, InstanceId=iid, Name="web-image")
    # boto3 insists on Name itself; send the request by hand.
    status, body = strato.raw({"Action": "CreateImage", "InstanceId": iid}, region=REGION)
    assert (status, error_code(body)) == (400, "MissingParameter")
    status, body = strato.raw({"Action": "CreateImage", "InstanceId": iid, "Name": "x", "NoReboot": "true"}, region=REGION)
    assert (status, error_code(body)) == (400, "InvalidAMIName.Malformed")
    expect("InvalidAMIName.Malformed", ec2.create_image, InstanceId=iid, Name="bad*name", NoReboot=True)
    expect("InvalidInstanceID.NotFound", ec2.create_image, InstanceId="i-0123456789abcdef0", Name="web-image")
    expect("DryRunOperation", ec2.create_image, InstanceId=iid, Name="web-image", NoReboot=True, DryRun=True)
    assert ec2.describe_images(Owners=["self"])["Images"] == []

    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    made = ec2.create_image(InstanceId=iid, Name="web-image (v1)", Description="my web server",
                            TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "role", "Value": "web"}]}])
    ami = made["ImageId"]
    assert ami.startswith("ami-")
    img = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert img["Name"] == "web-image (v1)" and img["Description"] == "my web server"
    assert img["Public"] is False and img["OwnerId"] == "111111111111" and "ImageOwnerAlias" not in img
    assert img["State"] in ("pending", "available")
    assert img["Tags"] == [{"Key": "role", "Value": "web"}]
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [ami]
    expect("InvalidAMIName.Duplicate", ec2.create_image, InstanceId=iid, Name="web-image (v1)")

    # The new image launches, and another account cannot see it.
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    child = launch(ec2, ImageId=ami)["Instances"][0]
    assert child["ImageId"] == ami
    other = strato.client(region=REGION, account=BOB)
    expect("InvalidAMIID.NotFound", other.describe_images, ImageIds=[ami])
    expect("InvalidAMIID.NotFound", other.deregister_image, ImageId=ami)
    ec2.terminate_instances(InstanceIds=[iid, child["InstanceId"]])
    ec2.deregister_image(ImageId=ami)
    assert ec2.describe_images(Owners=["self"])["Images"] == []


def test_register_image_validation(strato):
    ec2 = strato.client(region=REGION)
    status, body = strato.raw({"Action": "RegisterImage", "Name": "imported"}, region=REGION)
    assert (status, error_code(body)) == (400, "MissingParameter") and "ImageLocation" in body
    expect("InvalidParameterValue", ec2.register_image, Name="imported", ImageLocation="disk.qcow2", Architecture="arm64")
    expect("InvalidParameterValue", ec2.register_image, Name="imported", ImageLocation="disk.qcow2",
           VirtualizationType="paravirtual")
    expect("InvalidAMIName.Malformed", ec2.register_image, Name="bad!name", ImageLocation="disk.qcow2")
    assert ec2.describe_images(Owners=["self"])["Images"] == []
