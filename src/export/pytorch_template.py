#!/usr/bin/env python3
"""{{NAME}}: the trainlab experiment as a standalone PyTorch script.

Written by `trainlab export pytorch`. It builds the same model (the parameter
names and layouts match trainlab's, so a trainlab run's model.safetensors loads
into it), reads the same data the same way, and trains with the same settings.

    python this_script.py                  # train, then print the test figures
    python this_script.py --eval-only [W]  # evaluate trained weights W (safetensors)

Needs: torch, numpy, safetensors.
"""

import argparse
import gzip
import json
import math
import struct

import numpy as np
import torch
from torch import nn

# ----- Data: {{SOURCE}} ({{SOURCE_KIND}}) -----
TRAIN_IMAGES = {{TRAIN_IMAGES}}
TRAIN_LABELS = {{TRAIN_LABELS}}
TEST_IMAGES = {{TEST_IMAGES}}
TEST_LABELS = {{TEST_LABELS}}
# trainlab's validation split, as indices into the training images kept.
SPLIT = {{SPLIT}}
TRAIN_LIMIT = {{TRAIN_LIMIT}}  # keep the first N training images (None: all)
TEST_LIMIT = {{TEST_LIMIT}}
MEAN, STD = {{MEAN}}, {{STD}}  # pixels are scaled to [0, 1], then standardised
MAX_SHIFT = {{MAX_SHIFT}}  # augmentation: random shifts of up to this many pixels
CLASSES = {{CLASSES}}
SEED = {{SEED}}

# ----- Training -----
EPOCHS = {{EPOCHS}}
BATCH = {{BATCH}}
LOG_EVERY = {{LOG_EVERY}}  # steps between progress lines
EVAL_EVERY = {{EVAL_EVERY}}  # steps between validation passes (None: every epoch)
CLIP = {{CLIP}}  # gradient norm clipping (None: off)
PATIENCE = {{PATIENCE}}  # early stopping: evaluations without improvement (None: off)
MIN_DELTA = {{MIN_DELTA}}
WEIGHTS = {{WEIGHTS}}  # trained weights of the run this was exported from
EVAL_ONLY = {{EVAL_ONLY}}


def read_idx(path):
    """An IDX file (raw or gzip) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load():
    """Train, validation and test sets as (pixels in [0, 1], labels)."""
    x, y = read_idx(TRAIN_IMAGES), read_idx(TRAIN_LABELS)
    tx, ty = read_idx(TEST_IMAGES), read_idx(TEST_LABELS)
    if TRAIN_LIMIT is not None:
        x, y = x[:TRAIN_LIMIT], y[:TRAIN_LIMIT]
    if TEST_LIMIT is not None:
        tx, ty = tx[:TEST_LIMIT], ty[:TEST_LIMIT]
    with open(SPLIT) as f:
        val = np.array(json.load(f)["val"], dtype=np.int64)
    in_val = np.zeros(len(y), dtype=bool)
    in_val[val] = True

    def as_set(images, labels):
        pixels = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 255.0
        return pixels, torch.tensor(labels, dtype=torch.int64)

    return as_set(x[~in_val], y[~in_val]), as_set(x[in_val], y[in_val]), as_set(tx, ty)


def normalise(pixels):
    return (pixels - MEAN) / STD


def shifted(pixels, generator):
    """Each image moved by up to MAX_SHIFT pixels each way; the edge fills with 0."""
    out = torch.zeros_like(pixels)
    h, w = pixels.shape[-2:]
    for i in range(len(pixels)):
        dy, dx = (torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (2,), generator=generator)).tolist()
        ys, yd = max(0, -dy), max(0, dy)
        xs, xd = max(0, -dx), max(0, dx)
        out[i, :, yd : h - ys, xd : w - xs] = pixels[i, :, ys : h - yd, xs : w - xd]
    return out


class Model(nn.Module):
    """The experiment's layer list; `layers.{i}` is trainlab's layer i."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
{{MODEL}}
        )

    def forward(self, x):
        return self.layers(x)


{{SCHEDULE}}

def evaluate(model, data):
    """Mean cross-entropy and accuracy over a split."""
    pixels, labels = data
    if len(labels) == 0:
        return None
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(labels), 1000):
            logits = model(normalise(pixels[i : i + 1000]))
            y = labels[i : i + 1000]
            loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    model.train()
    return loss / len(labels), correct / len(labels)


def load_weights(model, path):
    """trainlab's safetensors file into the model (PyTorch's own batch-norm
    counter, which trainlab does not keep, is the only key allowed to be missing)."""
    from safetensors.torch import load_file

    missing, unexpected = model.load_state_dict(load_file(path), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"{path} does not fit this model: missing {missing}, unexpected {unexpected}")


def train(model, train_set, val_set):
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    optimizer = {{OPTIMIZER}}
    pixels, labels = train_set
    steps_per_epoch = max(math.ceil(len(labels) / BATCH), 1)
    total_steps = steps_per_epoch * EPOCHS
    peak = [g["lr"] for g in optimizer.param_groups]
    step, best, bad = 0, None, 0
    for epoch in range(EPOCHS):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), BATCH):
            idx = order[start : start + BATCH]
            x = pixels[idx]
            if MAX_SHIFT > 0:
                x = shifted(x, generator)
            factor = lr_factor(step, steps_per_epoch, total_steps)
            for group, p in zip(optimizer.param_groups, peak):
                group["lr"] = p * factor
            loss = nn.functional.cross_entropy(model(normalise(x)), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            if CLIP is not None:
                nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
            step += 1
            if step % LOG_EVERY == 0:
                print(f"step {step:>7} epoch {step / steps_per_epoch:5.2f}  train loss {loss.item():.4f}")
            end_of_epoch = step % steps_per_epoch == 0
            due = end_of_epoch if EVAL_EVERY is None else step % EVAL_EVERY == 0
            if due and len(val_set[1]) > 0:
                val_loss, val_acc = evaluate(model, val_set)
                print(f"step {step:>7} epoch {step / steps_per_epoch:5.2f}  val   loss {val_loss:.4f}  accuracy {100 * val_acc:.2f}%")
                if PATIENCE is not None:
                    if best is None or val_loss < best - MIN_DELTA:
                        best, bad = val_loss, 0
                    else:
                        # As trainlab: stop at the first evaluation after PATIENCE
                        # in a row without improvement.
                        bad += 1
                        if bad > PATIENCE:
                            print(f"early stopping in epoch {epoch + 1}")
                            return


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval-only", nargs="?", const=WEIGHTS or "", default=WEIGHTS if EVAL_ONLY else None,
                        metavar="WEIGHTS", help="evaluate trained weights (safetensors) instead of training")
    parser.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    args = parser.parse_args()
    global EPOCHS
    if args.epochs is not None:
        EPOCHS = args.epochs
    torch.manual_seed(SEED)
    train_set, val_set, test_set = load()
    model = Model()
    if args.eval_only is not None:
        if not args.eval_only:
            raise SystemExit("--eval-only needs a weights file (this script was exported from an experiment, not a run)")
        load_weights(model, args.eval_only)
    else:
        print(f"{sum(p.numel() for p in model.parameters())} parameters; {len(train_set[1])} train / {len(val_set[1])} val / {len(test_set[1])} test samples")
        train(model, train_set, val_set)
    test = evaluate(model, test_set)
    if test is not None:
        print(f"test loss {test[0]:.4f} accuracy {100 * test[1]:.2f} %")


if __name__ == "__main__":
    main()
