"""VPC networking with real VMs: stateful security groups checked against a
reference model, group references, live group changes, anti-spoofing,
internet gateways and route tables, Elastic IPs, isolation of VPCs with
overlapping blocks.

Every probe runs inside Strato's own namespaces: from `strato-outside` (which
stands for the internet and gets a few documentation addresses,
203.0.113.0/28, as sources) or from inside a guest over SSH.
"""
import ipaddress
import json
import os
import random
import subprocess
import time

import pytest

from helpers import expect, wait_state
from strato_harness import (OUTSIDE_NS, Strato, ensure_image, kill_vms, open_ssh, qemu_pids, ssh, ssh_argv, taps,
                            vm_config, wait_ssh)

REGION = "eu-west-3"
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = [f"203.0.113.{n}" for n in range(1, 10)]
ANY = "0.0.0.0/0"

# Run as root by the guest's user data: ICMP errors unthrottled (the UDP
# probes count on port-unreachable replies), and a tiny agent that runs the
# commands a test drops in /tmp/agent as root (ec2-user has no sudo here).
USER_DATA = """#!/bin/sh
echo 0 > /proc/sys/net/ipv4/icmp_ratelimit
echo 100000 > /proc/sys/net/ipv4/icmp_msgs_per_sec
echo 100000 > /proc/sys/net/ipv4/icmp_msgs_burst
mkdir -p /tmp/agent && chmod 777 /tmp/agent
(while true; do
   if [ -f /tmp/agent/cmd ]; then sh /tmp/agent/cmd > /tmp/agent/out.tmp 2>&1; mv /tmp/agent/out.tmp /tmp/agent/out; rm -f /tmp/agent/cmd; fi
   usleep 100000
 done) > /dev/null 2>&1 &
"""


