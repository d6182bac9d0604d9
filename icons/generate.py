#!/usr/bin/env python3
"""Draws the Passkey Companion app icon (a white key on an indigo-to-sky rounded square) with the standard
library only, and writes the RGBA PNGs and the .ico that src-tauri/tauri.conf.json references.

Run from anywhere: `python3 icons/generate.py`. The outputs are committed; rerun only to change the design.
"""

import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

TOP = (79, 70, 229)  # indigo-600
BOTTOM = (14, 165, 233)  # sky-500


def rounded_square(x, y, half, radius):
    """Signed distance to a rounded square centred at the origin."""
    qx = abs(x) - half + radius
    qy = abs(y) - half + radius
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - radius


def box(x, y, x0, y0, x1, y1):
    """Signed distance to an axis-aligned box."""
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hx, hy = (x1 - x0) / 2, (y1 - y0) / 2
    qx, qy = abs(x - cx) - hx, abs(y - cy) - hy
    return math.hypot(max(qx, 0.0), max(qy, 0.0)) + min(max(qx, qy), 0.0)


def key(x, y):
    """Signed distance to the key glyph, drawn horizontally, then tilted by 45 degrees."""
    # Rotate the sample point about the centre so the key points to the lower right.
    angle = math.radians(-40)
    dx, dy = x - 0.5, y - 0.5
    x, y = 0.5 + dx * math.cos(angle) - dy * math.sin(angle), 0.5 + dx * math.sin(angle) + dy * math.cos(angle)
    ring = abs(math.hypot(x - 0.32, y - 0.5) - 0.115) - 0.05
    shaft = box(x, y, 0.42, 0.465, 0.80, 0.535)
    tooth1 = box(x, y, 0.64, 0.50, 0.69, 0.62)
    tooth2 = box(x, y, 0.735, 0.50, 0.80, 0.655)
    return min(ring, shaft, tooth1, tooth2)


def coverage(distance, pixel):
    """Anti-aliased coverage of a shape at a signed distance, in units of one pixel."""
    return min(1.0, max(0.0, 0.5 - distance / pixel))


def render(size):
    pixel = 1.0 / size
    rows = []
    for j in range(size):
        row = bytearray()
        y = (j + 0.5) / size
        t = y
        bg = [TOP[i] + (BOTTOM[i] - TOP[i]) * t for i in range(3)]
        for i in range(size):
            x = (i + 0.5) / size
            a_bg = coverage(rounded_square(x - 0.5, y - 0.5, 0.46, 0.11), pixel)
            a_key = coverage(key(x, y), pixel) * a_bg
            rgb = [bg[c] * (1 - a_key) + 255 * a_key for c in range(3)]
            row += bytes(int(round(v)) for v in rgb) + bytes([int(round(255 * a_bg))])
        rows.append(bytes(row))
    return rows


def png(rows, size):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def ico(images):
    """An .ico holding PNG-compressed images (supported since Windows Vista)."""
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    entries, blobs = b"", b""
    for size, data in images:
        dim = 0 if size >= 256 else size
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        blobs += data
        offset += len(data)
    return header + entries + blobs


def main():
    outputs = {}
    for size in (32, 128, 256, 512):
        outputs[size] = png(render(size), size)
    files = {
        "32x32.png": outputs[32],
        "128x128.png": outputs[128],
        "128x128@2x.png": outputs[256],
        "icon.png": outputs[512],
        "icon.ico": ico([(32, outputs[32]), (128, outputs[128]), (256, outputs[256])]),
    }
    for name, data in files.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        print(f"wrote icons/{name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
