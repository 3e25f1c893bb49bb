import time

import pytest
from botocore.exceptions import ClientError


def expect(code, fn, *args, **kwargs):
    """Calls fn and checks it fails with the EC2 error `code`."""
    with pytest.raises(ClientError) as e:
        fn(*args, **kwargs)
    err = e.value.response["Error"]
    assert err["Code"] == code, f"expected {code}, got {err}"
    assert err.get("Message"), "errors carry a message"
    return e.value.response


def wait_state(ec2, iid, state, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        r = ec2.describe_instances(InstanceIds=[iid])
        last = r["Reservations"][0]["Instances"][0]["State"]["Name"]
        if last == state:
            return r["Reservations"][0]["Instances"][0]
        time.sleep(0.05)
    raise AssertionError(f"{iid} stayed {last}, wanted {state}")


def default_subnet(ec2, zone=None):
    f = [{"Name": "default-for-az", "Values": ["true"]}]
    if zone:
        f.append({"Name": "availability-zone", "Values": [zone]})
    return ec2.describe_subnets(Filters=f)["Subnets"][0]


def minimal_image(ec2):
    imgs = ec2.describe_images(Owners=["strato"], Filters=[{"Name": "name", "Values": ["*minimal*"]}])["Images"]
    assert imgs, "the minimal image is registered"
    return imgs[0]["ImageId"]


def launch(ec2, **kw):
    args = dict(ImageId=minimal_image(ec2), InstanceType="t2.micro", MinCount=1, MaxCount=1)
    args.update(kw)
    return ec2.run_instances(**args)