def probe(probes, timeout=1.5):
    out = subprocess.run(["ip", "netns", "exec", OUTSIDE_NS, "python3", os.path.join(HERE, "netprobe.py"), "probe", str(timeout)],
                         input=json.dumps(probes), capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def reaches(dst, proto="tcp", port=22, src=SOURCES[0]):
    return probe([{"src": src, "dst": dst, "proto": proto, "port": port}])[0]


def eventually(check, want, timeout=10):
    """Polls `check` until it returns `want` (rule changes apply at once, but
    a probe that raced the change may see the old verdict)."""
    deadline = time.time() + timeout
    got = check()
    while got != want and time.time() < deadline:
        time.sleep(0.2)
        got = check()
    return got


def guest(host, pem, command, timeout=30, stdin=None):
    """SSH into a guest, with more time than the harness's default: probes
    from inside guests wait for timeouts of their own."""
    return ssh(host, pem, command, timeout=timeout, input=stdin)


def as_root(host, pem, script):
    """Runs `script` as root in the guest through the user-data agent."""
    wait = "for i in $(seq 300); do if [ -f /tmp/agent/out ]; then cat /tmp/agent/out; rm /tmp/agent/out; exit 0; fi; usleep 100000; done; exit 1"
    r = guest(host, pem, f"cat > /tmp/agent/cmd.new && mv /tmp/agent/cmd.new /tmp/agent/cmd && {wait}", timeout=60, stdin=script)
    assert r.returncode == 0, r.stderr
    return r.stdout


def nc_reaches(host, pem, dst, port):
    """From inside a guest: does a TCP connection to dst:port reach its
    kernel (accepted, or refused by it) rather than time out?"""
    return guest_tcp_probes(host, pem, [(dst, port)])[0]


def pings(host, pem, dst):
    return guest_pings(host, pem, [dst])[0]


def icmp_in_echos(host, pem):
    lines = [l.split() for l in guest(host, pem, "grep '^Icmp:' /proc/net/snmp").stdout.splitlines()]
    return int(dict(zip(lines[0], lines[1]))["InEchos"])


def tcp22(cidr=ANY):
    return {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": cidr}]}


@pytest.fixture(scope="module")
def net():
    """One server, a handful of instances in the default VPC, and the
    outside namespace's probe addresses."""
    ensure_image("minimal")
    s = Strato(config=vm_config()).start()
    try:
        ec2 = s.client(region=REGION)
        default_sg = open_ssh(ec2)
        kp = ec2.create_key_pair(KeyName="net", KeyType="ed25519")
        pem = os.path.join(s.data_dir, "net.pem")
        with open(pem, "w") as f:
            f.write(kp["KeyMaterial"] + "\n")
        os.chmod(pem, 0o600)
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        groups = {}
        for name in ["target", "web", "app", "other"]:
            groups[name] = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=groups[name], IpPermissions=[tcp22()])
        groups["default"] = default_sg
        ami = ec2.describe_images(Owners=["strato"], Filters=[{"Name": "name", "Values": ["*minimal*"]}])["Images"][0]["ImageId"]
        placement = {"target": ["target"], "web": ["web"], "app": ["app"], "other": ["other", "default"], "member": ["default"]}
        inst = {}
        for role, gs in placement.items():
            r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1, KeyName="net", UserData=USER_DATA,
                                  SecurityGroupIds=[groups[g] for g in gs],
                                  TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": role}]}])
            inst[role] = r["Instances"][0]["InstanceId"]
        info = {}
        for role, iid in inst.items():
            i = wait_state(ec2, iid, "running", timeout=120)
            info[role] = {"id": iid, "private": i["PrivateIpAddress"], "public": i["PublicIpAddress"]}
        for n in SOURCES:
            subprocess.run(["ip", "-n", OUTSIDE_NS, "addr", "add", f"{n}/32", "dev", "lo"], check=True)
        for role in info:
            wait_ssh(info[role]["public"], pem, timeout=180)
        yield {"server": s, "ec2": ec2, "pem": pem, "groups": groups, "inst": info, "vpc": vpc, "ami": ami}
    finally:
        s.stop()
        kill_vms(s)


# The reference model: a probe passes when some ingress rule allows it.
def allowed(rules, p):
    for r in rules:
        if ipaddress.ip_address(p["src"]) not in ipaddress.ip_network(r["cidr"]):
            continue
        if r["proto"] == "-1":
            return True
        if r["proto"] != p["proto"]:
            continue
        if r["proto"] == "icmp":
            # Probes are echo requests: type 8, code 0.
            if r["from"] in (-1, 8) and r["to"] in (-1, 0):
                return True
        elif r["from"] <= p["port"] <= r["to"]:
            return True
    return False


def random_rules(rng, n):
    cidrs = ["203.0.113.1/32", "203.0.113.2/31", "203.0.113.4/30", "203.0.113.0/29", "203.0.113.8/32"]
    rules = []
    while len(rules) < n:
        proto = rng.choices(["tcp", "udp", "icmp", "-1"], weights=[4, 4, 2, 1])[0]
        cidr = rng.choice(cidrs)
        if proto in ("tcp", "udp"):
            lo = rng.randint(1000, 1060)
            r = {"proto": proto, "from": lo, "to": lo + rng.randint(0, 15), "cidr": cidr}
        elif proto == "icmp":
            t, c = rng.choice([(-1, -1), (8, -1), (8, 0), (0, -1), (3, -1)])
            r = {"proto": proto, "from": t, "to": c, "cidr": cidr}
        else:
            r = {"proto": "-1", "from": -1, "to": -1, "cidr": cidr}
        if r not in rules:
            rules.append(r)
    return rules


def permission(r):
    p = {"IpProtocol": r["proto"], "IpRanges": [{"CidrIp": r["cidr"]}]}
    if r["proto"] != "-1":
        p["FromPort"], p["ToPort"] = r["from"], r["to"]
    return p


def test_security_groups_match_the_reference_model(net):
    """Random ingress rules (fixed seed) on a running instance, probed from
    nine outside sources with tcp, udp and icmp, in two rounds with rules
    added and revoked in between; every verdict must be the model's."""
    ec2, sg, target = net["ec2"], net["groups"]["target"], net["inst"]["target"]["public"]
    rng = random.Random(20261204)
    ports = sorted(rng.sample(range(995, 1080), 8))
    probes = [{"src": s, "dst": target, "proto": proto, "port": port}
              for s in SOURCES for proto in ("tcp", "udp") for port in ports]
    probes += [{"src": s, "dst": target, "proto": "icmp", "port": 0} for s in SOURCES]
    ssh_rule = {"proto": "tcp", "from": 22, "to": 22, "cidr": ANY}
    current = [ssh_rule]
    try:
        for round_ in range(2):
            wanted = random_rules(rng, 7)
            stale = [r for r in current if r not in wanted and r is not ssh_rule]
            fresh = [r for r in wanted if r not in current]
            if stale:
                ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=[permission(r) for r in stale])
            if fresh:
                ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[permission(r) for r in fresh])
            current = [ssh_rule] + wanted
            expected = [allowed(current, p) for p in probes]
            got = probe(probes)
            wrong = [(p, e) for p, g, e in zip(probes, got, expected) if g != e]
            assert not wrong, f"round {round_}: {len(wrong)} of {len(probes)} probes disagree with the model, e.g. {wrong[:5]}; rules {current}"
            assert any(expected) and not all(expected), "the random rules should allow some probes and deny others"
    finally:
        extra = [r for r in current if r is not ssh_rule]
        if extra:
            ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=[permission(r) for r in extra])


