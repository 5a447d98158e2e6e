#!/usr/bin/env python3
"""{{NAME}}: the trainlab maze experiment (DQN) as a standalone PyTorch script.

Written by `trainlab export pytorch`. The maze is written out below; the
Q-network has trainlab's parameter names, so a trainlab run's model.safetensors
loads into it. Training uses the same replay, exploration, target network and
loss; its random numbers are PyTorch's, so compare outcomes, not move by move.

    python this_script.py                  # train, then print the greedy path
    python this_script.py --eval-only [W]  # the greedy path of trained weights W

Needs: torch, numpy, safetensors.
"""

import argparse
import random
from collections import deque

import torch
from torch import nn

# ----- The maze -----
# '#' wall, '.' free, 'S' start, 'G' goal (ends the episode), 'X' pit (ends it
# too), '~' slippery (a move there goes a random way with chance SLIP).
LAYOUT = [
{{LAYOUT}}
]
STEP_REWARD, GOAL_REWARD, PIT_REWARD = {{STEP_REWARD}}, {{GOAL_REWARD}}, {{PIT_REWARD}}
SLIP = {{SLIP}}
MAX_STEPS = {{MAX_STEPS}}  # moves per episode before it is cut off
ENCODING = {{ENCODING}}  # what the network sees of a state
# The optimal path's moves as trainlab's solver finds them (value iteration on
# the exact model); without slippery cells it is the BFS length below.
OPTIMAL = {{OPTIMAL}}
ACTIONS = [(-1, 0), (0, 1), (1, 0), (0, -1)]  # up, right, down, left
SEED = {{SEED}}

# ----- The agent -----
EPISODES = {{EPISODES}}
MAX_ENV_STEPS = {{MAX_ENV_STEPS}}  # stop after this many moves in all (None: no limit)
GAMMA = {{GAMMA}}
EPS_START, EPS_END, EPS_DECAY = {{EPS_START}}, {{EPS_END}}, {{EPS_DECAY}}  # linear over EPS_DECAY episodes
SUCCESS_WINDOW = {{SUCCESS_WINDOW}}  # episodes the success rate is measured over
LOG_EVERY = {{LOG_EVERY}}  # episodes between progress lines (and optimality checks)
STOP_WHEN_OPTIMAL = {{STOP_WHEN_OPTIMAL}}
REPLAY = {{REPLAY}}  # moves kept for replay, oldest dropped first
BATCH = {{BATCH}}
LEARNING_STARTS = {{LEARNING_STARTS}}  # moves before the first gradient step
TRAIN_EVERY = {{TRAIN_EVERY}}  # one gradient step every N moves
TARGET_KIND, TARGET_VALUE = {{TARGET_KIND}}, {{TARGET_VALUE}}  # hard: copy every N steps; soft: tau
LOSS = {{LOSS}}  # mse, or huber (smooth L1 with delta 1)
DOUBLE = {{DOUBLE}}  # double DQN: the online net picks the next action, the target values it
CLIP = {{CLIP}}  # gradient norm clipping (None: off)
WEIGHTS = {{WEIGHTS}}  # trained weights of the run this was exported from
EVAL_ONLY = {{EVAL_ONLY}}


