#!/usr/bin/env python3
"""PyTorch reference benchmark that trainlab's training speed is compared against.

Trains small models on synthetic data held in memory and reports training
throughput. Run it on the same machine, in the same sitting, as trainlab's own
benchmark: numbers from different machines or different days say little.

    python3 benches/pytorch_reference.py                   # all models, 2 threads, table
    python3 benches/pytorch_reference.py --model cnn --threads 1 --json
    python3 benches/pytorch_reference.py --best-threads --json
    python3 benches/pytorch_reference.py --model mlp-infer --threads 1   # batch-1 latency

Only the standard library and torch are used. See benches/README.md.
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Defaults, per model. Steps are chosen so that each timed run lasts a few
# seconds on a 2-core machine: long enough to swamp timer and scheduling noise,
# short enough to run everything in well under a minute.
DEFAULT_STEPS = {"mlp": 2000, "cnn": 100, "lstm": 100, "gru": 100, "transformer": 100,
                 "mlp-infer": 3000, "lstm-infer": 300}
# Warm-up steps are not timed: the first steps pay for one-off work (allocator
# growth, oneDNN/MKL kernel selection, Adam creating its state tensors).
DEFAULT_WARMUP = {"mlp": 100, "cnn": 10, "lstm": 10, "gru": 10, "transformer": 10,
                  "mlp-infer": 300, "lstm-infer": 30}
BATCH = {"mlp": 64, "cnn": 64, "lstm": 32, "gru": 32, "transformer": 32,
         "mlp-infer": 1, "lstm-infer": 1}

# Char-level LM shapes. gru and transformer mirror experiments/text_charlm_gru.ron
# and text_charlm_transformer.ron (window 32, their optimizers, gradient clipping).
VOCAB = 96
EMBED = 64
HIDDEN = 256
SEQ_LEN = {"lstm": 64, "gru": 32, "transformer": 32, "lstm-infer": 64}
TEXT = ("lstm", "gru", "transformer")
# Inference at batch 1, timed per forward pass: the digit canvas (mlp) and one
# generated character of the char-LSTM, which re-reads its 64-character window
# as trainlab's generator does.
INFER = ("mlp-infer", "lstm-infer")
# Transformer block: heads and feed-forward width.
HEADS = 4
FF_WIDTH = 256

NUM_CLASSES = 10
# Distinct batches generated up front and cycled through. All of them for the
# mlp's 2000 steps would be ~400 MB of inputs, inflating peak RSS for no change
# in the arithmetic; 32 batches (~6 MB for mlp/cnn) keep memory small. The
# models can memorise this pool (the mlp's loss falls near 0): that changes
# nothing about the cost of a step.
POOL = 32

MODELS = ("mlp", "cnn", "lstm", "gru", "transformer") + INFER


def build_model(name):
    if name in ("mlp", "mlp-infer"):
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 128),
            nn.ReLU(),
            nn.Linear(128, NUM_CLASSES),
        )
    if name == "cnn":
        # The CNN from PyTorch's MNIST example (examples/mnist), minus its two
        # Dropout layers so both frameworks do exactly the same arithmetic.
        return nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(9216, 128),
            nn.ReLU(),
            nn.Linear(128, NUM_CLASSES),
        )
    if name in ("lstm", "lstm-infer"):
        return CharLM(nn.LSTM)
    if name == "gru":
        return CharLM(nn.GRU)
    if name == "transformer":
        return CharTransformer(SEQ_LEN[name])
    raise ValueError(name)


def make_optimizer(name, model):
    """Each model's optimizer, as in its trainlab counterpart."""
    if name == "gru":
        return torch.optim.Adam(model.parameters(), lr=3e-3)
    if name == "transformer":
        # trainlab's AdamW decays by 0.01 by default, as PyTorch's does.
        return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    return torch.optim.Adam(model.parameters(), lr=1e-3)


# Models trained with gradient clipping (grad_clip_norm: Some(1.0) in their .ron).
CLIP = {"gru": 1.0, "transformer": 1.0}


class CharLM(nn.Module):
    """Embedding -> 1-layer LSTM or GRU -> Linear over the vocabulary, every position."""

    def __init__(self, cell):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, EMBED)
        self.rnn = cell(EMBED, HIDDEN, num_layers=1, batch_first=True)
        self.head = nn.Linear(HIDDEN, VOCAB)

    def forward(self, tokens):  # tokens: (B, T) int64
        out, _ = self.rnn(self.embed(tokens))  # (B, T, HIDDEN)
        return self.head(out)  # (B, T, VOCAB)