def guest_tcp_probes(host, pem, targets):
    """From inside a guest, in parallel: which (address, port) pairs does a
    TCP connection attempt reach (accepted or refused by the far kernel)?"""
    specs = " ".join(f"{a}:{p}" for a, p in targets)
    script = (f"for t in {specs}; do (a=${{t%:*}}; p=${{t#*:}}; o=$(nc -w 2 $a $p </dev/null 2>&1); rc=$?; "
              "if [ $rc = 0 ] || echo \"$o\" | grep -q refused; then echo \"$t yes\"; else echo \"$t no\"; fi) & done; wait")
    out = guest(host, pem, script, timeout=60).stdout
    seen = dict(line.split() for line in out.splitlines() if line.strip())
    assert len(seen) == len(set(targets)), out
    return [seen[f"{a}:{p}"] == "yes" for a, p in targets]


def guest_pings(host, pem, addresses):
    """From inside a guest, in parallel: which addresses answer a ping? (As
    root: busybox's ping needs a raw socket.)"""
    script = (f"for a in {' '.join(addresses)}; do (if ping -c 1 -W 2 $a >/dev/null 2>&1; then echo \"$a yes\"; "
              "else echo \"$a no\"; fi) & done; wait")
    seen = dict(line.split() for line in as_root(host, pem, script).splitlines() if line.strip())
    return [seen[a] == "yes" for a in addresses]


def matches(rule, proto, port, peer_ip, peer_groups):
    """The reference model of one rule against a probe (tcp port or icmp echo)."""
    if "group" in rule:
        if rule["group"] not in peer_groups:
            return False
    elif ipaddress.ip_address(peer_ip) not in ipaddress.ip_network(rule["cidr"]):
        return False
    if rule["proto"] == "-1":
        return True
    if rule["proto"] != proto:
        return False
    if proto == "icmp":
        return rule["from"] in (-1, 8) and rule["to"] in (-1, 0)
    return rule["from"] <= port <= rule["to"]


def group_permission(r, groups):
    p = {"IpProtocol": r["proto"]}
    if "group" in r:
        p["UserIdGroupPairs"] = [{"GroupId": groups[r["group"]]}]
    else:
        p["IpRanges"] = [{"CidrIp": r["cidr"]}]
    if r["proto"] != "-1":
        p["FromPort"], p["ToPort"] = r["from"], r["to"]
    return p


