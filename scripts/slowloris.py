#!/usr/bin/env python3
"""Holds many connections open to a server's EAS port, each sending a request head a
byte at a time, as a slowloris client does (reopening those the server closes), for a
bounded time, then closes them.

    scripts/slowloris.py PORT [--connections 8000] [--seconds 30] [--interval 2]

Loopback only. One process holds at most --connections sockets (the open-file limit
here is 20,000 a process): run several for more. Against TLS the bytes are no
ClientHello at all, which a TLS server must also wait for or time out.
"""
import argparse
import resource
import socket
import time

HEAD = b"POST /Microsoft-Server-ActiveSync?Cmd=Ping&User=x&DeviceId=x&DeviceType=x HTTP/1.1\r\nHost: x\r\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--connections", type=int, default=8000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between bytes")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    wanted = min(args.connections, hard - 100)
    start = time.monotonic()
    sockets, refused = [], 0
    while len(sockets) + refused < wanted and time.monotonic() - start < args.seconds:
        try:
            sockets.append(socket.create_connection(("127.0.0.1", args.port), timeout=2))
        except OSError:
            refused += 1
    opened = len(sockets)
    position, closed = 0, 0
    while time.monotonic() - start < args.seconds:
        byte = HEAD[position % len(HEAD):position % len(HEAD) + 1]
        for index, sock in enumerate(sockets):
            try:
                sock.send(byte)
            except OSError:
                # Closed by the server (its head timeout): open another in its place.
                closed += 1
                sock.close()
                try:
                    sockets[index] = socket.create_connection(("127.0.0.1", args.port), timeout=2)
                    sockets[index].send(HEAD[:position % len(HEAD)])
                except OSError:
                    refused += 1
        position += 1
        time.sleep(args.interval)
    for sock in sockets:
        sock.close()
    print(f"held {opened} connections, reopening the {closed} the server closed "
          f"({refused} refused) for {args.seconds:.0f} s")


if __name__ == "__main__":
    main()