class Maze:
    """States are the non-wall cells, numbered row by row, as trainlab numbers them."""

    def __init__(self, rows):
        self.rows, self.cols = len(rows), len(rows[0])
        self.grid = rows
        self.cells = [(r, c) for r in range(self.rows) for c in range(self.cols) if rows[r][c] != "#"]
        self.state_of = {cell: s for s, cell in enumerate(self.cells)}
        self.start = next(s for s, (r, c) in enumerate(self.cells) if rows[r][c] == "S")

    def kind(self, r, c):
        inside = 0 <= r < self.rows and 0 <= c < self.cols
        return self.grid[r][c] if inside else "#"

    def terminal(self, s):
        return self.kind(*self.cells[s]) in "GX"

    def goal(self, s):
        return self.kind(*self.cells[s]) == "G"

    def move(self, s, a):
        """Where action a leads from s without slipping, and the reward for arriving.
        Walls and the edge leave the agent in place; a finished episode stays put."""
        if self.terminal(s):
            return s, 0.0
        r, c = self.cells[s]
        nr, nc = r + ACTIONS[a][0], c + ACTIONS[a][1]
        if self.kind(nr, nc) == "#":
            nr, nc = r, c
        arrived = self.kind(nr, nc)
        reward = GOAL_REWARD if arrived == "G" else PIT_REWARD if arrived == "X" else STEP_REWARD
        return self.state_of[(nr, nc)], reward

    def step(self, s, a, rng):
        """One move: (next state, reward, episode over)."""
        r, c = self.cells[s]
        if self.grid[r][c] == "~" and SLIP > 0 and rng.random() < SLIP:
            a = rng.randrange(4)
        to, reward = self.move(s, a)
        return to, reward, self.terminal(to)

    def encode(self):
        """Every state's network input, one row per state."""
        scale = lambda x, n: x / (max(n, 2) - 1)
        rows = []
        for s, (r, c) in enumerate(self.cells):
            if ENCODING == "OneHot":
                row = [0.0] * len(self.cells)
                row[s] = 1.0
            elif ENCODING == "Coordinates":
                row = [scale(r, self.rows), scale(c, self.cols)]
            else:
                # ("LocalView", radius): three flags per cell around the agent
                # (wall or outside, goal, pit), then the scaled coordinates.
                radius = ENCODING[1]
                row = []
                for dr in range(-radius, radius + 1):
                    for dc in range(-radius, radius + 1):
                        seen = self.kind(r + dr, c + dc)
                        row += [float(seen == "#"), float(seen == "G"), float(seen == "X")]
                row += [scale(r, self.rows), scale(c, self.cols)]
            rows.append(row)
        return torch.tensor(rows, dtype=torch.float32)

    def shortest(self):
        """Moves on a shortest path from the start to a goal (breadth-first search
        through neither walls nor pits), or None."""
        dist = {self.start: 0}
        queue = deque([self.start])
        while queue:
            s = queue.popleft()
            if self.goal(s):
                return dist[s]
            if self.terminal(s):
                continue
            for a in range(4):
                to, _ = self.move(s, a)
                if to not in dist:
                    dist[to] = dist[s] + 1
                    queue.append(to)
        return None