def random_peer_rules(rng, n, peers):
    rules = []
    while len(rules) < n:
        proto = rng.choices(["tcp", "icmp", "-1"], weights=[6, 2, 1])[0]
        r = dict(rng.choice(peers))
        if proto == "tcp":
            lo = rng.randint(1000, 1040)
            r.update(proto="tcp", **{"from": lo, "to": lo + rng.randint(0, 10)})
        elif proto == "icmp":
            t, c = rng.choice([(-1, -1), (8, -1), (0, -1)])
            r.update(proto="icmp", **{"from": t, "to": c})
        else:
            r.update(proto="-1", **{"from": -1, "to": -1})
        if r not in rules:
            rules.append(r)
    return rules


def edge_ports(rules, rng):
    """Ports worth probing: each tcp rule's first and last port and the ports
    just outside its range, and two more at random."""
    edges = {p for r in rules if r["proto"] == "tcp" for p in (r["from"] - 1, r["from"], r["to"], r["to"] + 1)}
    edges |= set(rng.sample(range(995, 1055), 2))
    return sorted(rng.sample(sorted(edges), min(10, len(edges))))


def test_group_sources_and_egress_match_the_model(net):
    """Random rules (fixed seed) whose peers are referenced groups and VPC
    CIDRs, probed from two guests with tcp and icmp; then random egress rules
    on one guest, probed from it towards the outside. Every verdict must be
    the model's."""
    ec2, g, pem, i = net["ec2"], net["groups"], net["pem"], net["inst"]
    rng = random.Random(4)
    target = i["target"]["private"]
    senders = {"app": {"app"}, "other": {"other", "default"}}
    peers = [{"group": "app"}, {"group": "other"}, {"group": "default"}, {"cidr": f"{i['app']['private']}/32"},
             {"cidr": "172.31.0.0/16"}, {"cidr": "10.0.0.0/8"}]
    ingress = random_peer_rules(rng, 6, peers)
    ports = edge_ports(ingress, rng)
    verdicts = set()
    ec2.authorize_security_group_ingress(GroupId=g["target"], IpPermissions=[group_permission(r, g) for r in ingress])
    try:
        for role, groups in senders.items():
            host, ip = i[role]["public"], i[role]["private"]
            want = [any(matches(r, "tcp", p, ip, groups) for r in ingress) for p in ports]
            got = guest_tcp_probes(host, pem, [(target, p) for p in ports])
            assert got == want, f"tcp from {role}: got {got}, model {want}, rules {ingress}"
            want_icmp = any(matches(r, "icmp", 0, ip, groups) for r in ingress)
            assert guest_pings(host, pem, [target]) == [want_icmp], f"icmp from {role}, rules {ingress}"
            verdicts.update(want)
        assert verdicts == {True, False}, "the random rules should allow some probes and deny others"
    finally:
        ec2.revoke_security_group_ingress(GroupId=g["target"], IpPermissions=[group_permission(r, g) for r in ingress])

    everything = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": ANY}]}
    outside = ["203.0.113.1/32", "203.0.113.2/31", "203.0.113.4/30", "203.0.113.8/32"]
    egress = random_peer_rules(rng, 6, [{"cidr": c} for c in outside])
    ec2.revoke_security_group_egress(GroupId=g["app"], IpPermissions=[everything])
    ec2.authorize_security_group_egress(GroupId=g["app"], IpPermissions=[group_permission(r, g) for r in egress])
    try:
        host = i["app"]["public"]
        targets = [(a, p) for a in SOURCES[:8] for p in edge_ports(egress, rng)[:6]]
        want = [any(matches(r, "tcp", p, a, set()) for r in egress) for a, p in targets]
        got = guest_tcp_probes(host, pem, targets)
        wrong = [(t, w) for t, gt, w in zip(targets, got, want) if gt != w]
        assert not wrong, f"egress tcp disagrees with the model: {wrong}; rules {egress}"
        want_icmp = [any(matches(r, "icmp", 0, a, set()) for r in egress) for a in SOURCES[:8]]
        assert guest_pings(host, pem, SOURCES[:8]) == want_icmp, f"egress icmp, rules {egress}"
        assert any(want) and not all(want)
    finally:
        ec2.revoke_security_group_egress(GroupId=g["app"], IpPermissions=[group_permission(r, g) for r in egress])
        ec2.authorize_security_group_egress(GroupId=g["app"], IpPermissions=[everything])


