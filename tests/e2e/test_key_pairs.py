"""Key pairs, checked against OpenSSH and OpenSSL."""
import hashlib
import os
import subprocess
import tempfile

from helpers import expect

REGION = "eu-west-1"


def run(*cmd, data=None):
    return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout


def test_rsa_key_pair_is_real_and_fingerprinted_like_aws(strato):
    ec2 = strato.client(region=REGION)
    kp = ec2.create_key_pair(KeyName="rsa-key", TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "team", "Value": "a"}]}])
    assert kp["KeyPairId"].startswith("key-")
    assert kp["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert kp["Tags"] == [{"Key": "team", "Value": "a"}]
    # AWS: SHA-1 of the DER-encoded (PKCS#8) private key.
    der = run("openssl", "pkcs8", "-topk8", "-nocrypt", "-outform", "DER", data=kp["KeyMaterial"].encode())
    sha1 = hashlib.sha1(der).hexdigest()
    assert kp["KeyFingerprint"] == ":".join(sha1[i:i + 2] for i in range(0, 40, 2))
    # The private key matches the public key EC2 shows.
    d = tempfile.mkdtemp()
    path = os.path.join(d, "k.pem")
    with open(path, "w") as f:
        f.write(kp["KeyMaterial"])
    os.chmod(path, 0o600)
    derived = run("ssh-keygen", "-y", "-f", path).decode().split()[:2]
    shown = ec2.describe_key_pairs(KeyNames=["rsa-key"], IncludePublicKey=True)["KeyPairs"][0]
    assert shown["PublicKey"].split()[:2] == derived
    assert shown["KeyType"] == "rsa" and shown["KeyFingerprint"] == kp["KeyFingerprint"]
    assert "CreateTime" in shown


def test_ed25519_key_pair(strato):
    ec2 = strato.client(region=REGION)
    kp = ec2.create_key_pair(KeyName="ed-key", KeyType="ed25519")
    assert kp["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    d = tempfile.mkdtemp()
    path = os.path.join(d, "k")
    with open(path, "w") as f:
        f.write(kp["KeyMaterial"] + "\n")
    os.chmod(path, 0o600)
    pub = run("ssh-keygen", "-y", "-f", path).decode()
    fp = run("ssh-keygen", "-l", "-E", "sha256", "-f", "/dev/stdin", data=pub.encode()).decode().split()[1]
    assert fp.startswith("SHA256:")
    assert kp["KeyFingerprint"].rstrip("=") == fp[len("SHA256:"):]


def test_import_key_pair(strato):
    ec2 = strato.client(region=REGION)
    d = tempfile.mkdtemp()
    run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", f"{d}/r")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/e")
    rsa_pub = open(f"{d}/r.pub").read()
    imp = ec2.import_key_pair(KeyName="imported-rsa", PublicKeyMaterial=rsa_pub)
    md5 = run("ssh-keygen", "-l", "-E", "md5", "-f", f"{d}/r.pub").decode().split()[1]
    assert imp["KeyFingerprint"] == md5[len("MD5:"):]
    ed_pub = open(f"{d}/e.pub").read()
    imp2 = ec2.import_key_pair(KeyName="imported-ed", PublicKeyMaterial=ed_pub)
    sha = run("ssh-keygen", "-l", "-E", "sha256", "-f", f"{d}/e.pub").decode().split()[1]
    assert imp2["KeyFingerprint"].rstrip("=") == sha[len("SHA256:"):]
    got = ec2.describe_key_pairs(KeyNames=["imported-ed"], IncludePublicKey=True)["KeyPairs"][0]
    assert got["PublicKey"].split()[:2] == ed_pub.split()[:2] and got["KeyType"] == "ed25519"
    expect("InvalidKey.Format", ec2.import_key_pair, KeyName="junk", PublicKeyMaterial=b"ssh-rsa not-base64!")
    expect("InvalidKey.Format", ec2.import_key_pair, KeyName="junk", PublicKeyMaterial=b"hello")
    assert not [k for k in ec2.describe_key_pairs()["KeyPairs"] if k["KeyName"] == "junk"]


def test_duplicates_filters_and_deletion(strato):
    ec2 = strato.client(region=REGION)
    ec2.create_key_pair(KeyName="dup", KeyType="ed25519")
    expect("InvalidKeyPair.Duplicate", ec2.create_key_pair, KeyName="dup")
    expect("InvalidKeyPair.NotFound", ec2.describe_key_pairs, KeyNames=["absent"])
    expect("InvalidKeyPair.NotFound", ec2.describe_key_pairs, KeyPairIds=["key-0123456789abcdef0"])
    by_type = ec2.describe_key_pairs(Filters=[{"Name": "key-type", "Values": ["ed25519"]}])["KeyPairs"]
    assert "dup" in [k["KeyName"] for k in by_type]
    assert all(k["KeyType"] == "ed25519" for k in by_type)
    assert "PublicKey" not in by_type[0]
    kid = ec2.describe_key_pairs(KeyNames=["dup"])["KeyPairs"][0]["KeyPairId"]
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-pair-id", "Values": [kid]}])["KeyPairs"][0]["KeyName"] == "dup"
    r = ec2.delete_key_pair(KeyPairId=kid)
    assert r["Return"] is True and r["KeyPairId"] == kid
    expect("InvalidKeyPair.NotFound", ec2.describe_key_pairs, KeyNames=["dup"])
    # Deleting a name that does not exist succeeds, as on AWS.
    assert ec2.delete_key_pair(KeyName="never-existed")["Return"] is True
    expect("InvalidParameterValue", ec2.create_key_pair, KeyName="bad", KeyType="dsa")
    expect("MissingParameter", ec2.create_key_pair, KeyName="")
