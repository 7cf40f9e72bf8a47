#!/usr/bin/env python3
"""Draws the app icons (the cross of icon.svg, white on the brand blue) as PNGs.

    python3 crates/api/static/icons.py   writes icon-192.png, icon-512.png, icon-maskable-512.png

Standard library only (zlib). The maskable icon fills its square and keeps the cross in
the central 40 %, inside the safe zone a launcher's mask never cuts.
"""
import os
import struct
import zlib

BLUE = (0x0B, 0x53, 0x94)
WHITE = (0xFF, 0xFF, 0xFF)


def png(size, pixel):
    rows = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y, size)) for x in range(size)) for y in range(size)
    )

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def cross(x, y, size, scale):
    # icon.svg's cross on a 16-unit grid: arms 2 units wide, 10 long, centred.
    u = (x + 0.5) / size * 16, (y + 0.5) / size * 16
    cx, cy = (u[0] - 8) / scale, (u[1] - 8) / scale
    return (abs(cx) <= 1 and abs(cy) <= 5) or (abs(cy) <= 1 and abs(cx) <= 5)


def rounded(x, y, size):
    # icon.svg's rounded corners: radius 3 of 16.
    r = size * 3 / 16
    dx = max(r - x - 0.5, x + 0.5 - (size - r), 0)
    dy = max(r - y - 0.5, y + 0.5 - (size - r), 0)
    return dx * dx + dy * dy <= r * r


def any_icon(x, y, size):
    if not rounded(x, y, size):
        return (0, 0, 0, 0)
    return (*(WHITE if cross(x, y, size, 1.0) else BLUE), 255)


def maskable(x, y, size):
    return (*(WHITE if cross(x, y, size, 0.8) else BLUE), 255)


here = os.path.dirname(os.path.abspath(__file__))
for name, size, pixel in [
    ("icon-192.png", 192, any_icon),
    ("icon-512.png", 512, any_icon),
    ("icon-maskable-512.png", 512, maskable),
]:
    with open(os.path.join(here, name), "wb") as f:
        f.write(png(size, pixel))
    print("wrote", name)