def test_egress_rules_and_replies(net):
    """Egress narrowed to a few destinations: only those are reachable from
    the instance, while replies of allowed inbound flows (this SSH session)
    still pass."""
    ec2, sg, pem = net["ec2"], net["groups"]["target"], net["pem"]
    host = net["inst"]["target"]["public"]
    everything = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": ANY}]}
    narrow = [
        {"IpProtocol": "tcp", "FromPort": 2000, "ToPort": 2010, "IpRanges": [{"CidrIp": "203.0.113.1/32"}]},
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "203.0.113.3/32"}]},
        {"IpProtocol": "udp", "FromPort": 123, "ToPort": 123, "IpRanges": [{"CidrIp": "203.0.113.2/32"}]},
    ]
    assert nc_reaches(host, pem, "203.0.113.1", 2020), "all egress is allowed by default"
    ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=[everything])
    ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=narrow)
    try:
        assert nc_reaches(host, pem, "203.0.113.1", 2005)
        assert not nc_reaches(host, pem, "203.0.113.1", 2020)
        assert not nc_reaches(host, pem, "203.0.113.2", 2005)
        assert pings(host, pem, "203.0.113.3")
        assert not pings(host, pem, "203.0.113.1")
        # UDP: an outside listener records what arrives (busybox's tftp is
        # the guest's UDP client; port 123 is just the one the rule names).
        listener = subprocess.Popen(["ip", "netns", "exec", OUTSIDE_NS, "python3", os.path.join(HERE, "netprobe.py"), "listen-udp", "123", "8"],
                                    stdout=subprocess.PIPE, text=True)
        assert listener.stdout.readline().strip() == "ready"
        guest(host, pem, "cd /tmp; timeout 2 tftp -g -r probe 203.0.113.2 123; timeout 2 tftp -g -r probe 203.0.113.1 123; true")
        arrived = {json.loads(l)["dst"] for l in listener.stdout.read().splitlines() if l.strip()}
        listener.wait()
        assert arrived == {"203.0.113.2"}, arrived
    finally:
        ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=narrow)
        ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=[everything])


def test_group_references_and_the_default_group(net):
    """`web` admits tcp 1000-1100 and icmp from members of `app`; the default
    group admits its own members; nothing else from inside the VPC gets in."""
    ec2, g, pem, i = net["ec2"], net["groups"], net["pem"], net["inst"]
    ec2.authorize_security_group_ingress(GroupId=g["web"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1000, "ToPort": 1100, "UserIdGroupPairs": [{"GroupId": g["app"]}]},
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "UserIdGroupPairs": [{"GroupId": g["app"]}]}])
    app, other, web, member = (i[r]["public"] for r in ("app", "other", "web", "member"))
    assert nc_reaches(app, pem, i["web"]["private"], 1050)
    assert not nc_reaches(other, pem, i["web"]["private"], 1050)
    assert not nc_reaches(app, pem, i["web"]["private"], 1200)
    assert pings(app, pem, i["web"]["private"])
    assert not pings(other, pem, i["web"]["private"])
    # The default group: `other` and `member` are in it, `app` is not.
    assert nc_reaches(other, pem, i["member"]["private"], 4321)
    assert pings(other, pem, i["member"]["private"])
    assert not nc_reaches(app, pem, i["member"]["private"], 4321)


