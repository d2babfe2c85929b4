#!/usr/bin/env python3
"""Floods a pingfleet server's notification port with garbage datagrams, as a hostile
sender would, then prints what the kernel dropped on that port (/proc/net/udp).

    scripts/notify-flood.py PORT [--rate 100000] [--seconds 20]

Loopback only, bounded in count and time. Run it against a `pingfleet run` in its hold
(the port is the `--notify=127.0.0.1:PORT` of its device workers) and read the run's
lost notifications beside the drops printed here: a flood must cost no valid datagram.
"""
import argparse
import socket
import time


def udp_drops(port):
    """Drops the kernel counted on the UDP sockets bound to `port` (IPv4)."""
    total = 0
    with open("/proc/net/udp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port:
                total += int(fields[-1])
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--rate", type=float, default=100_000.0, help="datagrams a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ("127.0.0.1", args.port)
    garbage = [b"user=nobody%d folder=5" % i for i in range(64)] + [b"\xff" * 300, b"x" * 2049]
    before = udp_drops(args.port)
    start = time.monotonic()
    sent = 0
    batch = 100
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= args.seconds:
            break
        due = int(elapsed * args.rate)
        if sent >= due:
            time.sleep(0.0005)
            continue
        for i in range(batch):
            try:
                sender.sendto(garbage[(sent + i) % len(garbage)], target)
            except OSError:
                pass
        sent += batch
    elapsed = time.monotonic() - start
    print(f"sent {sent} garbage datagrams in {elapsed:.1f} s ({sent / elapsed:.0f}/s); "
          f"kernel drops on port {args.port}: {udp_drops(args.port) - before}")


if __name__ == "__main__":
    main()
