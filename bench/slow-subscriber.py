#!/usr/bin/env python3
"""A subscriber that reads slowly, for the voice profile: a 4 KiB receive buffer (so the
kernel cannot hide a slow reader behind megabytes of socket buffers, as it would for a
Node socket) and at most RATE bytes a second. On a line on stdin it reads at full speed
until the broker has been quiet for a second, then prints how many PUBLISH packets it got.

usage: slow-subscriber.py PORT FILTER RATE CLIENT_ID
"""
import select, socket, struct, sys, time

port, flt, rate, cid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]

def pkt(first, body):
    n, head = len(body), bytearray([first])
    while True:
        b, n = n % 128, n // 128
        head.append(b | (0x80 if n else 0))
        if not n:
            return bytes(head) + body

def s16(b):
    return struct.pack(">H", len(b)) + b

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(pkt(0x10, s16(b"MQTT") + bytes([4, 2, 0, 0]) + s16(cid.encode())))
s.sendall(pkt(0x82, b"\x00\x01" + s16(flt.encode()) + b"\x00"))

buf = bytearray()
count = 0
subacked = False

def parse():
    global buf, count, subacked
    at = 0
    while len(buf) - at >= 2:
        n, mul, i = 0, 1, at + 1
        while i < len(buf) and i < at + 5:
            b = buf[i]; i += 1
            n += (b & 0x7F) * mul; mul *= 128
            if not b & 0x80:
                break
        else:
            break
        if i + n > len(buf):
            break
        t = buf[at] >> 4
        if t == 3:
            count += 1
        elif t == 9 and not subacked:
            subacked = True
            print("subscribed", flush=True)
        at = i + n
    del buf[:at]

# slow phase: `rate` bytes a second, in ten slices, until stdin says "drain"
slice_bytes = max(1, rate // 10)
while True:
    r, _, _ = select.select([sys.stdin], [], [], 0.1)
    if r:
        sys.stdin.readline()
        break
    try:
        s.setblocking(False)
        data = s.recv(slice_bytes)
    except BlockingIOError:
        data = b""
    if data:
        buf += data
        parse()

# drain at full speed until quiet for a second
s.setblocking(True)
s.settimeout(1.0)
while True:
    try:
        data = s.recv(1 << 16)
    except socket.timeout:
        break
    if not data:
        break
    buf += data
    parse()
print("received", count, flush=True)
s.close()