def test_changing_an_instances_groups_takes_effect_live(net):
    ec2, g, pem, i = net["ec2"], net["groups"], net["pem"], net["inst"]
    app = i["app"]["public"]
    web_private = i["web"]["private"]
    ec2.authorize_security_group_ingress(GroupId=g["web"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3000, "ToPort": 3000, "UserIdGroupPairs": [{"GroupId": g["app"]}]}])
    assert nc_reaches(app, pem, web_private, 3000)
    ec2.modify_instance_attribute(InstanceId=i["app"]["id"], Groups=[g["other"]])
    assert not nc_reaches(app, pem, web_private, 3000)
    eni = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [i["app"]["id"]]}])["NetworkInterfaces"][0]
    assert [x["GroupId"] for x in eni["Groups"]] == [g["other"]]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"], Groups=[g["app"]])
    assert nc_reaches(app, pem, web_private, 3000)


def test_removing_a_rule_keeps_tracked_connections(net):
    """As AWS documents: revoking the rule that admitted a connection does
    not cut it; new connections are refused at once."""
    ec2, g, pem = net["ec2"], net["groups"], net["pem"]
    host = net["inst"]["web"]["public"]
    session = subprocess.Popen(ssh_argv(host, pem, "echo started; sleep 4; echo still-here"), stdout=subprocess.PIPE, text=True)
    try:
        assert session.stdout.readline().strip() == "started"
        ec2.revoke_security_group_ingress(GroupId=g["web"], IpPermissions=[tcp22()])
        assert not reaches(host, "tcp", 22)
        assert session.stdout.readline().strip() == "still-here"
        assert session.wait(timeout=20) == 0
    finally:
        session.kill()
        ec2.authorize_security_group_ingress(GroupId=g["web"], IpPermissions=[tcp22()])
    assert eventually(lambda: reaches(host, "tcp", 22), True)


def test_anti_spoofing_and_the_namespace_itself(net):
    """A guest (as root) that forges its source address or MAC gets nothing
    through; nor can it reach the data plane's own addresses or another
    instance's metadata port."""
    ec2, g, pem, i = net["ec2"], net["groups"], net["pem"], net["inst"]
    app = i["app"]["public"]
    web_private = i["web"]["private"]
    ec2.authorize_security_group_ingress(GroupId=g["web"], IpPermissions=[
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "172.31.0.0/16"}]}])
    web = i["web"]["public"]
    before = icmp_in_echos(web, pem)
    as_root(app, pem, f"ping -c 3 -W 1 {web_private} > /dev/null; true")
    assert icmp_in_echos(web, pem) - before == 3, "control: pings with the real source arrive"
    forged = str(ipaddress.ip_address(i["app"]["private"]) + 100)
    before = icmp_in_echos(web, pem)
    as_root(app, pem, f"ip addr add {forged}/32 dev eth0; ping -c 3 -W 1 -I {forged} {web_private} > /dev/null; ip addr del {forged}/32 dev eth0; true")
    assert icmp_in_echos(web, pem) == before, "pings from a forged source address must not arrive"
    mac = as_root(app, pem, "cat /sys/class/net/eth0/address").strip()
    before = icmp_in_echos(web, pem)
    as_root(app, pem, f"ip link set eth0 address 02:00:00:00:00:99; ping -c 3 -W 1 {web_private} > /dev/null; ip link set eth0 address {mac}; true")
    assert icmp_in_echos(web, pem) == before, "pings from a forged MAC must not arrive"
    wait_ssh(app, pem)  # the real MAC is back: the instance is reachable again
    gateway = str(ipaddress.ip_network(f"{i['app']['private']}/20", strict=False).network_address + 1)
    assert not nc_reaches(app, pem, gateway, 22)
    assert not nc_reaches(app, pem, "169.254.169.254", 20001)