class Block(nn.Module):
    """trainlab's Transformer(heads: 4, width: 256) on width 64: pre-norm causal
    self-attention, then a GELU (erf) feed-forward network, each added back."""

    def __init__(self, d):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=1e-5)
        self.ff1 = nn.Linear(d, FF_WIDTH)
        self.ff2 = nn.Linear(FF_WIDTH, d)
        self.gelu = nn.GELU()

    def forward(self, x):
        b, t, d = x.shape
        dh = d // HEADS
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, HEADS, dh)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
        # PyTorch's fused attention: its fastest CPU path.
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.ff2(self.gelu(self.ff1(self.norm2(x))))


class CharTransformer(nn.Module):
    """Embedding(64) + learned positions -> 2 blocks -> Linear over the vocabulary."""

    def __init__(self, context):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, EMBED)
        self.pos = nn.Parameter(torch.randn(context, EMBED) * 0.02)
        self.blocks = nn.Sequential(Block(EMBED), Block(EMBED))
        self.head = nn.Linear(EMBED, VOCAB)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        return self.head(self.blocks(x))


def make_data(name, batch):
    """A pool of (input, target) batches, built before the clock starts.

    Each batch is its own contiguous tensor, so picking one in the loop costs
    nothing (no slicing copy, no host->device transfer: everything is on CPU).
    """
    pool = []
    for _ in range(POOL):
        if name in TEXT or name == "lstm-infer":
            # Random token ids; targets are the inputs shifted by one, as in a
            # real next-character model (with random text it changes nothing
            # about the cost, but keeps the loop honest).
            seq = torch.randint(0, VOCAB, (batch, SEQ_LEN[name] + 1))
            x = seq[:, :-1].contiguous()
            y = seq[:, 1:].contiguous()
        else:
            x = torch.randn(batch, 1, 28, 28)
            y = torch.randint(0, NUM_CLASSES, (batch,))
        pool.append((x, y))
    return pool


def peak_rss_bytes():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    return rss if sys.platform == "darwin" else rss * 1024


def machine_busy_seconds():
    """CPU-seconds all processes on the machine have used since boot (Linux).

    Used to tell how much of the machine *other* processes took while we were
    timing: a 2-core box with a compiler running beside the benchmark gives
    numbers several times too low, and this makes that visible. None elsewhere.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice]:
    # guest time is already counted in user, so only the first 8 are summed.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def bench(name, threads, steps, warmup):
    """Train `name` for warmup + steps optimizer steps; time only the last `steps`.
    For an inference case, warmup + steps batch-1 forward passes instead."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)  # same weights and data every run
    batch = BATCH[name]
    model = build_model(name)
    model.train()
    # Plain Adam (AdamW for the transformer), default betas/eps: what a user
    # reaches for. (foreach/fused left at PyTorch's default choice for CPU tensors.)
    opt = make_optimizer(name, model)
    loss_fn = nn.CrossEntropyLoss()
    data = make_data(name, batch)

    def train_step(i):
        x, y = data[i % POOL]
        logits = model(x)
        if name in TEXT:
            # Loss over every position: (B*T, VOCAB) against (B*T,).
            loss = loss_fn(logits.reshape(-1, VOCAB), y.reshape(-1))
        else:
            loss = loss_fn(logits, y)
        loss.backward()
        if name in CLIP:
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP[name])
        opt.step()
        # set_to_none=True is the default in 2.x: grads are freed, not zeroed.
        opt.zero_grad()
        # Return the loss tensor, not loss.item(): a real loop logs rarely, and
        # reading a scalar back every step would add a sync point (a no-op on
        # CPU eager, but this is the pattern we compare against).
        return loss

    def infer_step(i):
        # What the digit canvas and the text generator do: one forward pass on one
        # sample, the answer (the last position's logits for text) read out.
        x, _ = data[i % POOL]
        logits = model(x)
        return logits[0, -1] if name == "lstm-infer" else logits[0]

    step = train_step
    if name in INFER:
        model.eval()
        torch.set_grad_enabled(False)
        step = infer_step

    for i in range(warmup):
        step(i)

    loss = None
    busy0, own0 = machine_busy_seconds(), own_cpu_seconds()
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        loss = step(i)
    seconds = time.perf_counter() - start
    busy1, own1 = machine_busy_seconds(), own_cpu_seconds()
    cpu_seconds = own1 - own0
    # Average number of cores that other processes kept busy while we timed.
    other_load = None
    if busy0 is not None and busy1 is not None:
        other_load = max(0.0, (busy1 - busy0) - cpu_seconds) / seconds
        if other_load > 0.1:
            print(f"warning: {name}: other processes used {other_load:.2f} "
                  f"cores on average during the timed loop; the figures are "
                  f"not trustworthy on a busy machine", file=sys.stderr)

    # The only read-back of the loss, after the clock has stopped.
    if name in INFER:
        loss = loss.sum()  # only a finiteness check of the last output
    final_loss = float(loss.detach()) if loss is not None else float("nan")
    if not math.isfinite(final_loss):
        raise RuntimeError(f"{name}: loss is {final_loss}")

    result = {
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "model": name,
        "threads": threads,
        "batch": batch,
        "steps": steps,
        "seconds": seconds,
        "samples_per_sec": batch * steps / seconds,
    }
    if name in TEXT:
        result["seq_len"] = SEQ_LEN[name]
        result["tokens_per_sec"] = batch * SEQ_LEN[name] * steps / seconds
    if name in INFER:
        result["latency_us"] = seconds / steps * 1e6
    result["warmup"] = warmup
    result["cpu_seconds"] = cpu_seconds
    result["other_load"] = other_load
    result["final_loss"] = final_loss
    result["peak_rss_bytes"] = peak_rss_bytes()
    return result


