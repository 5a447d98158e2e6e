#!/usr/bin/env python3
"""Draws trainlab's icon: a small network (3-4-2 nodes with their links) on a
rounded square, with a falling loss curve behind it. Writes the same geometry
as SVG (assets/icons/trainlab.svg) and, rasterised here with 4x4 supersampling
and nothing but the standard library, as PNG (assets/icons/trainlab.png,
256x256). Run from the repository root: python3 assets/tools/make_icon.py
"""

import math
import struct
import zlib

SIZE = 256
BG = (32, 84, 120)        # deep blue
CURVE = (250, 190, 70)    # amber loss curve
LINK = (200, 225, 240)    # pale links
NODE = (255, 255, 255)
RADIUS = 44               # corner radius of the square

LAYERS = [
    [(64, y) for y in (78, 128, 178)],
    [(128, y) for y in (60, 105, 151, 196)],
    [(192, y) for y in (100, 156)],
]
LINKS = [(a, b) for i in range(len(LAYERS) - 1) for a in LAYERS[i] for b in LAYERS[i + 1]]
NODE_R = 13
LINK_W = 3.2
# The loss curve: exp decay from top left to bottom right.
CURVE_PTS = [(24 + 208 * t, 58 + 150 * (1 - math.exp(-4 * t)) / (1 - math.exp(-4)))
             for t in [k / 40 for k in range(41)]]
CURVE_W = 9


def svg():
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" '
        f'viewBox="0 0 {SIZE} {SIZE}">',
        f'<rect x="8" y="8" width="{SIZE - 16}" height="{SIZE - 16}" rx="{RADIUS}" '
        f'fill="rgb{BG}"/>',
        '<polyline fill="none" stroke-linecap="round" stroke-linejoin="round" '
        f'stroke="rgb{CURVE}" stroke-width="{CURVE_W}" opacity="0.9" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in CURVE_PTS) + '"/>',
    ]
    for (x1, y1), (x2, y2) in LINKS:
        parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
                     f'stroke="rgb{LINK}" stroke-width="{LINK_W}"/>')
    for layer in LAYERS:
        for x, y in layer:
            parts.append(f'<circle cx="{x}" cy="{y}" r="{NODE_R}" fill="rgb{NODE}" '
                         f'stroke="rgb{BG}" stroke-width="3"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def seg_dist(px, py, a, b):
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - ax - t * dx, py - ay - t * dy)


def inside_rounded(px, py):
    lo, hi = 8 + RADIUS, SIZE - 8 - RADIUS
    cx, cy = min(max(px, lo), hi), min(max(py, lo), hi)
    return math.hypot(px - cx, py - cy) <= RADIUS and 8 <= px <= SIZE - 8 and 8 <= py <= SIZE - 8


def colour_at(px, py):
    """The colour of one sample point, painted in SVG order, or None outside."""
    if not inside_rounded(px, py):
        return None
    c = BG
    curve = [(CURVE_PTS[i], CURVE_PTS[i + 1]) for i in range(len(CURVE_PTS) - 1)]
    if min(seg_dist(px, py, a, b) for a, b in curve) <= CURVE_W / 2:
        c = tuple(round(0.9 * f + 0.1 * g) for f, g in zip(CURVE, c))
    if any(seg_dist(px, py, a, b) <= LINK_W / 2 for a, b in LINKS):
        c = LINK
    for layer in LAYERS:
        for x, y in layer:
            d = math.hypot(px - x, py - y)
            if d <= NODE_R + 1.5:
                c = NODE if d <= NODE_R - 1.5 else BG
    return c


def png():
    rows = []
    n = 4
    for y in range(SIZE):
        row = bytearray([0])
        for x in range(SIZE):
            acc = [0, 0, 0, 0]
            for sy in range(n):
                for sx in range(n):
                    c = colour_at(x + (sx + 0.5) / n, y + (sy + 0.5) / n)
                    if c is not None:
                        acc = [acc[0] + c[0], acc[1] + c[1], acc[2] + c[2], acc[3] + 255]
            a = acc[3] // (n * n)
            cov = acc[3] // 255
            row += bytes([acc[k] // cov if cov else 0 for k in range(3)] + [a])
        rows.append(bytes(row))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
            + chunk(b"IEND", b""))


if __name__ == "__main__":
    with open("assets/icons/trainlab.svg", "w") as f:
        f.write(svg())
    with open("assets/icons/trainlab.png", "wb") as f:
        f.write(png())