def test_elastic_ip_routes_moves_and_stops(net):
    ec2, pem, i = net["ec2"], net["pem"], net["inst"]
    eip = ec2.allocate_address(Domain="vpc")
    ip, alloc = eip["PublicIp"], eip["AllocationId"]
    assert not reaches(ip), "an unassociated address leads nowhere"
    old = i["member"]["public"]
    ec2.associate_address(AllocationId=alloc, InstanceId=i["member"]["id"])
    hostname = guest(ip, pem, "hostname").stdout.strip()
    assert hostname == ec2.describe_instances(InstanceIds=[i["member"]["id"]])["Reservations"][0]["Instances"][0]["PrivateDnsName"]
    assert not reaches(old), "the instance's previous public address no longer leads to it"
    eni = ec2.describe_network_interfaces(Filters=[{"Name": "association.public-ip", "Values": [ip]}])["NetworkInterfaces"]
    assert [e["Attachment"]["InstanceId"] for e in eni] == [i["member"]["id"]] and eni[0]["Association"]["AllocationId"] == alloc
    # Move it.
    ec2.associate_address(AllocationId=alloc, InstanceId=i["other"]["id"], AllowReassociation=True)
    other_name = ec2.describe_instances(InstanceIds=[i["other"]["id"]])["Reservations"][0]["Instances"][0]["PrivateDnsName"]
    assert guest(ip, pem, "hostname").stdout.strip() == other_name
    # The first instance got a public address back, and answers there.
    back = ec2.describe_instances(InstanceIds=[i["member"]["id"]])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    assert reaches(back)
    i["member"]["public"] = back
    assoc = ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]["AssociationId"]
    ec2.disassociate_address(AssociationId=assoc)
    assert not reaches(ip), "disassociation stops the address at once"
    i["other"]["public"] = ec2.describe_instances(InstanceIds=[i["other"]["id"]])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    wait_ssh(i["other"]["public"], pem)
    # An EIP survives stop and start of its instance.
    ec2.associate_address(AllocationId=alloc, InstanceId=i["target"]["id"])
    ec2.stop_instances(InstanceIds=[i["target"]["id"]])
    wait_state(ec2, i["target"]["id"], "stopped", timeout=60)
    assert ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]["InstanceId"] == i["target"]["id"]
    ec2.start_instances(InstanceIds=[i["target"]["id"]])
    wait_state(ec2, i["target"]["id"], "running", timeout=60)
    wait_ssh(ip, pem, timeout=120)
    ec2.disassociate_address(PublicIp=ip)
    ec2.release_address(AllocationId=alloc)
    assert not reaches(ip)
    i["target"]["public"] = ec2.describe_instances(InstanceIds=[i["target"]["id"]])["Reservations"][0]["Instances"][0]["PublicIpAddress"]


