"""Network probes, run inside one of Strato's namespaces
(`ip netns exec strato-outside python3 netprobe.py`).

`probe`: reads a JSON list of {"src", "dst", "proto", "port"} on stdin and
prints a JSON list of booleans: did the probe reach the destination's kernel?
A TCP connection accepted or refused (RST), a UDP datagram answered or
refused (ICMP port unreachable), an ICMP echo answered all count as reached;
silence until the timeout means something dropped it. So no listener is
needed on the far side, and a firewall's verdict is all that is measured.

`listen-udp PORT SECONDS`: prints the source and destination of every UDP
datagram that arrives on PORT during SECONDS, one JSON object per line.
"""
import concurrent.futures
import json
import os
import socket
import struct
import sys
import time


def transport(kind, src, dst, port, timeout):
    """One TCP connection attempt or one UDP datagram (which wants an answer):
    reached when the far kernel accepts, answers or refuses it."""
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind((src, 0))
        s.settimeout(timeout)
        s.connect((dst, port))
        if kind == socket.SOCK_DGRAM:
            s.send(b"strato-probe")
            s.recv(512)
        return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def icmp(src, dst, timeout):
    ident = int.from_bytes(os.urandom(2), "big")
    body = b"strato-probe"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    packet = struct.pack("!BBHHH", 8, 0, checksum(header + body), ident, 1) + body
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        s.bind((src, 0))
        s.sendto(packet, (dst, 0))
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                return False
            s.settimeout(left)
            try:
                data, addr = s.recvfrom(2048)
            except OSError:
                return False
            ihl = (data[0] & 0x0F) * 4
            kind, _, _, rid, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if addr[0] == dst and kind == 0 and rid == ident:
                return True
    finally:
        s.close()


def run(p, timeout):
    if p["proto"] in ("tcp", "udp"):
        kind = socket.SOCK_STREAM if p["proto"] == "tcp" else socket.SOCK_DGRAM
        return transport(kind, p["src"], p["dst"], p["port"], timeout)
    return icmp(p["src"], p["dst"], timeout)


def main():
    if sys.argv[1] == "probe":
        probes = json.load(sys.stdin)
        timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
            print(json.dumps(list(pool.map(lambda p: run(p, timeout), probes))))
    elif sys.argv[1] == "listen-udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_IP, 8, 1)  # IP_PKTINFO: learn the destination address too
        s.bind(("0.0.0.0", int(sys.argv[2])))
        print("ready", flush=True)
        deadline = time.time() + float(sys.argv[3])
        while time.time() < deadline:
            s.settimeout(max(0.01, deadline - time.time()))
            try:
                _, anc, _, addr = s.recvmsg(512, 64)
            except OSError:
                continue
            dst = next((socket.inet_ntoa(d[8:12]) for lvl, kind, d in anc if kind == 8), None)
            print(json.dumps({"src": addr[0], "dst": dst}), flush=True)


if __name__ == "__main__":
    main()
