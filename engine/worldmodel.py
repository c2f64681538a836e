"""The supervised world-model trainer (`trainctl run --algo worldmodel --data DIR`): an MLP that reads one
Duel transition's observation and both sides' actions and predicts what the turn does: the HP deltas of
the six creatures, which of them are knocked out, whether the game ends, and the reward. docs/worldmodel.md
says what it reads, reports and writes.

`train(ctx, resume)` follows the protocol of engine.trainers. The dataset (engine.datasets, `data.dir`) is
loaded from its cache (or the cache is rebuilt, and the log and run.json say which) and each split is
copied once into tensors (`Tensors`): a minibatch is an index into them, nothing is parsed while training.
The run's step is the number of training samples seen (a sample is one transition), so the perf events'
steps/s is samples/s and the plots' x axis is samples seen; the budget is `worldmodel.epochs` (or, after
`--resume RUN --steps N`, enough epochs for N samples: `budget_epochs`), and the run's `total_steps`
(run.json) becomes epochs x training samples once the data is loaded.

Each epoch: the training split gathered once in an order drawn from the seed and the epoch, its
minibatches slices of that copy (so a resume continues the same epoch at the same minibatch), then the
validation metrics, a metric event, the plateau scheduler and early stopping on `val_total`, the best
model in best/ and a periodic checkpoint. The step size follows
the square-root rule (`lr_for`). AMP (bf16 autocast) applies on CUDA only.

Nothing here generates data or plays games.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine import datasets, distributed
from engine.checkpoint import NETWORK_KEYS, check_checkpoint, checkpoint_name, keep_best
from engine.context import RunContext, setup_torch, versions
from engine.errors import UsageError
from engine.perf import PerfTimer
from engine.players import BEST_FOLDER
from engine.profiles import ResolvedConfig
from engine.runstore import atomic_write_json
from engine.sb3_hooks import bf16_autocast
from engine.wm_inputs import ATTACKS, DRAW_FEATURES, MATCHUP_SIDE, SPECIES, input_width
from envs.duel import rules

# 2: the model reads the turn's random draws (`draw_features`); 3: its HP deltas are 0 outside the creatures in
# play (`WorldModel.forward`), so a /2 model's weights would compute another function
STATE_FORMAT = "trainctl.worldmodel/3"
HP_SLOTS = datasets.HP_COLUMNS
HP_SCALE = float(rules.PARAMS.hp_scale)  # HP deltas are learnt in the observation's units (HP / 100)
_ACCURACY, _ROLL, _FIRST = rules.DRAWS.index("accuracy_0"), rules.DRAWS.index("roll_0"), rules.DRAWS.index("first")
STATE_KEYS: Mapping[str, type | tuple[type, ...]] = {
    **NETWORK_KEYS, "model": dict, "optimizer": dict, "scheduler": dict, "epoch": int, "batch_in_epoch": int,
    "samples": int, "best_val_total": float, "bad_epochs": int, "data_sha256": str, "rng_torch": torch.Tensor,
}


# -- the square-root rule, early stopping -------------------------------------------------------------------
def lr_for(cfg: ResolvedConfig) -> tuple[float, str]:
    """The step size of the run and how it was chosen: `worldmodel.lr` when set (> 0), else
    `lr_base * sqrt(batch_size / batch_base)` (lr_base itself when the batch is batch_base)."""
    w = cfg.section("worldmodel")
    return sqrt_rule(float(w["lr"]), float(w["lr_base"]), int(w["batch_size"]), int(w["batch_base"]))


def sqrt_rule(lr: float, lr_base: float, batch: int, batch_base: int) -> tuple[float, str]:
    """See `lr_for`; the text is the banner's."""
    if lr > 0:
        return lr, f"{lr:g} (worldmodel.lr, as set: the square-root rule is not applied)"
    if batch == batch_base:
        return lr_base, f"{lr_base:g} (lr_base at batch_base {batch_base})"
    scaled = lr_base * math.sqrt(batch / batch_base)
    return scaled, (f"{scaled:.6g} = lr_base {lr_base:g} x sqrt(batch {batch} / batch_base {batch_base}) "
                    "(square-root rule)")


@dataclass
class EarlyStopping:
    """Stops after `patience` epochs in a row without a val_total below the best (0 = never stops)."""

    patience: int
    best: float = math.inf
    bad_epochs: int = 0

    def update(self, value: float) -> bool:
        """Record one epoch's val_total; True when it is the best so far."""
        if value < self.best:
            self.best, self.bad_epochs = value, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience


RECORDED_TOTAL = "worldmodel.epochs x training samples"  # run.total_steps' source once a run has recorded it
RESUME_TOTAL = "--steps on resume"  # the start of its source after `trainctl run --resume RUN --steps N`


def budget_epochs(cfg: ResolvedConfig, train_samples: int) -> int:
    """The epochs a run trains: `worldmodel.epochs`, unless run.total_steps was recorded by the run (a resume)
    or set by `--resume --steps N`: then the epochs that cover that many samples, rounded up."""
    source = cfg.source("run.total_steps")
    if source == RECORDED_TOTAL or source.startswith(RESUME_TOTAL):
        return max(1, math.ceil(int(cfg["run.total_steps"]) / max(train_samples, 1)))
    return int(cfg["worldmodel.epochs"])