def test_gateways_routes_and_overlapping_vpcs(net):
    """Two VPCs with the same block: each instance is reachable from outside
    only while its subnet routes 0.0.0.0/0 to an attached gateway, and
    neither VPC reaches the other's (or the default VPC's) instances."""
    ec2, pem, ami = net["ec2"], net["pem"], net["ami"]
    made = []
    vpcs, subnets, tables = [], [], []
    for _ in range(2):
        v = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
        s = ec2.create_subnet(VpcId=v, CidrBlock="10.8.1.0/24")["Subnet"]["SubnetId"]
        ec2.modify_subnet_attribute(SubnetId=s, MapPublicIpOnLaunch={"Value": True})
        sg = ec2.create_security_group(GroupName="ssh", Description="ssh", VpcId=v)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[tcp22()])
        vpcs.append(v)
        subnets.append(s)
        tables.append(ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [v]}])["RouteTables"][0]["RouteTableId"])
        r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1, KeyName="net", SubnetId=s,
                              SecurityGroupIds=[sg])
        made.append(r["Instances"][0]["InstanceId"])
    x = [wait_state(ec2, iid, "running", timeout=120) for iid in made]
    assert x[0]["PrivateIpAddress"] == x[1]["PrivateIpAddress"], "the same block gives the same first address"
    pub = [i["PublicIpAddress"] for i in x]
    igws = []
    try:
        # No gateway: a public address that leads nowhere.
        time.sleep(3)
        assert not reaches(pub[0])
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        igws.append(igw)
        expect("InvalidParameterValue", ec2.create_route, RouteTableId=tables[0], DestinationCidrBlock=ANY, GatewayId=igw)
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpcs[0])
        expect("Resource.AlreadyAssociated", ec2.attach_internet_gateway, InternetGatewayId=igw, VpcId=vpcs[1])
        assert not reaches(pub[0]), "attached, but no route to it yet"
        ec2.create_route(RouteTableId=tables[0], DestinationCidrBlock=ANY, GatewayId=igw)
        expect("RouteAlreadyExists", ec2.create_route, RouteTableId=tables[0], DestinationCidrBlock=ANY, GatewayId=igw)
        wait_ssh(pub[0], pem, timeout=120)
        assert not reaches(pub[1]), "the other VPC has no gateway"
        # A subnet with its own table, without the route: cut off again.
        own = ec2.create_route_table(VpcId=vpcs[0])["RouteTable"]["RouteTableId"]
        assoc = ec2.associate_route_table(RouteTableId=own, SubnetId=subnets[0])["AssociationId"]
        assert not reaches(pub[0])
        expect("DependencyViolation", ec2.delete_route_table, RouteTableId=own)
        ec2.disassociate_route_table(AssociationId=assoc)
        ec2.delete_route_table(RouteTableId=own)
        assert eventually(lambda: reaches(pub[0]), True)
        # The second VPC, through its own gateway.
        igw2 = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        igws.append(igw2)
        ec2.attach_internet_gateway(InternetGatewayId=igw2, VpcId=vpcs[1])
        ec2.create_route(RouteTableId=tables[1], DestinationCidrBlock=ANY, GatewayId=igw2)
        wait_ssh(pub[1], pem, timeout=120)
        names = [guest(p, pem, "hostname").stdout.strip() for p in pub]
        assert names[0] == names[1], "same private address, same name: two different machines"
        ids = [guest(p, pem, "wget -q -O - http://169.254.169.254/latest/meta-data/instance-id").stdout.strip() for p in pub]
        assert ids == made
        # Isolation: nothing in the default VPC is reachable by private address.
        target_private = net["inst"]["target"]["private"]
        assert not nc_reaches(pub[0], pem, target_private, 22)
        # Routes and gateway go away, and the address with them.
        ec2.delete_route(RouteTableId=tables[1], DestinationCidrBlock=ANY)
        assert not reaches(pub[1])
        expect("DependencyViolation", ec2.detach_internet_gateway, InternetGatewayId=igw2, VpcId=vpcs[1])
        rt = ec2.describe_route_tables(RouteTableIds=[tables[0]])["RouteTables"][0]
        assert {(r["DestinationCidrBlock"], r["GatewayId"], r["State"]) for r in rt["Routes"]} == {("10.8.0.0/16", "local", "active"), (ANY, igw, "active")}
    finally:
        ec2.terminate_instances(InstanceIds=made)
        for iid in made:
            wait_state(ec2, iid, "terminated", timeout=60)
        for igw, v in zip(igws, vpcs):
            ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=v)
            ec2.delete_internet_gateway(InternetGatewayId=igw)
    for v in vpcs:
        assert not subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count(f"strato-{v}"), \
            "a VPC without instances keeps no namespace"


def test_teardown_leaves_nothing(net):
    """Terminating every instance removes taps, namespaces of VPCs and rules."""
    ec2 = net["ec2"]
    ids = [v["id"] for v in net["inst"].values()]
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_state(ec2, iid, "terminated", timeout=60)
    assert not [p for p in qemu_pids() if net["server"].data_dir in open(f"/proc/{p}/cmdline").read()]
    assert taps() == []
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "strato-vpc-" not in ns