class QNetwork(nn.Module):
    """The experiment's layer list; `layers.{i}` is trainlab's layer i. States in,
    one Q-value per action (up, right, down, left) out."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
{{MODEL}}
        )

    def forward(self, x):
        return self.layers(x)


def greedy_path(maze, q):
    """From the start, always the best action (the first of equal ones), never
    slipping, until a goal or pit, a cell seen before, or MAX_STEPS moves:
    (moves, reached a goal)."""
    s, seen = maze.start, {maze.start}
    for _ in range(MAX_STEPS):
        if maze.terminal(s):
            break
        to, _ = maze.move(s, int(q[s].argmax()))
        if to in seen:
            break
        seen.add(to)
        s = to
    return len(seen) - 1, maze.goal(s)


def describe(moves, reached):
    path = f"{moves} moves" if reached else "does not reach a goal"
    optimal = ", optimal" if reached and moves <= OPTIMAL else ""
    return f"{path}; optimal {OPTIMAL} (shortest {SHORTEST}){optimal}"


def q_all(net, inputs):
    net.eval()
    with torch.no_grad():
        return net(inputs)


def train(net, maze, inputs):
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    model = net  # the name the optimizer line uses
    optimizer = {{OPTIMIZER}}
    target = QNetwork()
    target.load_state_dict(net.state_dict())  # the target starts as a copy
    target.eval()
    replay = deque(maxlen=REPLAY)
    env_steps, gradient_steps, losses, outcomes = 0, 0, [], deque(maxlen=SUCCESS_WINDOW)
    for episode in range(EPISODES):
        epsilon = EPS_END if episode >= EPS_DECAY else EPS_START + (EPS_END - EPS_START) * episode / EPS_DECAY
        s, length, reached = maze.start, 0, False
        while length < MAX_STEPS:
            if rng.random() < epsilon:
                a = rng.randrange(4)
            else:
                a = int(q_all(net, inputs[s : s + 1])[0].argmax())
            to, reward, end = maze.step(s, a, rng)
            replay.append((s, a, reward, to, end))
            length += 1
            env_steps += 1
            if env_steps >= LEARNING_STARTS and len(replay) >= BATCH and env_steps % TRAIN_EVERY == 0:
                losses.append(train_step(net, target, optimizer, replay, inputs, rng))
                gradient_steps += 1
                update_target(net, target, gradient_steps)
            s = to
            if end:
                reached = maze.goal(s)
                break
        outcomes.append(reached)
        done = episode + 1
        last = done == EPISODES or (MAX_ENV_STEPS is not None and env_steps >= MAX_ENV_STEPS)
        if done % LOG_EVERY == 0 or last:
            moves, goal = greedy_path(maze, q_all(net, inputs))
            loss = f"  loss {sum(losses) / len(losses):.4f}" if losses else ""
            losses = []
            print(f"episode {done:>5}  success {100 * sum(outcomes) / len(outcomes):.0f}%  eps {epsilon:.3f}  "
                  f"greedy {describe(moves, goal)}{loss}")
            if STOP_WHEN_OPTIMAL and goal and moves <= OPTIMAL:
                print(f"solved after {done} episodes ({env_steps} moves)")
                return
            if last:
                return


def train_step(net, target, optimizer, replay, inputs, rng):
    """One gradient step on a random batch of remembered moves (drawn with
    replacement): Q(s, a) towards r + GAMMA * Q_target(s', best a')."""
    batch = [replay[rng.randrange(len(replay))] for _ in range(BATCH)]
    s, a, r, s2, end = (torch.tensor(v) for v in zip(*batch))
    with torch.no_grad():
        q_next = target(inputs[s2])
        if DOUBLE:
            net.eval()
            best = net(inputs[s2]).argmax(1)
        else:
            best = q_next.argmax(1)
        y = r.float() + GAMMA * q_next.gather(1, best.unsqueeze(1)).squeeze(1) * (~end).float()
    net.train()
    q = net(inputs[s]).gather(1, a.unsqueeze(1)).squeeze(1)
    if LOSS == "huber":
        loss = nn.functional.huber_loss(q, y, delta=1.0)
    else:
        loss = nn.functional.mse_loss(q, y)
    optimizer.zero_grad()
    loss.backward()
    if CLIP is not None:
        nn.utils.clip_grad_norm_(net.parameters(), CLIP)
    optimizer.step()
    return loss.item()


def update_target(net, target, gradient_steps):
    with torch.no_grad():
        if TARGET_KIND == "hard":
            if gradient_steps % TARGET_VALUE == 0:
                for t, o in zip(target.parameters(), net.parameters()):
                    t.copy_(o)
        else:
            for t, o in zip(target.parameters(), net.parameters()):
                t.mul_(1 - TARGET_VALUE).add_(TARGET_VALUE * o)


def load_weights(net, path):
    """trainlab's safetensors file into the network (PyTorch's own batch-norm
    counter, which trainlab does not keep, is the only key allowed to be missing)."""
    from safetensors.torch import load_file

    missing, unexpected = net.load_state_dict(load_file(path), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"{path} does not fit this network: missing {missing}, unexpected {unexpected}")


def main():
    global SHORTEST
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval-only", nargs="?", const=WEIGHTS or "", default=WEIGHTS if EVAL_ONLY else None,
                        metavar="WEIGHTS", help="the greedy path of trained weights (safetensors) instead of training")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    # A network this small runs fastest on one thread (many threads only wait on each other).
    torch.set_num_threads(1)
    maze = Maze(LAYOUT)
    SHORTEST = maze.shortest()
    inputs = maze.encode()
    net = QNetwork()
    if args.eval_only is not None:
        if not args.eval_only:
            raise SystemExit("--eval-only needs a weights file (this script was exported from an experiment, not a run)")
        load_weights(net, args.eval_only)
    else:
        print(f"{sum(p.numel() for p in net.parameters())} parameters; {len(maze.cells)} states; "
              f"shortest path {SHORTEST} moves")
        train(net, maze, inputs)
    moves, reached = greedy_path(maze, q_all(net, inputs))
    print(f"greedy path: {describe(moves, reached)}")


if __name__ == "__main__":
    main()
