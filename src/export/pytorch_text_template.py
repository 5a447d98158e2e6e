#!/usr/bin/env python3
"""{{NAME}}: the trainlab text experiment as a standalone PyTorch script.

Written by `trainlab export pytorch`. It builds the same model (the parameter
names and layouts match trainlab's, so a trainlab run's model.safetensors loads
into it), reads the same samples, and trains with the same settings.

    python this_script.py                  # train, then print the test figures
    python this_script.py --eval-only [W]  # evaluate trained weights W (safetensors)

Needs: torch, numpy, safetensors.
"""

import argparse
import json
import math

import numpy as np
import torch
from torch import nn

# ----- Data: {{SOURCE}} -----
# The JSON file beside this script holds trainlab's vocabulary ("tokens") and
# its train/val/test split, already turned into token ids: trainlab splits with
# its own seeded generator, which Python cannot repeat.
DATA = {{DATA}}
{{TASK}}
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

EVAL_BATCH = 256 if TASK == "classification" else 64  # as trainlab evaluates
MAX_EVAL_WINDOWS = 512  # a language model is evaluated on at most this many windows


def load():
    """Train, validation and test sets: (ids [n, max_len], labels [n]) per split
    for a classifier, one token stream [n] per split for a language model."""
    with open(DATA) as f:
        data = json.load(f)
    sets = []
    for name in ("train", "val", "test"):
        part = data[name]
        if TASK == "classification":
            ids = torch.tensor(part["ids"], dtype=torch.int64) if part["ids"] else torch.zeros((0, 1), dtype=torch.int64)
            sets.append((ids, torch.tensor(part["labels"], dtype=torch.int64)))
        else:
            sets.append(torch.tensor(part, dtype=torch.int64))
    return data["tokens"], data.get("classes", []), sets


# ----- The layers trainlab has that PyTorch does not have under the same names -----


class LSTM(nn.Module):
    """trainlab's LSTM, [batch, steps, in] -> [batch, steps, hidden]. PyTorch's
    gate order (input, forget, cell, output) and weight names, but one bias per
    layer (`bias_l{k}`) where nn.LSTM keeps two, so it is written out here."""

    def __init__(self, input_size, hidden, num_layers=1, dropout=0.0):
        super().__init__()
        self.hidden, self.num_layers, self.dropout = hidden, num_layers, dropout
        bound = 1 / math.sqrt(hidden)
        for k in range(num_layers):
            d = input_size if k == 0 else hidden
            setattr(self, f"weight_ih_l{k}", nn.Parameter(torch.empty(4 * hidden, d).uniform_(-bound, bound)))
            setattr(self, f"weight_hh_l{k}", nn.Parameter(torch.empty(4 * hidden, hidden).uniform_(-bound, bound)))
            setattr(self, f"bias_l{k}", nn.Parameter(torch.empty(4 * hidden).uniform_(-bound, bound)))

    def forward(self, x):
        for k in range(self.num_layers):
            if k > 0:
                x = nn.functional.dropout(x, self.dropout, self.training)
            w_ih, w_hh = getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}")
            # Every step's input projection at once; only the recurrence is a loop.
            proj = x @ w_ih.T + getattr(self, f"bias_l{k}")
            h = x.new_zeros(x.shape[0], self.hidden)  # state starts at zero
            c = h
            outputs = []
            for t in range(x.shape[1]):
                i, f, g, o = (proj[:, t] + h @ w_hh.T).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                outputs.append(h)
            x = torch.stack(outputs, dim=1)
        return x


class GRU(nn.GRU):
    """trainlab's GRU is PyTorch's (gates reset, update, new; the same weight
    names and both biases); this only returns the outputs without the state."""

    def __init__(self, input_size, hidden, num_layers=1, dropout=0.0):
        super().__init__(input_size, hidden, num_layers=num_layers, dropout=dropout, batch_first=True)

    def forward(self, x):
        return super().forward(x)[0]


class PositionEmbedding(nn.Module):
    """A learned vector per position, added to the token vectors."""

    def __init__(self, context, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(context, dim).uniform_(-0.02, 0.02))

    def forward(self, x):
        return x + self.weight[: x.shape[1]]