def run_child(name, threads, steps, warmup):
    """Run one (model, threads) config in a fresh interpreter.

    Each config gets its own process so that peak RSS is that model's alone
    (ru_maxrss never goes down within a process) and no state — thread pools,
    allocator caches, oneDNN primitive caches — carries over from one model to
    the next.
    """
    cmd = [
        sys.executable, os.path.abspath(__file__), "--model", name,
        "--threads", str(threads), "--steps", str(steps),
        "--warmup", str(warmup), "--json",
    ]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    lines = [l for l in out.splitlines() if l.strip()]
    return json.loads(lines[-1])


def print_table(results):
    hdr = ("model", "threads", "batch", "steps", "seconds", "samples/s",
           "tokens/s", "peak RSS MiB", "other load")
    rows = []
    for r in results:
        tok = r.get("tokens_per_sec")
        rows.append((
            r["model"], str(r["threads"]), str(r["batch"]), str(r["steps"]),
            f"{r['seconds']:.3f}", f"{r['samples_per_sec']:,.0f}",
            f"{tok:,.0f}" if tok is not None else "-",
            f"{r['peak_rss_bytes'] / 2**20:,.0f}",
            f"{r['other_load']:.2f}" if r.get("other_load") is not None else "-",
        ))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(hdr)]
    print(f"PyTorch {torch.__version__}, CPU, "
          f"{os.cpu_count()} logical cores visible")
    print("  ".join(h.rjust(w) for h, w in zip(hdr, widths)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    for r in results:
        if "tried" in r:
            tried = ", ".join(f"{t} thr: {s:,.0f}/s" for t, s in r["tried"].items())
            print(f"  {r['model']}: best of {tried}")


def main():
    p = argparse.ArgumentParser(
        description="PyTorch CPU training-throughput reference for trainlab.")
    p.add_argument("--model", choices=MODELS + ("all",), default="all")
    p.add_argument("--steps", type=int, default=None,
                   help="timed optimizer steps, or forward passes for *-infer "
                        "(defaults: see DEFAULT_STEPS)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps first (defaults: see DEFAULT_WARMUP)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch.set_num_threads (default 2)")
    p.add_argument("--best-threads", action="store_true",
                   help="try 1 and 2 threads, report the faster per model")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per model per line")
    args = p.parse_args()
    if args.steps is not None and args.steps < 1:
        p.error("--steps must be >= 1")
    if args.warmup is not None and args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.threads < 1:
        p.error("--threads must be >= 1")

    models = MODELS if args.model == "all" else (args.model,)
    thread_choices = (1, 2) if args.best_threads else (args.threads,)
    configs = len(models) * len(thread_choices)

    results = []
    for name in models:
        steps = args.steps if args.steps is not None else DEFAULT_STEPS[name]
        warmup = args.warmup if args.warmup is not None else DEFAULT_WARMUP[name]
        tried = []
        for t in thread_choices:
            if configs == 1:
                tried.append(bench(name, t, steps, warmup))
            else:
                tried.append(run_child(name, t, steps, warmup))
        best = max(tried, key=lambda r: r["samples_per_sec"])
        if args.best_threads:
            best["tried"] = {str(r["threads"]): r["samples_per_sec"] for r in tried}
        results.append(best)
        if args.json:
            print(json.dumps(best), flush=True)

    if not args.json:
        print_table(results)


if __name__ == "__main__":
    main()
