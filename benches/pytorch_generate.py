#!/usr/bin/env python3
"""Batch-1 text generation with PyTorch: the twin of `cargo bench --bench generate`.

The model is text_charlm_lstm.ron's: Embedding(vocab, 64), one-layer LSTM(64, 256),
Linear(256, vocab), untrained (seeded), in eval mode under torch.no_grad(). It
writes `--tokens` characters one at a time, batch 1, from a one-token prompt
(the document break, id 2), each drawn from the softmax at temperature 0.8 with
padding and <unk> (ids 0 and 1) left out, as trainlab's generator draws them.

--mode window (default): each character re-reads the last `--context` tokens
from a zero state and takes the last position's logits: what trainlab's
generator computes, so the same work for the same text.
--mode state: the LSTM's (h, c) is carried from character to character, one
step each: a different model of the text (unbounded context), shown for
comparison only.

Prints one JSON object: tokens_per_sec at each thread count tried, the best,
and cpu_seconds (this process, all threads) of the best run.
"""

import argparse
import json
import time

import torch
from torch import nn


class CharLstm(nn.Module):
    def __init__(self, vocab, dim, hidden):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids, state=None):
        out, state = self.lstm(self.emb(ids), state)
        return self.head(out[:, -1]), state


def draw(logits, temperature, gen):
    logits = logits[0] / temperature
    logits[:2] = float("-inf")  # padding and <unk> are never drawn
    probs = torch.softmax(logits, dim=0)
    return int(torch.multinomial(probs, 1, generator=gen))


def generate(model, n, context, temperature, mode, gen):
    ids = [2]
    state = None
    for _ in range(n):
        if mode == "window":
            window = torch.tensor([ids[-context:]])
            logits, _ = model(window)
        else:
            logits, state = model(torch.tensor([[ids[-1]]]), state)
        ids.append(draw(logits, temperature, gen))
    return ids


def rate(model, args, threads):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        generate(model, args.warmup, args.context, 0.8, args.mode, gen)
        cpu0, t0 = time.process_time(), time.perf_counter()
        generate(model, args.tokens, args.context, 0.8, args.mode, gen)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    return args.tokens / seconds, cpu


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--context", type=int, default=32)
    p.add_argument("--vocab", type=int, default=96)
    p.add_argument("--mode", choices=["window", "state"], default="window")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts to try")
    args = p.parse_args()
    torch.manual_seed(0)
    model = CharLstm(args.vocab, 64, 256).eval()
    tried = {}
    best = (0.0, 0.0, 0)
    for t in [int(x) for x in args.threads.split(",") if x]:
        tps, cpu = rate(model, args, t)
        tried[t] = tps
        if tps > best[0]:
            best = (tps, cpu, t)
    print(json.dumps({
        "mode": args.mode,
        "tokens": args.tokens,
        "context": args.context,
        "tried": tried,
        "tokens_per_sec": best[0],
        "threads": best[2],
        "cpu_seconds": best[1],
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
