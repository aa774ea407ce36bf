#!/usr/bin/env python3
"""Reads an strace log of accept/accept4/connect/setsockopt (strace -f) and
says whether TCP_NODELAY was turned on for accepted (client-side) sockets
and for sockets connected to the upstream port.

Usage: nodelay.py STRACE_LOG UPSTREAM_PORT   (port 0: not a proxy)
Prints: client=yes|no|? upstream=yes|no|?|-
  yes: every such socket got TCP_NODELAY=1; no: none did; some: some did;
  ?: the trace saw no such socket (e.g. the connection predates it).
"""
import re
import sys

path, up_port = sys.argv[1], int(sys.argv[2])
accepted, upstream, nodelay = set(), set(), set()
# strace -f splits calls interrupted by another thread:
#   "123 accept4(9, ... <unfinished ...>" then "123 <... accept4 resumed>...) = 17"
pending = {}
for line in open(path, errors="replace"):
    m = re.match(r"(\d+)\s+(.*)", line.rstrip("\n"))
    if not m:
        continue
    tid, rest = m.groups()
    if rest.endswith("<unfinished ...>"):
        pending[tid] = rest[: -len("<unfinished ...>")]
        continue
    r = re.match(r"<\.\.\. \w+ resumed>(.*)", rest)
    if r:
        rest = pending.pop(tid, "") + r.group(1)
    call = re.match(r"(\w+)\((.*)\)\s+=\s+(-?\d+)", rest)
    if not call:
        continue
    name, args, ret = call.group(1), call.group(2), int(call.group(3))
    if name in ("accept", "accept4") and ret >= 0:
        accepted.add(ret)
    elif name == "connect":
        fd = int(args.split(",", 1)[0])
        if up_port and f"sin_port=htons({up_port})" in args:
            upstream.add(fd)
    elif name == "setsockopt" and "TCP_NODELAY" in args and ret == 0:
        fd = int(args.split(",", 1)[0])
        if "[1]" in args:
            nodelay.add(fd)
        else:
            nodelay.discard(fd)


def verdict(fds):
    if not fds:
        return "?"
    on = len(fds & nodelay)
    return "yes" if on == len(fds) else "no" if on == 0 else f"some ({on}/{len(fds)})"


print(f"client={verdict(accepted)} upstream={verdict(upstream) if up_port else '-'}")
