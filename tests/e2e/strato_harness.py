"""Starts and stops a real `strato serve` for the end-to-end suite.

Every server gets its own data directory and a free loopback port (it is asked
to listen on port 0 and the port is read back from its "ready" log line).
"""
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("STRATO_BIN", os.path.join(ROOT, "target", "release", "strato"))

ALICE = ("111111111111", "AKIDALICE000000000001", "alice-secret-key-000000000000000000000001")
BOB = ("222222222222", "AKIDBOB00000000000002", "bob-secret-key-00000000000000000000000002")

DEFAULT_CONFIG = f"""
[runtime]
kind = "simulated"
simulated_delay_ms = 50

[[accounts]]
id = "{ALICE[0]}"
[[accounts.access_keys]]
access_key_id = "{ALICE[1]}"
secret_access_key = "{ALICE[2]}"

[[accounts]]
id = "{BOB[0]}"
[[accounts.access_keys]]
access_key_id = "{BOB[1]}"
secret_access_key = "{BOB[2]}"
"""


class Strato:
    def __init__(self, config=DEFAULT_CONFIG, data_dir=None, listen="127.0.0.1:0"):
        self.config = config
        self.listen = listen
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="strato-e2e-")
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.data_dir, "serve.log")

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        args = [BINARY, "serve", "--listen", self.listen, "--data-dir", self.data_dir]
        if self.config is not None:
            cfg = os.path.join(self.data_dir, "strato.toml")
            with open(cfg, "w") as f:
                f.write(self.config)
            args += ["--config", cfg]
        log = open(self.log_path, "a")
        env = dict(os.environ, STRATO_LOG=os.environ.get("STRATO_LOG", "info"))
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strato exited with {self.proc.returncode}:\n{self.log()}")
            m = re.findall(r"strato is ready listen=127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.port = int(m[-1])
                return self
            time.sleep(0.05)
        raise RuntimeError(f"strato did not become ready:\n{self.log()}")

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.stop()
        # Reading the log for the new "ready" line needs the old ones gone.
        os.rename(self.log_path, self.log_path + f".{int(time.time() * 1000)}")
        return self.start()

    def client(self, account=ALICE, region="us-east-1", service="ec2"):
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id=account[1],
            aws_secret_access_key=account[2],
            config=Config(retries={"max_attempts": 1}),
        )

    def raw(self, params, account=ALICE, region="us-east-1", method="POST", sign=True, headers=None,
            body=None, date=None, service="ec2", version="2016-11-15"):
        """Sends a hand-made EC2 Query request; returns (status, body text)."""
        params = dict(params)
        if version is not None:
            params.setdefault("Version", version)
        from urllib.parse import urlencode
        encoded = urlencode(params)
        url = self.endpoint + "/"
        data = None
        hdrs = {}
        if method == "POST":
            data = encoded.encode() if body is None else body
            hdrs["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        else:
            url += "?" + encoded
        hdrs.update(headers or {})
        req = botocore.awsrequest.AWSRequest(method=method, url=url, data=data, headers=hdrs)
        if sign:
            creds = botocore.credentials.Credentials(account[1], account[2])
            signer = botocore.auth.SigV4Auth(creds, service, region)
            if date is not None:
                # botocore reads the clock inside add_auth; sign as of `date`.
                import unittest.mock
                with unittest.mock.patch("botocore.auth.get_current_datetime", return_value=date):
                    signer.add_auth(req)
            else:
                signer.add_auth(req)
        prepared = req.prepare()
        r = urllib.request.Request(prepared.url, data=prepared.body, method=method, headers=dict(prepared.headers))
        try:
            with urllib.request.urlopen(r, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


def error_code(body):
    m = re.search(r"<Code>([^<]+)</Code>", body)
    return m.group(1) if m else None


# ---- real VMs -----------------------------------------------------------------

IMAGES = os.environ.get("STRATO_TEST_IMAGES", os.path.join(ROOT, "target", "test-images"))
OUTSIDE_NS = "strato-outside"


def ensure_image(name):
    """Builds a built-in image once for the whole run (they are shared by
    every server the tests start)."""
    if not os.path.exists(os.path.join(IMAGES, name, "manifest.json")):
        subprocess.run([BINARY, "image", "build", name, "--images-dir", IMAGES], check=True)


def vm_config(accounts=True, extra="", images=IMAGES):
    cfg = f'images_dir = "{images}"\n[runtime]\nkind = "qemu"\nstop_timeout_secs = 20\nbuild_default_image = false\n{extra}\n'
    if accounts:
        cfg += DEFAULT_CONFIG.split("[runtime]")[0] + DEFAULT_CONFIG.split('simulated_delay_ms = 50\n')[1]
    return cfg


def open_ssh(ec2):
    """Lets SSH from anywhere into members of the region's default security
    group, which (as on AWS) admits only its own members until told otherwise."""
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return group


def ssh_argv(host, key_path, command, user="ec2-user"):
    """The OpenSSH command line that runs `command` on an instance from the
    outside namespace."""
    return ["ip", "netns", "exec", OUTSIDE_NS, "ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=2", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-i", key_path, f"{user}@{host}", command]


def ssh(host, key_path, command, user="ec2-user", timeout=10, input=None, stdin=None):
    """Runs `command` on an instance over SSH from the outside namespace;
    `input` (text) or `stdin` (an open file) feeds the remote command."""
    return subprocess.run(ssh_argv(host, key_path, command, user), capture_output=True, text=stdin is None,
                          timeout=timeout, input=input, stdin=stdin)


def wait_ssh(host, key_path, command="true", user="ec2-user", timeout=120):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = ssh(host, key_path, command, user=user)
        except subprocess.TimeoutExpired:
            continue
        if last.returncode == 0:
            return last.stdout
        time.sleep(0.2)
    raise AssertionError(f"no SSH to {host}: {last.stderr if last else ''}")


def qemu_pids():
    out = subprocess.run(["pgrep", "-f", "qemu-system-x86_64.*-name strato-i-"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def taps():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = []
    for ns in [l.split()[0] for l in out.splitlines() if l.startswith("strato-vpc-")]:
        links = subprocess.run(["ip", "-n", ns, "-o", "link", "show"], capture_output=True, text=True).stdout
        names += [l.split(":")[1].strip() for l in links.splitlines() if l.split(":")[1].strip().startswith("t")]
    return names


def kill_vms(server):
    """Kills every QEMU of `server` (they outlive strato by design) and
    removes the namespaces: what a test leaves behind even when it fails."""
    for pid in qemu_pids():
        try:
            if server.data_dir in open(f"/proc/{pid}/cmdline").read():
                os.kill(pid, 9)
        except OSError:
            pass
    remove_namespaces()


def remove_namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for ns in [l.split()[0] for l in out.splitlines() if l.startswith("strato-")]:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
