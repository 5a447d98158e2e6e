#!/usr/bin/env python3
"""Whole-run PyTorch counterparts of three shipped experiments, for
`cargo bench --bench speed -- whole` (see benches/README.md).

Each does the work `trainlab run experiments/<name>.ron` does, not only its
training steps: the same data and split sizes, the same model with its
dropout, Adam at the file's learning rate (and schedule), a logged loss every
`log_every_steps` steps, a validation pass at the file's cadence (and once at
the end if the last one is older), a checkpoint (weights and optimizer state,
newest two kept) at the end of every epoch, the test pass, the saved weights,
and for the char-LSTM the clipping and the live samples every 100 steps.

    python3 benches/pytorch_whole.py --experiment mnist_cnn --threads 2 --json

Prints wall seconds from the start of data loading (interpreter and torch import
left out, as trainlab's own summary leaves out process start) to the end, the
training seconds, and what was trained. Only the standard library, numpy and
torch are used.
"""

import argparse
import gzip
import json
import math
import os
import random
import shutil
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE_DIRS = {
    "mnist_cnn": os.path.join(ROOT, "assets", "mnist"),
    "fashion_mlp": "/usr/share/datasets/fashion-mnist",
}
# What each experiment file says (experiments/<name>.ron).
PLAN = {
    "mnist_cnn": dict(epochs=3, batch=64, lr=1e-3, eval_every=64, log_every=10, cosine=None),
    "fashion_mlp": dict(epochs=10, batch=64, lr=1e-3, eval_every=None, log_every=10, cosine=0.1),
    "text_charlm_lstm": dict(epochs=3, batch=32, lr=3e-3, eval_every=100, log_every=20,
                             cosine=None, seq_len=32, sample_every=100, sample_len=60, clip=1.0),
}
IMAGE_EVAL_BATCH = 1000
TEXT_EVAL_BATCH = 64
TEXT_EVAL_WINDOWS = 512


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def images(name, seed):
    d = IMAGE_DIRS[name]
    x = idx(os.path.join(d, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = idx(os.path.join(d, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    tx = idx(os.path.join(d, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    ty = idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = round(len(x) * 0.1)
    val, train = order[:n_val], order[n_val:]
    mean, std = float(x[train].mean()), float(x[train].std())
    t = lambda a: torch.from_numpy((a - mean) / std).unsqueeze(1)
    return (t(x[train]), torch.from_numpy(y[train])), (t(x[val]), torch.from_numpy(y[val])), \
        (t(tx), torch.from_numpy(ty))


def image_model(name):
    if name == "mnist_cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout(0.25), nn.Flatten(), nn.Linear(64 * 12 * 12, 128), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(128, 10))
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def words(seed):
    docs = []
    for lang in ("de", "en", "es", "fr", "it", "pt"):
        with gzip.open(os.path.join(ROOT, "assets", "words", f"{lang}.txt.gz"), "rt") as f:
            docs.extend(line.strip() for line in f if line.strip())
    random.Random(seed).shuffle(docs)
    n = len(docs)
    n_test, n_val = round(n * 0.1), round(n * 0.1)
    test, val, train = docs[:n_test], docs[n_test:n_test + n_val], docs[n_test + n_val:]
    chars = sorted({c for d in train for c in d} - {"\n"})
    vocab = {c: i + 3 for i, c in enumerate(chars)}

    def stream(ds):
        out = [2]
        for d in ds:
            out.extend(vocab.get(c, 1) for c in d)
            out.append(2)
        return torch.tensor(out, dtype=torch.long)

    return stream(train), stream(val), stream(test), len(chars) + 3


class CharLstm(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.emb = nn.Embedding(vocab, 64)
        self.lstm = nn.LSTM(64, 256, batch_first=True)
        self.out = nn.Linear(256, vocab)

    def forward(self, x):
        return self.out(self.lstm(self.emb(x))[0])


class Run:
    """The loop around the steps that every experiment shares."""

    def __init__(self, name, model, plan, steps_per_epoch, folder):
        self.name, self.model, self.plan, self.folder = name, model, plan, folder
        self.opt = torch.optim.Adam(model.parameters(), lr=plan["lr"])
        self.steps_per_epoch = steps_per_epoch
        self.total = steps_per_epoch * plan["epochs"]
        self.log = open(os.path.join(folder, "metrics.jsonl"), "w")
        self.acc = [torch.zeros(()), torch.zeros(()), 0]
        self.train_secs, self.last_val = 0.0, None

    def lr_at(self, step):
        f = self.plan["cosine"]
        if f is None:
            return self.plan["lr"]
        return self.plan["lr"] * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * step / self.total)))

    def step(self, step, loss, correct):
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(step)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.plan.get("clip"):
            nn.utils.clip_grad_norm_(self.model.parameters(), self.plan["clip"])
        self.opt.step()
        self.acc[0] += loss.detach()
        self.acc[1] += correct
        self.acc[2] += 1

    def after(self, step, evaluate):
        done = step + 1
        if done % self.plan["log_every"] == 0 or done % self.steps_per_epoch == 0:
            n = self.acc[2]
            self.log.write(json.dumps({"step": done, "loss": self.acc[0].item() / n,
                                       "correct": self.acc[1].item()}) + "\n")
            self.acc = [torch.zeros(()), torch.zeros(()), 0]
        every = self.plan["eval_every"]
        if (done % every == 0) if every else (done % self.steps_per_epoch == 0):
            self.validate(done, evaluate)
        if done % self.steps_per_epoch == 0:
            self.checkpoint(done)

    def validate(self, step, evaluate):
        self.model.eval()
        with torch.no_grad():
            loss, acc = evaluate("val")
        self.model.train()
        self.log.write(json.dumps({"step": step, "val_loss": loss, "val_acc": acc}) + "\n")
        self.last_val = step

    def checkpoint(self, step):
        path = os.path.join(self.folder, f"step-{step:010}.pt")
        torch.save({"model": self.model.state_dict(), "opt": self.opt.state_dict()}, path)
        kept = sorted(p for p in os.listdir(self.folder) if p.startswith("step-"))
        for old in kept[:-2]:
            os.remove(os.path.join(self.folder, old))

    def finish(self, evaluate):
        if self.last_val != self.total:
            self.validate(self.total, evaluate)
        self.model.eval()
        with torch.no_grad():
            test = evaluate("test")
        self.log.write(json.dumps({"test": test}) + "\n")
        torch.save(self.model.state_dict(), os.path.join(self.folder, "model.pt"))
        self.log.close()


def image_run(name, plan, seed, folder):
    train, val, test = images(name, seed)
    model = image_model(name)
    batch = plan["batch"]
    n = len(train[0])
    run = Run(name, model, plan, math.ceil(n / batch), folder)
    splits = {"val": val, "test": test}

    def evaluate(which):
        x, y = splits[which]
        loss, right = 0.0, 0
        confusion = torch.zeros(10, 10, dtype=torch.long)
        for i in range(0, len(x), IMAGE_EVAL_BATCH):
            out = model(x[i:i + IMAGE_EVAL_BATCH])
            t = y[i:i + IMAGE_EVAL_BATCH]
            loss += F.cross_entropy(out, t, reduction="sum").item()
            guess = out.argmax(1)
            right += (guess == t).sum().item()
            confusion += torch.bincount(t * 10 + guess, minlength=100).view(10, 10)
        return loss / len(x), right / len(x)

    gen = torch.Generator().manual_seed(seed)
    step = 0
    model.train()
    for _ in range(plan["epochs"]):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            began = time.perf_counter()
            idx_ = order[i:i + batch]
            x, y = train[0][idx_], train[1][idx_]
            out = model(x)
            loss = F.cross_entropy(out, y)
            run.step(step, loss, (out.argmax(1) == y).sum())
            run.train_secs += time.perf_counter() - began
            run.after(step, evaluate)
            step += 1
    run.finish(evaluate)
    return run, n * plan["epochs"]


def text_run(plan, seed, folder):
    train, val, test, vocab = words(seed)
    model = CharLstm(vocab)
    t, batch = plan["seq_len"], plan["batch"]
    run = Run("text_charlm_lstm", model, plan, max(len(train) // (batch * t), 1), folder)
    splits = {"val": val, "test": test}
    gen = torch.Generator().manual_seed(seed)

    def windows(s, starts):
        x = torch.stack([s[a:a + t] for a in starts])
        y = torch.stack([s[a + 1:a + t + 1] for a in starts])
        return x, y

    def evaluate(which):
        s = splits[which]
        starts = [k * t for k in range((len(s) - 1) // t) if k * t + t < len(s)]
        starts = starts[:TEXT_EVAL_WINDOWS]
        loss, right = 0.0, 0.0
        for i in range(0, len(starts), TEXT_EVAL_BATCH):
            x, y = windows(s, starts[i:i + TEXT_EVAL_BATCH])
            out = model(x).reshape(-1, vocab)
            loss += F.cross_entropy(out, y.reshape(-1)).item() * len(x)
            right += (out.argmax(1) == y.reshape(-1)).sum().item()
        return loss / len(starts), right / (len(starts) * t)

    def sample():
        model.eval()
        ids = [2]
        with torch.no_grad():
            for _ in range(plan["sample_len"]):
                window = torch.tensor([ids[-t:]])
                logits = model(window)[0, -1] / 0.8
                logits[:2] = -math.inf
                ids.append(int(torch.multinomial(F.softmax(logits, 0), 1, generator=gen)))
        model.train()

    model.train()
    for step in range(run.total):
        began = time.perf_counter()
        starts = torch.randint(0, len(train) - t - 1, (batch,), generator=gen).tolist()
        x, y = windows(train, starts)
        out = model(x).reshape(-1, vocab)
        loss = F.cross_entropy(out, y.reshape(-1))
        run.step(step, loss, (out.argmax(1) == y.reshape(-1)).sum())
        run.train_secs += time.perf_counter() - began
        done = step + 1
        if done % plan["sample_every"] == 0 or done == run.total:
            sample()
        run.after(step, evaluate)
    run.finish(evaluate)
    return run, run.total * batch * t


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", required=True, choices=sorted(PLAN))
    p.add_argument("--epochs", type=int, help="epochs trainlab trained (early stopping)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    plan = dict(PLAN[a.experiment])
    if a.epochs:
        plan["epochs"] = a.epochs
    folder = tempfile.mkdtemp(prefix="torch-whole-")
    began = time.perf_counter()
    try:
        if a.experiment == "text_charlm_lstm":
            run, items = text_run(plan, 42, folder)
        else:
            run, items = image_run(a.experiment, plan, 42, folder)
        wall = time.perf_counter() - began
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {"experiment": a.experiment, "wall_seconds": wall, "train_seconds": run.train_secs,
              "items": items, "steps": run.total, "threads": a.threads}
    print(json.dumps(result) if a.json else
          f"{a.experiment}: {items} items in {wall:.2f} s ({items / wall:.0f}/s whole run, "
          f"{items / run.train_secs:.0f}/s training)")


if __name__ == "__main__":
    main()
