"""Benchmark: the world-model trainer's data path. Samples/s of minibatches drawn from the preloaded
tensors (engine.worldmodel.Tensors: a shuffled index into arrays in memory) against the baseline, a
lazy Dataset that seeks to one JSONL line per item and parses it (`json.loads` in `__getitem__`), batched
by torch's DataLoader the usual way; both over the same training split, in the same process. With
`--epochs N` (default 1; 0 = skip) it also trains the model N epochs at batch 4096 and at batch 1024 on
the same data (step sizes by the square-root rule) as the trainer does, and prints the time per epoch
(where it went, by [PERF] phase) and the validation metrics of both. Absolute figures drift with machine
load; the ratios are the figures of merit. Prints
the loader ratio last.
Usage: python bench/bench_wm_loader.py [--transitions 100000] [--lazy-samples 20000] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from engine import datasets
from engine.perf import PerfTimer
from engine.worldmodel import (
    LossWeights,
    Tensors,
    WorldModel,
    evaluate,
    gradient_step,
    make_optimizer,
    minibatches,
    shuffled,
    sqrt_rule,
)
from envs.duel import rules

BATCH = 1024
PLAYERS = ("sensible", "random")
WEIGHTS = LossWeights(pass_hp=5.0, attack_hp=12.0, switch_hp=1.0, ko=1.0, done=1.0, reward=1.0)


class LazyLines(Dataset[dict[str, torch.Tensor]]):
    """The baseline: item i is line `rows[i]` of the JSONL source, read and parsed when asked for."""

    def __init__(self, source: Path, rows: list[int]) -> None:
        self.source = source
        offsets, at = [], 0
        with source.open("rb") as f:
            for line in f:
                offsets.append(at)
                at += len(line)
        self.offsets = [offsets[r] for r in rows]
        self.file = source.open("rb")

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        self.file.seek(self.offsets[i])
        record: dict[str, Any] = json.loads(self.file.readline())
        return {"obs": torch.tensor(record["obs"], dtype=torch.float32), "action": torch.tensor(record["action"]),
                "opp_action": torch.tensor(record["opp_action"]), "draws": torch.tensor(record["draws"]),
                "hp_delta": torch.tensor(record["hp_delta"], dtype=torch.float32),
                "ko": torch.tensor(record["ko"], dtype=torch.float32),
                "done": torch.tensor(float(record["done"])), "reward": torch.tensor(float(record["reward"]))}


def preloaded_rate(train: Tensors) -> float:
    """Samples/s of one shuffled epoch of minibatches from the preloaded tensors as the trainer reads them
    (the split gathered once in the epoch's order, each minibatch a slice), after one untimed epoch
    (torch's first gathers pay a one-off start-up of about a second)."""
    for epoch in (1, 0):
        started = time.perf_counter()
        data = shuffled(train, 0, epoch)
        for _, rows in minibatches(len(train), BATCH, 0):
            data.rows(rows)
    return len(train) / (time.perf_counter() - started)


def lazy_rate(loader: DataLoader[dict[str, torch.Tensor]], samples: int) -> float:
    """Samples/s of the lazy Dataset's shuffled minibatches, over the first `samples` or so (after one
    untimed minibatch)."""
    next(iter(loader))
    started, seen = time.perf_counter(), 0
    for batch in loader:
        seen += len(batch["obs"])
        if seen >= samples:
            break
    return seen / (time.perf_counter() - started)


def train_epochs(train: Tensors, val: Tensors, batch: int, epochs: int) -> tuple[float, dict[str, float], str]:
    """(seconds per epoch, validation metrics after the last, where the time went) of the model trained
    `epochs` epochs as the trainer does it (engine.worldmodel: one gather per epoch, fused Adam, the loss
    read once per epoch), the validation pass included in the epoch's time."""
    torch.manual_seed(0)
    model = WorldModel(rules.OBS_SIZE, rules.NUM_ACTIONS, [256, 256])
    lr, _ = sqrt_rule(0.0, 1e-3, batch, BATCH)
    optimizer = make_optimizer(model, lr)
    timer = PerfTimer(enabled=True)
    started = time.perf_counter()
    for epoch in range(epochs):
        with timer.phase("data"):
            data = shuffled(train, 0, epoch)
        loss = torch.zeros((), dtype=torch.float64)
        for _, rows in minibatches(len(train), batch, 0):
            loss += gradient_step(model, optimizer, data, rows, WEIGHTS, timer)
        float(loss)
        with timer.phase("eval"):
            metrics = evaluate(model, val, WEIGHTS, 8192)
    seconds = (time.perf_counter() - started) / epochs
    phases = ", ".join(f"{phase} {ns / 1e9 / epochs:.2f}" for phase, ns in timer.phase_ns().items())
    return seconds, metrics, phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=100_000)
    parser.add_argument("--lazy-samples", type=int, default=20_000, help="samples the lazy baseline is timed over")
    parser.add_argument("--epochs", type=int, default=1, help="epochs at batch 4096 and 1024 (0 = skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        datasets.generate(folder, PLAYERS, args.transitions, seed=1)
        dataset = datasets.load(folder)
        started = time.perf_counter()
        train, val = Tensors.from_columns(dataset.train.columns), Tensors.from_columns(dataset.val.columns)
        preload_s = time.perf_counter() - started
        is_val = datasets.split_games(datasets.parse_source(folder / datasets.SOURCE_NAME)[0]["game_id"],
                                      dataset.meta["split_seed"], dataset.meta["val_fraction"])
        lazy = LazyLines(folder / datasets.SOURCE_NAME, [i for i, v in enumerate(is_val.tolist()) if not v])
        assert len(lazy) == len(train)
        loader = DataLoader(lazy, batch_size=BATCH, shuffle=True, num_workers=0)
        fast = preloaded_rate(train)
        slow = lazy_rate(loader, args.lazy_samples)
        print(f"data: {len(train):,} training samples ({dataset.cache_line()}), preloaded as tensors in "
              f"{preload_s:.2f} s; batch {BATCH}")
        print(f"lazy JSONL Dataset (json.loads per item, DataLoader): {slow:,.0f} samples/s "
              f"(over {args.lazy_samples:,})")
        print(f"preloaded tensors (shuffled index): {fast:,.0f} samples/s (one epoch, after one untimed)")
        if args.epochs:
            per_epoch = {}
            for batch in (4096, BATCH):
                per_epoch[batch], metrics, phases = train_epochs(train, val, batch, args.epochs)
                shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
                print(f"batch {batch}: {per_epoch[batch]:.2f} s/epoch over {args.epochs} epoch(s) (s/epoch: {phases}); "
                      f"{shown}")
            print(f"epoch time batch {BATCH} / batch 4096 = {per_epoch[BATCH] / per_epoch[4096]:.2f}x")
        lazy.file.close()
    print(f"ratio preloaded/lazy = {fast / slow:.0f}x")


if __name__ == "__main__":
    main()