class Attention(nn.Module):
    """Causal self-attention: step t looks at steps 0..t only."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)  # queries, keys and values in one matrix
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        dh = d // self.heads
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(dh)
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, t, d))


class TransformerBlock(nn.Module):
    """trainlab's pre-norm block: x + attention(norm1(x)), then that plus a GELU
    feed-forward network of `width` on norm2 of it."""

    def __init__(self, dim, heads, width):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.ff1 = nn.Linear(dim, width)
        self.ff2 = nn.Linear(width, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ff2(nn.functional.gelu(self.ff1(self.norm2(x))))


class MeanPool(nn.Module):
    """The mean over steps; padding (token id 0) does not count."""

    def forward(self, x, mask):
        m = mask.unsqueeze(2)
        return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


class LastStep(nn.Module):
    """The last step's vector (documents are padded on the left)."""

    def forward(self, x):
        return x[:, -1]


class Model(nn.Module):
    """The experiment's layer list (`layers.{i}` is trainlab's layer i), then the
    output layer trainlab adds (`head`: one score per class or per token)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([
{{MODEL}}
        ])
        self.head = {{HEAD}}

    def forward(self, ids):
        mask = (ids != 0).float()  # 1 for real tokens, 0 for padding
        x = ids
        for layer in self.layers:
            x = layer(x, mask) if isinstance(layer, MeanPool) else layer(x)
        return self.head(x)


{{SCHEDULE}}

def sample_losses(logits, y):
    """Cross-entropy per sample (binary: on the one logit)."""
    if BINARY:
        return nn.functional.binary_cross_entropy_with_logits(logits.flatten(), y.float(), reduction="none")
    return nn.functional.cross_entropy(logits, y, reduction="none")


def batch_loss(logits, y):
    """The mean loss of a batch, weighted per class when CLASS_WEIGHTS is set."""
    losses = sample_losses(logits, y)
    if CLASS_WEIGHTS is None:
        return losses.mean()
    w = torch.tensor(CLASS_WEIGHTS)[y]
    return (losses * w).sum() / w.sum()


def predictions(logits):
    return (logits.flatten() > 0).long() if BINARY else logits.argmax(-1)


def windows(stream, starts):
    """Input windows and the same windows one token later (the targets)."""
    idx = torch.as_tensor(starts).unsqueeze(1) + torch.arange(SEQ_LEN)
    return stream[idx], stream[idx + 1]


def evaluate(model, data):
    """Mean loss and accuracy over a split, in trainlab's batches."""
    model.eval()
    loss, correct, n, items = 0.0, 0, 0, 0
    with torch.no_grad():
        if TASK == "classification":
            ids, labels = data
            for i in range(0, len(labels), EVAL_BATCH):
                x, y = ids[i : i + EVAL_BATCH], labels[i : i + EVAL_BATCH]
                logits = model(x)
                loss += batch_loss(logits, y).item() * len(y)
                correct += (predictions(logits) == y).sum().item()
                n += len(y)
            items = n
        else:
            # Fixed windows side by side from the start of the stream.
            starts = [k * SEQ_LEN for k in range((len(data) - 1) // SEQ_LEN) if k * SEQ_LEN + SEQ_LEN < len(data)]
            starts = starts[:MAX_EVAL_WINDOWS]
            for i in range(0, len(starts), EVAL_BATCH):
                x, y = windows(data, starts[i : i + EVAL_BATCH])
                logits = model(x)
                loss += nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()).item() * len(x)
                correct += (logits.argmax(-1) == y).sum().item()
                n += len(x)
            items = n * SEQ_LEN
    model.train()
    if n == 0:
        return None
    return loss / n, correct / items


def figures(split, result):
    """One evaluation as trainlab prints it (language models add bits per token
    and perplexity)."""
    loss, acc = result
    line = f"{split} loss {loss:.4f} accuracy {100 * acc:.2f} %"
    if TASK != "classification":
        line += f"  {loss / math.log(2):.3f} bits/token  perplexity {math.exp(loss):.2f}"
    return line


def generate(model, tokens, generator):
    """A sample as trainlab draws one: the model reads the last SEQ_LEN tokens and
    the next is drawn from the softmax of its scores / TEMPERATURE (among the
    TOP_K best when set); padding and <unk> are never drawn. An empty prompt
    starts as after a document break."""
    ids = list(PROMPT_IDS) or [2]
    start = len(ids)
    model.eval()
    with torch.no_grad():
        for _ in range(SAMPLE_LENGTH):
            scores = model(torch.tensor([ids[-SEQ_LEN:]]))[0, -1] / max(TEMPERATURE, 1e-6)
            scores[:2] = float("-inf")  # <pad> and <unk>
            if TOP_K is not None:
                kth = scores.topk(min(max(TOP_K, 1), len(scores) - 2)).values[-1]
                scores[scores < kth] = float("-inf")
            ids.append(int(torch.multinomial(scores.softmax(-1), 1, generator=generator)))
    model.train()
    out = ""
    for t in (tokens[i] for i in ids[start:]):
        if WORDS and out and not out.endswith("\n") and t != "\n":
            out += " "
        out += t
    return out


def load_weights(model, path):
    """trainlab's safetensors file into the model; every name must match."""
    from safetensors.torch import load_file

    missing, unexpected = model.load_state_dict(load_file(path), strict=False)
    if missing or unexpected:
        raise SystemExit(f"{path} does not fit this model: missing {missing}, unexpected {unexpected}")


def train(model, tokens, train_set, val_set):
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    optimizer = {{OPTIMIZER}}
    if TASK == "classification":
        n = len(train_set[1])
        steps_per_epoch = max(math.ceil(n / BATCH), 1)
    else:
        # An epoch is as many windows as the training stream holds tokens.
        steps_per_epoch = max(len(train_set) // (BATCH * SEQ_LEN), 1)
    total_steps = steps_per_epoch * EPOCHS
    peak = [g["lr"] for g in optimizer.param_groups]
    step, best, bad = 0, None, 0
    for epoch in range(EPOCHS):
        if TASK == "classification":
            order = torch.randperm(n, generator=generator)
        for index in range(steps_per_epoch):
            if TASK == "classification":
                rows = order[index * BATCH : (index + 1) * BATCH]
                x, y = train_set[0][rows], train_set[1][rows]
                loss = batch_loss(model(x), y)
            else:
                # Random windows anywhere in the training stream.
                starts = torch.randint(0, len(train_set) - SEQ_LEN - 1, (BATCH,), generator=generator)
                x, y = windows(train_set, starts)
                loss = nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
            factor = lr_factor(step, steps_per_epoch, total_steps)
            for group, p in zip(optimizer.param_groups, peak):
                group["lr"] = p * factor
            optimizer.zero_grad()
            loss.backward()
            if CLIP is not None:
                nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
            step += 1
            if step % LOG_EVERY == 0:
                print(f"step {step:>7} epoch {step / steps_per_epoch:5.2f}  train loss {loss.item():.4f}")
            if SAMPLE_EVERY is not None and (step % SAMPLE_EVERY == 0 or step == total_steps):
                text = generate(model, tokens, generator).replace("\n", " / ")
                print(f"step {step} sample (T={TEMPERATURE}): {PROMPT}{text}")
            end_of_epoch = step % steps_per_epoch == 0
            due = end_of_epoch if EVAL_EVERY is None else step % EVAL_EVERY == 0
            result = evaluate(model, val_set) if due else None
            if result is not None:
                print(f"step {step:>7} epoch {step / steps_per_epoch:5.2f}  {figures('val  ', result)}")
                if PATIENCE is not None:
                    # As trainlab: stop once `PATIENCE` evaluations in a row
                    # have not improved (the next one without improvement).
                    if best is None or result[0] < best - MIN_DELTA:
                        best, bad = result[0], 0
                    else:
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
    tokens, classes, (train_set, val_set, test_set) = load()
    model = Model()
    if args.eval_only is not None:
        if not args.eval_only:
            raise SystemExit("--eval-only needs a weights file (this script was exported from an experiment, not a run)")
        load_weights(model, args.eval_only)
    else:
        sizes = [len(s[1]) if TASK == "classification" else len(s) for s in (train_set, val_set, test_set)]
        print(f"{sum(p.numel() for p in model.parameters())} parameters; {len(tokens)} tokens; "
              f"{sizes[0]} train / {sizes[1]} val / {sizes[2]} test {'samples' if TASK == 'classification' else 'tokens'}")
        train(model, tokens, train_set, val_set)
    test = evaluate(model, test_set)
    if test is not None:
        print(figures("test", test))


if __name__ == "__main__":
    main()