def plateau_scheduler(optimizer: torch.optim.Optimizer, factor: float, patience: int
                      ) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """Multiplies the step size by `factor` after more than `patience` epochs without a better val_total."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=patience)


# -- the model and its data ---------------------------------------------------------------------------------
class WorldModel(nn.Module):
    """An MLP over `features` (float32[B, input_width]: the observation, both actions one-hot, the turn's
    draws, the matchup crosses) with four heads: HP deltas [B, 6] (in HP / 100), KO logits [B, 6], done
    logit [B], reward [B]. The HP deltas are those of the two creatures in play (the fighters); the other
    four are 0 by construction."""

    def __init__(self, obs_size: int, num_actions: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.input_width = input_width(obs_size, num_actions)
        widths = [self.input_width, *hidden]
        self.trunk = nn.Sequential(*(part for a, b in pairwise(widths) for part in (nn.Linear(a, b), nn.ReLU())))
        self.hp = nn.Linear(widths[-1], HP_SLOTS)
        self.ko = nn.Linear(widths[-1], HP_SLOTS)
        self.done = nn.Linear(widths[-1], 1)
        self.reward = nn.Linear(widths[-1], 1)
        # Logits a HP that a fighter's predicted HP after the turn below half a HP adds to its KO logit (`forward`).
        self.ko_per_hp = nn.Parameter(torch.ones(()))
        # Logits a creature that the fewest-left side keeps below half a creature adds to the done logit (`forward`).
        self.done_per_creature = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        # The four heads as one product (their weights stacked): one matrix product forward and two backward
        # instead of four and eight, the same figures (the heads stay four modules, as checkpoints hold them).
        heads = (self.hp, self.ko, self.done, self.reward)
        weight, bias = torch.cat([head.weight for head in heads]), torch.cat([head.bias for head in heads])
        out = nn.functional.linear(h, weight, bias)
        hp, ko, done, reward = out.split([HP_SLOTS, HP_SLOTS, 1, 1], dim=1)
        # Only the two creatures in play can lose or gain HP in a turn (an attack lands on the foe's fighter, a
        # pass heals one's own): the other four deltas are 0 by construction, not approximately.
        in_play = x[:, FIGHTER_SLOT_COLUMNS]
        hp = hp * in_play
        # A fighter's KO logit also reads the HP head's prediction: the HP read plus the predicted delta (in HP)
        # below half a HP is evidence of a KO. The HP head learns the damage to the HP, and a KO is that damage
        # reaching the HP read; the KO head alone learnt the comparison less sharply (docs/worldmodel.md, "Less
        # drift"). Read detached: the KO loss does not train the HP head (only the HP loss does).
        # To the whole HP, as the game's HP are (and as wm-bench's rollout rounds them): unrounded, the KO logit
        # would move ko_per_hp logits per HP of the HP head's float32 rounding, ~2e-5, beyond the ONNX parity.
        hp_after = torch.round((x[:, OBS_HP_COLUMNS] + hp.detach()) * HP_SCALE)
        ko = ko + in_play * self.ko_per_hp * (0.5 - hp_after)
        # The done logit reads the KO logits (detached) the same way: the game ends when a side has no creature
        # left after the turn's KOs, so the fewer the creatures the side with fewest keeps, the likelier the end.
        alive = x[:, OBS_ALIVE_COLUMNS]
        kept = (alive * torch.sigmoid(-ko.detach())).view(-1, 2, rules.TEAM_SIZE).sum(dim=2)
        done = done.squeeze(-1) + self.done_per_creature * (0.5 - kept.min(dim=1).values)
        return hp, ko, done, reward.squeeze(-1)


@dataclass
class Tensors:
    """One split preloaded: inputs float32[N, features' width], HP deltas float32[N, 6] (HP / 100), KO
    float32[N, 6], done float32[N], reward float32[N], the agent's action int64[N]. When the features are
    rebuilt while training (`worldmodel.hp_noise` > 0, `with_hp_noise`) what its HP columns are rebuilt from
    is kept too: observations float32[N, OBS_SIZE] and the opponent's action int64[N]; otherwise they are
    None and cost nothing."""

    x: torch.Tensor
    hp: torch.Tensor
    ko: torch.Tensor
    done: torch.Tensor
    reward: torch.Tensor
    action: torch.Tensor
    obs: torch.Tensor | None = None
    opp_action: torch.Tensor | None = None

    @classmethod
    def from_columns(cls, columns: Mapping[str, np.ndarray], keep_inputs: bool = False) -> Tensors:
        """From a split's columns (engine.datasets; read-only memory maps are copied into memory once);
        `keep_inputs` keeps the observations and the opponent's actions (for `with_hp_noise`)."""
        def column(name: str, dtype: type) -> torch.Tensor:
            return torch.from_numpy(np.array(columns[name], dtype=dtype))

        action, obs = column("action", np.int64), column("obs", np.float32)
        opp_action = column("opp_action", np.int64)
        return cls(x=features(obs, action, opp_action, column("draws", np.int64)),
                   hp=column("hp_delta", np.float32) / HP_SCALE, ko=column("ko", np.float32),
                   done=column("done", np.float32), reward=column("reward", np.float32), action=action,
                   **({"obs": obs, "opp_action": opp_action} if keep_inputs else {}))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def _map(self, apply: Callable[[torch.Tensor], torch.Tensor]) -> Tensors:
        """`apply` to every column (the kept inputs too, when there are)."""
        def kept(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else apply(t)

        return Tensors(apply(self.x), apply(self.hp), apply(self.ko), apply(self.done), apply(self.reward),
                       apply(self.action), kept(self.obs), kept(self.opp_action))

    def rows(self, index: torch.Tensor | slice) -> Tensors:
        """The rows `index` (a slice is a view; an index tensor a gather, index_select being the fastest)."""
        if isinstance(index, slice):
            return self._map(lambda t: t[index])
        return self._map(lambda t: t.index_select(0, index))

    def to(self, device: torch.device) -> Tensors:
        return self._map(lambda t: t.to(device))


def features(obs: torch.Tensor, action: torch.Tensor, opp_action: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """The model's input: observations [B, D], both sides' actions [B] and the turn's draws [B, 5]
    (rules.DRAWS) -> [B, D + 2 x NUM_ACTIONS + DRAW_FEATURES + MATCHUP_FEATURES]."""
    one_hot = nn.functional.one_hot
    return torch.cat([obs, one_hot(action, rules.NUM_ACTIONS).float(), one_hot(opp_action, rules.NUM_ACTIONS).float(),
                      draw_features(draws), matchup_features(obs, action, opp_action, draws)], dim=1)




def matchup_features(obs: torch.Tensor, action: torch.Tensor, opp_action: torch.Tensor,
                     draws: torch.Tensor) -> torch.Tensor:
    """float32[B, MATCHUP_FEATURES]: the observation, actions and draws crossed so that what a turn does is
    close to linear in them (an MLP over the raw one-hots has to learn these products itself, and learnt
    them to ~2 HP a slot, too coarse for the rollout gates). For side 0 then side 1, with its fighter the
    creature in play once switches are made (a switch's target, else the active one):
    - which attack it made: one-hot over (its fighter's species, move slot, the foe's fighter's species),
      set only on a hit; and the same one-hot times the hit's roll scaled to [0, 1];
    - its fighter's species one-hot when it passed (what a pass heals depends on it);
    - its fighter's team slot one-hot (where the foe's damage lands) and its HP / 100 (what the foe's
      damage is capped at: a KO is damage reaching it).
    Everything comes from the inputs; no rules table (power, stats, effects) is read."""
    one_hot = nn.functional.one_hot
    fighter_slot, fighter_species, fighter_hp = zip(*fighters(obs, action, opp_action), strict=True)
    columns = []
    for side, act in enumerate((action, opp_action)):
        roll = draws[:, _ROLL + side]
        hit = ((roll != rules.NO_DRAW) & (act < rules.PASS)).float().unsqueeze(1)
        move_slot = act.clamp(max=rules.MOVES_PER_CREATURE - 1)
        attack = (fighter_species[side] * rules.MOVES_PER_CREATURE + move_slot) * SPECIES + fighter_species[1 - side]
        attack_hit = one_hot(attack, ATTACKS).float() * hit
        roll_scaled = ((roll - rules.PARAMS.roll_min).float() / (rules.PARAMS.roll_range - 1)).unsqueeze(1)
        passed = (act == rules.PASS).float().unsqueeze(1)
        columns += [attack_hit, attack_hit * roll_scaled, one_hot(fighter_species[side], SPECIES).float() * passed,
                    one_hot(fighter_slot[side], rules.TEAM_SIZE).float(), fighter_hp[side]]
    return torch.cat(columns, dim=1)


def fighters(obs: torch.Tensor, action: torch.Tensor, opp_action: torch.Tensor
             ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """For side 0 then side 1, its fighter (the creature in play once switches are made: a switch's target,
    else the active one): its team slot int64[B], species int64[B] and HP / 100 float32[B, 1]."""
    slots = obs[:, : HP_SLOTS * rules.SLOT_SIZE].reshape(-1, HP_SLOTS, rules.SLOT_SIZE)
    out = []
    for side, act in enumerate((action, opp_action)):
        team = slots[:, side * rules.TEAM_SIZE: (side + 1) * rules.TEAM_SIZE]
        slot = torch.where(act >= rules.SWITCH, act - rules.SWITCH, team[:, :, 2].argmax(dim=1))
        fighter = team[torch.arange(len(obs)), slot]
        out.append((slot, fighter[:, 3:].argmax(dim=1), fighter[:, :1]))
    return out


# The input columns that read a creature's HP: the observation's six, then the matchup's fighter HP of each side
# (the last column of its block).
OBS_HP_COLUMNS = [slot * rules.SLOT_SIZE for slot in range(HP_SLOTS)]
OBS_ALIVE_COLUMNS = [slot * rules.SLOT_SIZE + 1 for slot in range(HP_SLOTS)]  # each creature's alive flag
_MATCHUP_START = rules.OBS_SIZE + 2 * rules.NUM_ACTIONS + DRAW_FEATURES
FIGHTER_HP_COLUMNS = [_MATCHUP_START + (side + 1) * MATCHUP_SIDE - 1 for side in (0, 1)]
# Each side's fighter's team slot one-hot (before its HP in its matchup block), side 0's then side 1's: in the HP
# slots' order (my slots, then theirs), 1 where a slot's creature is in play this turn.
FIGHTER_SLOT_COLUMNS = [_MATCHUP_START + (side + 1) * MATCHUP_SIDE - 1 - rules.TEAM_SIZE + slot
                        for side in (0, 1) for slot in range(rules.TEAM_SIZE)]


def draw_features(draws: torch.Tensor) -> torch.Tensor:
    """float32[B, DRAW_FEATURES] of the turn's draws int[B, 5] (rules.DRAWS, NO_DRAW where none was made):
    for side 0's attack then side 1's, whether it drew for accuracy (it attacked while able to), whether it
    hit (a roll was drawn) and its roll scaled to [0, 1] (0 without a hit); then the speed tie's draw one-hot
    (side 0 first, side 1 first; both 0 when there was no tie). The accuracy draw's value is left out: a turn
    depends on it only through hit or miss, which the roll's presence says."""
    columns = []
    roll_span = float(rules.PARAMS.roll_range - 1)
    for side in (0, 1):
        accuracy, roll = draws[:, _ACCURACY + side], draws[:, _ROLL + side]
        hit = roll != rules.NO_DRAW
        columns += [(accuracy != rules.NO_DRAW).float(), hit.float(),
                    torch.where(hit, (roll - rules.PARAMS.roll_min).float() / roll_span, 0.0)]
    first = draws[:, _FIRST]
    columns += [(first == 0).float(), (first == 1).float()]
    return torch.stack(columns, dim=1)


SPECIES_MAX_HP = torch.tensor([species.hp for species in rules.SPECIES], dtype=torch.float32)


def with_hp_noise(epoch_data: Tensors, hp_noise: int, generator: torch.Generator) -> Tensors:
    """`epoch_data` (an epoch's own copy, `shuffled`: changed in place) with each living creature's HP
    input raised by an integer drawn uniformly from [0, hp_noise] (`generator`), clipped to its species'
    maximum, and the features that read it rebuilt (`OBS_HP_COLUMNS` and `FIGHTER_HP_COLUMNS`: the other
    columns do not read HP, so the result is `features` of the noised observations). The targets stay the
    real game's: the HP deltas the turn dealt, its KOs, done and reward (docs/worldmodel.md, "Training on
    drifted HP").
    Fainted creatures (0 HP) are left at 0: the rollout never revives one. Needs the kept inputs
    (`Tensors.from_columns(..., keep_inputs=True)`)."""
    if epoch_data.obs is None or epoch_data.opp_action is None:
        raise ValueError("with_hp_noise needs the observations and the opponent's actions kept")
    slots = epoch_data.obs[:, : HP_SLOTS * rules.SLOT_SIZE].view(-1, HP_SLOTS, rules.SLOT_SIZE)
    hp = torch.round(slots[:, :, 0].double() * HP_SCALE)
    raise_by = torch.randint(0, hp_noise + 1, hp.shape, generator=generator).to(hp.device)
    max_hp = SPECIES_MAX_HP.to(hp.device)[slots[:, :, 3:].argmax(dim=2)].double()
    noised = torch.where(hp > 0, torch.minimum(hp + raise_by, max_hp), hp)
    # Only the changed HP are rewritten, as the observation holds them (hp / 100 in float64, then float32).
    slots[:, :, 0] = torch.where(noised != hp, (noised / HP_SCALE).float(), slots[:, :, 0])
    epoch_data.x[:, OBS_HP_COLUMNS] = epoch_data.obs[:, OBS_HP_COLUMNS]
    for column, (_, _, hp_of_fighter) in zip(FIGHTER_HP_COLUMNS, fighters(epoch_data.obs, epoch_data.action,
                                                                             epoch_data.opp_action), strict=True):
        epoch_data.x[:, column] = hp_of_fighter[:, 0]
    return epoch_data


@dataclass(frozen=True)
class LossWeights:
    """The weights of the loss's parts: the HP-delta error on pass, attack and switch turns, KO, done, reward."""

    pass_hp: float
    attack_hp: float
    switch_hp: float
    ko: float
    done: float
    reward: float

    @classmethod
    def from_config(cls, cfg: ResolvedConfig) -> LossWeights:
        w = cfg.section("worldmodel")
        return cls(float(w["w_pass"]), float(w["w_attack_hp"]), float(w["w_switch_hp"]), float(w["w_ko"]),
                   float(w["w_done"]), float(w["w_reward"]))

    def hp_row_weights(self, action: torch.Tensor) -> torch.Tensor:
        """float32[B]: each row's HP-loss weight by the agent's action (attack < PASS < switch)."""
        weights = torch.full(action.shape, self.switch_hp, dtype=torch.float32, device=action.device)
        weights[action < rules.PASS] = self.attack_hp
        weights[action == rules.PASS] = self.pass_hp
        return weights


def loss_sum(outputs: Sequence[torch.Tensor], batch: Tensors, weights: LossWeights) -> torch.Tensor:
    """The weighted loss summed over the batch's rows (divide by the rows for the mean): squared HP-delta
    error (mean over the six slots, 0 on a slot knocked out that turn, weighted by the turn's action), binary
    cross-entropy of KO (mean over slots) and done, squared reward error.

    A knocked-out creature's HP delta is left out because nothing reads it: its next HP is 0, which the KO
    flag says (wm-bench sets a creature it predicts KO to 0 HP). Its target, minus the HP the creature had,
    is a clip the HP head would otherwise have to learn, and with `worldmodel.hp_noise` it cannot be known
    from the (raised) HP the model reads: noise in the loss that costs the other slots' precision."""
    hp, ko, done, reward = (o.float() for o in outputs)
    bce = nn.functional.binary_cross_entropy_with_logits
    per_row = (weights.hp_row_weights(batch.action) * ((hp - batch.hp) ** 2 * (1.0 - batch.ko)).mean(dim=1)
               + weights.ko * bce(ko, batch.ko, reduction="none").mean(dim=1)
               + weights.done * bce(done, batch.done, reduction="none")
               + weights.reward * (reward - batch.reward) ** 2)
    return per_row.sum()


VAL_SUMS = ("rows", "loss", "pass_err", "pass_n", "attack_err", "attack_n", "ko_true", "ko_missed", "done_hit",
            "done_loss", "reward_err")


class ValTotals:
    """Sums over validation batches, for `metrics()`: HP errors in HP points on pass and attack turns, KO
    misses, done hits and loss, reward error, the weighted loss. Kept as one float64 tensor (`VAL_SUMS`),
    read once at the end: no per-batch synchronisation, and a distributed job sums it in one all_reduce."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.sums = torch.zeros(len(VAL_SUMS), dtype=torch.float64, device=device)

    def add(self, outputs: Sequence[torch.Tensor], batch: Tensors, weights: LossWeights) -> None:
        hp, ko, done, reward = (o.float() for o in outputs)
        survived = 1.0 - batch.ko  # the HP error over the slots not knocked out (`loss_sum`: the others' is not read)
        err = ((hp - batch.hp).abs() * HP_SCALE * survived).sum(dim=1) / survived.sum(dim=1).clamp(min=1.0)
        passed, attacked = (batch.action == rules.PASS).float(), (batch.action < rules.PASS).float()
        true_ko = batch.ko > 0.5
        parts = [torch.tensor(float(len(batch)), device=err.device), loss_sum(outputs, batch, weights),
                 (err * passed).sum(), passed.sum(), (err * attacked).sum(), attacked.sum(), true_ko.sum(),
                 (true_ko & (ko < 0)).sum(), ((done > 0) == (batch.done > 0.5)).sum(),
                 nn.functional.binary_cross_entropy_with_logits(done, batch.done, reduction="sum"),
                 (reward - batch.reward).abs().sum()]
        self.sums += torch.stack([part.double() for part in parts])

    def metrics(self) -> dict[str, float]:
        """`val/pass_hp_mae`, `val/attack_hp_mae` (HP points per creature slot), `val/ko_miss_rate` (true KOs
        predicted not KO / true KOs; 0 with none), `val/done_acc`, `val/done_loss`, `val/reward_mae`,
        `val_total` (the training loss's mean over the split)."""
        s = dict(zip(VAL_SUMS, self.sums.tolist(), strict=True))
        rows = max(s["rows"], 1.0)
        return {"val/pass_hp_mae": s["pass_err"] / max(s["pass_n"], 1.0),
                "val/attack_hp_mae": s["attack_err"] / max(s["attack_n"], 1.0),
                "val/ko_miss_rate": s["ko_missed"] / max(s["ko_true"], 1.0),
                "val/done_acc": s["done_hit"] / rows, "val/done_loss": s["done_loss"] / rows,
                "val/reward_mae": s["reward_err"] / rows, "val_total": s["loss"] / rows}


@torch.no_grad()
def evaluate(model: nn.Module, val: Tensors, weights: LossWeights, batch_size: int,
             autocast: str | None = None, ranks: distributed.Ranks | None = None) -> dict[str, float]:
    """The validation metrics (`ValTotals.metrics`) of `model` over the whole split `val`; in a distributed
    job (`ranks`) each rank reads its contiguous share and the sums are added over the ranks."""
    was_training = model.training
    model.eval()
    ranks = ranks if ranks is not None else distributed.Ranks()
    first, end = len(val) * ranks.rank // ranks.world, len(val) * (ranks.rank + 1) // ranks.world
    totals = ValTotals(val.x.device)
    for start in range(first, end, batch_size):
        batch = val.rows(slice(start, min(start + batch_size, end)))
        with bf16_autocast(autocast):
            outputs = model(batch.x)
        totals.add(outputs, batch, weights)
    if ranks.distributed:
        distributed.all_sum(totals.sums)
    model.train(was_training)
    return totals.metrics()


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of `epoch`'s order and then its HP noise: the same for the same seed and epoch (a resume
    relies on it, and so do the ranks of a distributed job, which each draw the same)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def epoch_order(seed: int, epoch: int, rows: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The training rows' order in `epoch` (drawn from `generator`, by default `epoch_generator`'s)."""
    return torch.randperm(rows, generator=generator or epoch_generator(seed, epoch))


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Adam:
    """Adam, fused (one kernel for all the parameters' updates instead of a few per parameter: the per-step
    cost that a small batch pays most often)."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True)


def shuffled(data: Tensors, seed: int, epoch: int, hp_noise: int = 0) -> Tensors:
    """The training split in `epoch`'s order (`epoch_order`), gathered once: each minibatch is then a
    slice of it (a view), not a gather of its own; the copy lives for the epoch. With `hp_noise` > 0 the
    copy's HP inputs are noised and its features rebuilt (`with_hp_noise`), so every epoch, and so every
    minibatch, reads fresh noise; with 0 nothing is rebuilt."""
    generator = epoch_generator(seed, epoch)
    epoch_data = data.rows(epoch_order(seed, epoch, len(data), generator).to(data.x.device))
    return with_hp_noise(epoch_data, hp_noise, generator) if hp_noise > 0 else epoch_data


def minibatches(rows: int, batch_size: int, first: int) -> Iterator[tuple[int, slice]]:
    """(minibatch number, its rows) of an epoch of `rows` rows (in `shuffled` order) from minibatch `first`
    on; the last one may be short."""
    for number in range(first, math.ceil(rows / batch_size)):
        yield number, slice(number * batch_size, min((number + 1) * batch_size, rows))


def gradient_step(model: nn.Module, optimizer: torch.optim.Optimizer, data: Tensors, index: torch.Tensor | slice,
                  weights: LossWeights, timer: PerfTimer, autocast: str | None = None, step_rows: int | None = None,
                  sync: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """One gradient step on rows `index` of `data`, timed as the `data`, `forward`, `backward`, `sync` and
    `optimizer` phases; returns the loss summed over the rows (a tensor: reading it would wait for the step).
    The step follows the loss's mean over `step_rows` (default: the rows of `index`). In a distributed job
    a rank holds only its share of the step's rows, and `sync(loss)`, between the backward pass and the
    optimizer, sums the gradients over the ranks and returns the loss summed over them."""
    with timer.phase("data"):
        batch = data.rows(index)
        rows = len(batch)
    with timer.phase("forward"), bf16_autocast(autocast):
        outputs = model(batch.x)
    with timer.phase("backward"):
        loss = loss_sum(outputs, batch, weights)
        optimizer.zero_grad(set_to_none=True)
        (loss / (step_rows or rows)).backward()
        loss = loss.detach()
    if sync is not None:
        with timer.phase("sync"):
            loss = sync(loss)
    with timer.phase("optimizer"):
        optimizer.step()
    return loss


# -- checkpoints ------------------------------------------------------------------------------------------
def _build(obs_size: int, num_actions: int, hidden: list[int]) -> WorldModel:
    return WorldModel(obs_size, num_actions, hidden)


def check_resume(state: Mapping[str, Any], cfg: ResolvedConfig | None = None) -> None:
    """UsageError (one line) unless `state` is a complete world-model checkpoint whose weights fit its
    network (and, given the run's `cfg`, the run's game and hidden layers)."""
    check_checkpoint(state, STATE_KEYS, STATE_FORMAT, _build, ["model"], cfg, "worldmodel.hidden")


def model_from_checkpoint(state: Mapping[str, Any]) -> WorldModel:
    """The trained model of a checkpoint (after `check_resume`), on CPU, in eval mode."""
    model = _build(state["obs_size"], state["num_actions"], state["net_arch"])
    model.load_state_dict(state["model"])
    return model.eval()


# -- the run ------------------------------------------------------------------------------------------------
PHASES = ("data", "forward", "backward", "sync", "optimizer", "eval")  # this trainer's [PERF] phases


class Trainer:
    """One world-model run: model, optimizer, scheduler, early stopping and the position in the epochs.
    `fit()` trains until the epochs are done, early stopping or a stop request.

    In a distributed job (ctx.ranks, engine.distributed) every rank holds the same model and the whole
    preloaded data, trains on its share of each global minibatch of `worldmodel.batch_size` rows, and sums
    the step over the ranks; every rank therefore applies the same step, reads the same validation figures
    and takes the same decisions (scheduler, early stopping, stop requests); rank 0 alone writes them."""

    def __init__(self, ctx: RunContext, train_data: Tensors, val_data: Tensors, device: torch.device,
                 autocast: str | None, data_sha256: str) -> None:
        cfg = ctx.cfg
        w = cfg.section("worldmodel")
        self.ctx, self.w, self.device, self.autocast = ctx, w, device, autocast
        self.ranks = ctx.ranks
        self.train_data, self.val_data = train_data.to(device), val_data.to(device)
        self.weights = LossWeights.from_config(cfg)
        self.hp_noise = int(w["hp_noise"])  # needs train_data's kept inputs when > 0 (`with_hp_noise`)
        self.data_sha256 = data_sha256
        torch.manual_seed(cfg["run.seed"])
        self.model = WorldModel(rules.OBS_SIZE, rules.NUM_ACTIONS, w["hidden"]).to(device)
        self.lr, self.lr_text = lr_for(cfg)
        self.optimizer = make_optimizer(self.model, self.lr)
        self.scheduler = plateau_scheduler(self.optimizer, float(w["plateau_factor"]), int(w["plateau_patience"]))
        self.early = EarlyStopping(int(w["early_stop_patience"]))
        self.best_folder = ctx.run.path / BEST_FOLDER
        self.epochs = budget_epochs(cfg, len(train_data))
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # minibatches of the current epoch done
        self.samples = 0  # training samples seen (by all ranks): the run's step
        # The current epoch's summed training loss and its rows so far (kept by a checkpoint taken mid-epoch,
        # so a resumed epoch's train/loss still averages all of its minibatches).
        self.epoch_loss = torch.zeros((), dtype=torch.float64, device=device)
        self.epoch_loss_rows = 0
        self._last_perf = 0.0  # perf_counter() of the last perf event
        # What the ranks agreed on in the last step's all_reduce (a distributed job): its rows, whether any
        # rank was asked to stop, whether rank 0's perf window is due.
        self._step_rows = 0
        self._epoch_data = train_data  # the training split in the current epoch's order (`shuffled`)
        self._stop_agreed = False
        self._perf_agreed = False

    @property
    def total_steps(self) -> int:
        return self.epochs * len(self.train_data)

    def state(self) -> dict[str, Any]:
        """Everything a resume needs, as tensors, numbers, strings, lists and dicts."""
        return {"format": STATE_FORMAT, "env": self.ctx.cfg["run.env"], "net_arch": list(self.w["hidden"]),
                "obs_size": rules.OBS_SIZE, "num_actions": rules.NUM_ACTIONS,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "samples": self.samples, "epoch_loss": float(self.epoch_loss), "epoch_loss_rows": self.epoch_loss_rows,
                "best_val_total": float(self.early.best), "bad_epochs": self.early.bad_epochs,
                "data_sha256": self.data_sha256, "rng_torch": torch.get_rng_state()}

    def restore(self, state: Mapping[str, Any]) -> None:
        check_resume(state, self.ctx.cfg)
        if state["data_sha256"] != self.data_sha256:
            self.ctx.log("warning", f"the dataset's source changed since this checkpoint (sha256 "
                                    f"{state['data_sha256'][:12]} then, {self.data_sha256[:12]} now)")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.batch_in_epoch, self.samples = state["epoch"], state["batch_in_epoch"], state["samples"]
        self.epoch_loss.fill_(float(state.get("epoch_loss", 0.0)))  # absent before the key: the epoch's rest
        self.epoch_loss_rows = int(state.get("epoch_loss_rows", 0))
        self.early.best, self.early.bad_epochs = state["best_val_total"], state["bad_epochs"]
        torch.set_rng_state(state["rng_torch"])

    def fit(self) -> str:
        """Train; "stopped" on a stop request (after a checkpoint), else "finished"."""
        ctx, timer = self.ctx, self.ctx.timer
        timer.restart(self.samples)
        self._last_perf = time.perf_counter()
        batch_size = int(self.w["batch_size"])
        while self.epoch < self.epochs and not self.early.stop:
            started, first_sample = time.perf_counter(), self.samples
            with timer.phase("data"):
                self._epoch_data = shuffled(self.train_data, ctx.cfg["run.seed"], self.epoch, self.hp_noise)
            for number, rows in minibatches(len(self.train_data), batch_size, self.batch_in_epoch):
                if self._stop_requested():
                    ctx.save(self.samples, self.state())
                    ctx.progress(self.samples, force=True)  # status.json's step: the checkpoint's
                    return "stopped"
                self._step_rows = rows.stop - rows.start
                self.epoch_loss += self._step(rows)
                self.epoch_loss_rows += rows.stop - rows.start
                self.batch_in_epoch, self.samples = number + 1, self.samples + self._step_rows
                if timer.enabled and self._perf_due():
                    self._perf()
            self._end_epoch(time.perf_counter() - started, self.samples - first_sample,
                            float(self.epoch_loss) / max(self.epoch_loss_rows, 1))
            self.epoch_loss.zero_()
            self.epoch_loss_rows = 0
        if self.early.stop:
            ctx.log("info", f"early stopping after epoch {self.epoch}: no better val_total for "
                    f"{self.early.bad_epochs} epochs (best {self.early.best:.6g})", self.samples)
        ctx.save(self.samples, self.state())
        ctx.progress(self.samples, force=True)
        return "finished"

    def _stop_requested(self) -> bool:
        """A process alone reads its stop request; a distributed job what the last step agreed on."""
        return self._stop_agreed if self.ranks.distributed else bool(self.ctx.stop)

    def _perf_due_here(self) -> bool:
        return time.perf_counter() - self._last_perf >= self.ctx.cfg["log.every_seconds"]

    def _perf_due(self) -> bool:
        """Rank 0's clock decides, so that every rank closes its perf window at the same step."""
        return self._perf_agreed if self.ranks.distributed else self._perf_due_here()

    def _perf(self) -> None:
        distributed.sum_phases(self.ctx.timer, PHASES, self.ranks)
        self.ctx.perf(self.samples, epoch=self.epoch)
        self._last_perf = time.perf_counter()

    def _step(self, rows: slice) -> torch.Tensor:
        """One gradient step on the rows `rows` of the epoch's shuffled split (a distributed job: on this
        rank's share of them); the loss summed over them."""
        if not self.ranks.distributed:
            return gradient_step(self.model, self.optimizer, self._epoch_data, rows, self.weights, self.ctx.timer,
                                 self.autocast)
        mine = distributed.shard(rows, self.ranks)
        return gradient_step(self.model, self.optimizer, self._epoch_data, mine, self.weights, self.ctx.timer,
                             self.autocast, step_rows=rows.stop - rows.start,
                             sync=lambda loss: self._sum_step(loss, mine.stop - mine.start))

    def _sum_step(self, loss: torch.Tensor, rows: int) -> torch.Tensor:
        """Sum the gradients over the ranks, and with them the loss, the rows, the stop requests and rank 0's
        perf clock (one all_reduce); returns the summed loss."""
        perf_due = self.ranks.writes_run and self.ctx.timer.enabled and self._perf_due_here()
        extras = torch.tensor([float(loss), rows, float(bool(self.ctx.stop)), float(perf_due)], dtype=torch.float32)
        summed = distributed.sum_gradients(list(self.model.parameters()), extras).tolist()
        self._step_rows, self._stop_agreed, self._perf_agreed = int(summed[1]), summed[2] > 0, summed[3] > 0
        return torch.tensor(summed[0], dtype=torch.float64)

    def _end_epoch(self, seconds: float, samples: int, train_loss: float) -> None:
        ctx = self.ctx
        with ctx.timer.phase("eval"):
            metrics = evaluate(self.model, self.val_data, self.weights, int(self.w["eval_batch_size"]),
                               self.autocast, self.ranks)
        self.epoch += 1
        self.batch_in_epoch = 0
        val_total = metrics["val_total"]
        self.scheduler.step(val_total)
        better = self.early.update(val_total)
        ctx.metrics(self.samples, {"epoch": self.epoch, "time/epoch": seconds,
                                   "time/samples_per_s": samples / max(seconds, 1e-9), "train/loss": train_loss,
                                   "train/lr": self.optimizer.param_groups[0]["lr"], **metrics})
        self._perf()
        if better:
            name = checkpoint_name(self.samples)
            if self.ranks.writes_run:
                keep_best(self.best_folder, self.samples, {"step": self.samples, "epoch": self.epoch,
                                                           "metrics": metrics}, self.state())
            ctx.log("info", f"epoch {self.epoch}: val_total {val_total:.6g}, the best so far: kept in "
                    f"{BEST_FOLDER}/{name}", self.samples)
        else:
            ctx.log("info", f"epoch {self.epoch}: val_total {val_total:.6g} (best {self.early.best:.6g}, "
                    f"{self.early.bad_epochs} epochs without better)", self.samples)
        if self.epoch % int(self.w["checkpoint_every_epochs"]) == 0 and self.epoch < self.epochs:
            ctx.save(self.samples, self.state())


def record_data(ctx: RunContext, dataset: datasets.Dataset, total_steps: int) -> None:
    """Write what the run read into run.json: the data folder, its sha256, the splits' sizes, the cache
    state (`cache train=hit val=hit`), and the run's total of steps (epochs x training samples)."""
    ctx.total_steps = total_steps
    if not ctx.ranks.writes_run:
        return
    info = ctx.run.read_config()
    info["data"] = {"dir": str(dataset.path), "source_sha256": dataset.source_sha256,
                    "train": len(dataset.train), "val": len(dataset.val), "cache": dataset.cache_line()}
    info["total_steps"] = total_steps
    info["config"]["run.total_steps"] = {"value": total_steps, "source": RECORDED_TOTAL}
    atomic_write_json(ctx.run.config_path, info)


def train(ctx: RunContext, resume: dict[str, Any] | None) -> str:
    """Train until `worldmodel.epochs` epochs, early stopping or a stop request; "finished" or "stopped"."""
    cfg = ctx.cfg
    w = cfg.section("worldmodel")
    torch_setup = setup_torch(cfg)
    device = distributed.device_for(ctx.ranks, torch_setup.device)
    if ctx.ranks.distributed:  # first: a rank that fails from here on can tell rank 0 why
        distributed.init(ctx.ranks, torch_setup.device)
    loaded = time.perf_counter()
    try:
        dataset = datasets.load(Path(cfg["data.dir"]), cfg["run.env"])
    except UsageError as exc:
        raise RuntimeError(str(exc)) from None  # the launcher checked the folder; it changed since
    # Validation reads clean inputs: only the training split keeps what rebuilding its features needs.
    train_data = Tensors.from_columns(dataset.train.columns, keep_inputs=int(w["hp_noise"]) > 0)
    val_data = Tensors.from_columns(dataset.val.columns)
    load_s = time.perf_counter() - loaded
    if not len(train_data) or not len(val_data):
        raise RuntimeError(f"{dataset.path}: a split is empty (train {len(train_data)}, val {len(val_data)}); "
                           "a world model needs at least two games")
    autocast = "cuda" if torch_setup.amp else None
    trainer = Trainer(ctx, train_data, val_data, device, autocast, dataset.source_sha256)
    record_data(ctx, dataset, trainer.total_steps)
    if resume is not None:
        trainer.restore(distributed.state_of_rank_0(resume, ctx.ranks, device) if ctx.ranks.distributed
                        else resume)
    ctx.banner({
        "algo": f"worldmodel (MLP {list(w['hidden'])}, heads: HP deltas, KO, done, reward) on {cfg['run.env']}",
        "versions": " ".join(f"{k}={v}" for k, v in versions().items()),
        "device": f"{torch_setup.device} (threads {torch.get_num_threads()}, amp {torch_setup.amp})",
        "profile": cfg.profile,
        "data": f"{dataset.path}: train {len(train_data):,} / val {len(val_data):,} samples, {dataset.cache_line()}, "
                f"preloaded as tensors in {load_s:.1f} s",
        "budget": f"{trainer.epochs} epochs = {trainer.total_steps:,} samples (the step is samples seen)"
                  + (" (--steps on resume)" if cfg.source("run.total_steps").startswith(RESUME_TOTAL) else "")
                  + (f"; resuming at epoch {trainer.epoch} minibatch {trainer.batch_in_epoch}" if resume else ""),
        "batch": f"{w['batch_size']}, lr {trainer.lr_text}",
        **({"processes": f"{ctx.ranks.world} ranks through torchrun ({'nccl' if device.type == 'cuda' else 'gloo'}), "
                         f"each about {int(w['batch_size']) // ctx.ranks.world} rows of every minibatch; rank 0 "
                         "writes the run"} if ctx.ranks.distributed else {}),
        "schedule": f"plateau on val_total (factor {w['plateau_factor']:g}, patience {w['plateau_patience']}), "
                    f"early stop patience {w['early_stop_patience'] or 'off'}",
        "loss": f"HP x pass {w['w_pass']:g} / attack {w['w_attack_hp']:g} / switch {w['w_switch_hp']:g}, "
                f"KO x {w['w_ko']:g}, done x {w['w_done']:g}, reward x {w['w_reward']:g}"
                + (f"; training HP inputs raised by 0-{w['hp_noise']} HP (worldmodel.hp_noise, fresh each epoch; "
                   "validation clean)" if w["hp_noise"] else ""),
        "seed": cfg["run.seed"],
    })
    ctx.log("info", f"data: {dataset.cache_line()}")
    for note in [*torch_setup.notes, *dataset.notes]:
        ctx.log("info", note)
    if not torch_setup.amp:
        ctx.log("info", f"AMP off: {'CUDA only' if torch_setup.device.type == 'cpu' else 'torch.amp is false'}")
    return trainer.fit()
