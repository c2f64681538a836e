"""The world-model trainer's parts (engine/worldmodel.py): the square-root rule, early stopping and the
plateau scheduler on fabricated val_total curves, the loss weights, the validation metrics on hand-made
predictions, the preloaded tensors, and the bad input refused before a run starts."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cli.main import main
from engine import datasets
from engine.errors import UsageError
from engine.profiles import ResolvedConfig, Setting, resolve
from engine.wm_inputs import DRAW_FEATURES, MATCHUP_FEATURES
from engine.worldmodel import (
    FIGHTER_HP_COLUMNS,
    FIGHTER_SLOT_COLUMNS,
    HP_SCALE,
    OBS_ALIVE_COLUMNS,
    OBS_HP_COLUMNS,
    RECORDED_TOTAL,
    EarlyStopping,
    LossWeights,
    Tensors,
    ValTotals,
    WorldModel,
    budget_epochs,
    check_resume,
    draw_features,
    epoch_order,
    features,
    loss_sum,
    lr_for,
    matchup_features,
    minibatches,
    plateau_scheduler,
    shuffled,
    sqrt_rule,
)
from envs.duel import rules


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wm") / "data"
    datasets.generate(out, ("sensible", "random"), 600, seed=3, num_games=16)
    return out


def config(data_dir: Path, *assignments: str) -> ResolvedConfig:
    return resolve("balance", algo="worldmodel", env="duel", environ={},
                   assignments=[f"data.dir={json.dumps(str(data_dir))}", *assignments])


# -- the square-root rule ---------------------------------------------------------------------------------
def test_sqrt_rule_scales_lr_base_by_the_batch() -> None:
    assert sqrt_rule(0.0, 1e-3, 4096, 1024)[0] == pytest.approx(2e-3)
    assert sqrt_rule(0.0, 1e-3, 256, 1024)[0] == pytest.approx(5e-4)
    lr, text = sqrt_rule(0.0, 1e-3, 1024, 1024)
    assert lr == 1e-3 and "square-root" not in text
    lr, text = sqrt_rule(3e-4, 1e-3, 4096, 1024)
    assert lr == 3e-4 and "not applied" in text


@given(st.integers(1, 1 << 16), st.integers(1, 1 << 16), st.floats(1e-6, 1.0))
def test_sqrt_rule_ratio_is_the_root_of_the_batch_ratio(batch: int, base: int, lr_base: float) -> None:
    assert sqrt_rule(0.0, lr_base, batch, base)[0] / lr_base == pytest.approx(math.sqrt(batch / base))


def test_the_run_config_drives_the_rule(data_dir: Path) -> None:
    lr, text = lr_for(config(data_dir, "worldmodel.batch_size=4096", "worldmodel.lr_base=0.002"))
    assert lr == pytest.approx(0.004) and "sqrt(batch 4096 / batch_base 1024)" in text


def test_the_budget_is_epochs_unless_a_resume_set_or_recorded_a_total(data_dir: Path) -> None:
    cfg = config(data_dir, "worldmodel.epochs=7")
    assert budget_epochs(cfg, 300) == 7  # run.total_steps from the profile or defaults is not read
    for total, source, epochs in ((1000, "--steps on resume, was 900", 4), (900, RECORDED_TOTAL, 3)):
        settings = {**dict(cfg.items()), "run.total_steps": Setting(total, source)}
        assert budget_epochs(ResolvedConfig(settings, "balance"), 300) == epochs


# -- early stopping and the plateau scheduler on a fabricated curve -----------------------------------------
CURVE = [1.0, 0.8, 0.7, 0.72, 0.71, 0.69, 0.70, 0.70, 0.75, 0.69, 0.80]


def test_early_stopping_stops_after_patience_epochs_without_better() -> None:
    early = EarlyStopping(patience=3)
    better = []
    epochs = 0
    for value in CURVE:
        epochs += 1
        better.append(early.update(value))
        if early.stop:
            break
    # best at epoch 6 (0.69); 0.70, 0.70, 0.75 are not better: stops after epoch 9. A tie is not better.
    assert epochs == 9 and early.best == 0.69 and early.bad_epochs == 3
    assert better == [True, True, True, False, False, True, False, False, False]


def test_early_stopping_with_patience_zero_never_stops() -> None:
    early = EarlyStopping(patience=0)
    for value in [1.0, *[2.0] * 50]:
        early.update(value)
    assert not early.stop and early.bad_epochs == 50


def test_plateau_scheduler_halves_lr_after_patience_bad_epochs() -> None:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = plateau_scheduler(optimizer, factor=0.5, patience=2)
    lrs = []
    for value in CURVE:
        scheduler.step(value)
        lrs.append(optimizer.param_groups[0]["lr"])
    # 0.72, 0.71 (2 bad) keep it; 0.69 is a new best; 0.70, 0.70 (2 bad), 0.75 (3rd): halved at epoch 9;
    # 0.69 ties the best (not better, counting restarts after a drop), 0.80 the 2nd bad: unchanged.
    assert lrs == [1.0] * 8 + [0.5, 0.5, 0.5]


# -- loss and metrics -----------------------------------------------------------------------------------------
def test_hp_loss_weight_follows_the_agents_action() -> None:
    weights = LossWeights(pass_hp=5.0, attack_hp=12.0, switch_hp=1.0, ko=1.0, done=1.0, reward=1.0)
    actions = torch.tensor([0, 1, 2, rules.PASS, rules.SWITCH, rules.SWITCH + 2])
    assert weights.hp_row_weights(actions).tolist() == [12.0, 12.0, 12.0, 5.0, 1.0, 1.0]


def batch_of(data_dir: Path) -> Tensors:
    return Tensors.from_columns(datasets.load(data_dir).val.columns)


def perfect(batch: Tensors) -> tuple[torch.Tensor, ...]:
    """What a model that knows the true next state would output (logits of +/-20 for the flags)."""
    return batch.hp.clone(), 40 * batch.ko - 20, 40 * batch.done - 20, batch.reward.clone()


def weights() -> LossWeights:
    return LossWeights(5.0, 12.0, 1.0, 1.0, 1.0, 1.0)


def test_metrics_of_the_true_next_state_are_zero(data_dir: Path) -> None:
    batch = batch_of(data_dir)
    assert batch.ko.sum() > 0 and batch.done.sum() > 0  # the checks below can fail
    totals = ValTotals()
    totals.add(perfect(batch), batch, weights())
    m = totals.metrics()
    assert m["val/pass_hp_mae"] == m["val/attack_hp_mae"] == m["val/ko_miss_rate"] == m["val/reward_mae"] == 0.0
    assert m["val/done_acc"] == 1.0 and m["val/done_loss"] < 1e-6 and m["val_total"] < 1e-6


def test_metrics_against_hand_computed_errors(data_dir: Path) -> None:
    batch = batch_of(data_dir)
    hp, ko, done, reward = perfect(batch)
    hp = hp + 2.0 / HP_SCALE  # every slot 2 HP off
    ko = torch.full_like(ko, -20.0)  # never a KO
    done = -done  # every done flag wrong
    reward = reward + 0.25
    totals = ValTotals()
    totals.add((hp, ko, done, reward), batch, weights())
    m = totals.metrics()
    attacked = int((batch.action < rules.PASS).sum())
    assert attacked and m["val/attack_hp_mae"] == pytest.approx(2.0, rel=1e-5)
    assert m["val/ko_miss_rate"] == 1.0 and m["val/done_acc"] == 0.0
    assert m["val/reward_mae"] == pytest.approx(0.25, rel=1e-5)
    assert m["val/done_loss"] == pytest.approx(20.0, rel=1e-3)


def test_a_knocked_out_creatures_hp_delta_is_not_in_the_loss_nor_the_mae(data_dir: Path) -> None:
    """Nothing reads it (the KO flag says the next HP is 0): 5 HP off on every KO slot changes neither the
    loss nor val/attack_hp_mae; 5 HP off on the slots that survived does."""
    batch = batch_of(data_dir)
    knocked_out = batch.ko > 0.5
    assert knocked_out.any() and (~knocked_out).any()
    hp, ko, done, reward = perfect(batch)

    def measured(off: torch.Tensor) -> tuple[float, float]:
        totals = ValTotals()
        outputs = (hp + 5.0 / HP_SCALE * off.float(), ko, done, reward)
        totals.add(outputs, batch, weights())
        return float(loss_sum(outputs, batch, weights())), totals.metrics()["val/attack_hp_mae"]

    clean_loss, _ = measured(torch.zeros_like(knocked_out))
    assert measured(knocked_out) == (pytest.approx(clean_loss, abs=1e-6), 0.0)
    survived_loss, survived_mae = measured(~knocked_out)
    assert survived_loss > clean_loss + 1.0 and survived_mae == pytest.approx(5.0, rel=1e-4)


def test_split_preloaded_as_tensors(data_dir: Path) -> None:
    dataset = datasets.load(data_dir)
    train = Tensors.from_columns(dataset.train.columns)
    columns = dataset.train.columns
    assert train.x.shape == (len(dataset.train), rules.OBS_SIZE + 2 * rules.NUM_ACTIONS + DRAW_FEATURES
                             + MATCHUP_FEATURES)
    row = 5
    assert torch.equal(train.x[row, : rules.OBS_SIZE], torch.from_numpy(np.array(columns["obs"][row])))
    assert train.x[row, rules.OBS_SIZE + int(columns["action"][row])] == 1.0
    assert train.x[row, rules.OBS_SIZE + rules.NUM_ACTIONS + int(columns["opp_action"][row])] == 1.0
    assert train.hp[row].tolist() == pytest.approx((columns["hp_delta"][row] / HP_SCALE).tolist())
    assert torch.equal(train.x[:, rules.OBS_SIZE + 2 * rules.NUM_ACTIONS:][:, :DRAW_FEATURES],
                       draw_features(torch.from_numpy(np.array(columns["draws"], dtype=np.int64))))
    assert all(t.is_contiguous() or t.dim() == 1 for t in (train.x, train.hp, train.ko))
    out = WorldModel(rules.OBS_SIZE, rules.NUM_ACTIONS, [8])(train.x[:3])
    assert [tuple(o.shape) for o in out] == [(3, 6), (3, 6), (3,), (3,)]


def test_draw_features_by_hand() -> None:
    """Side 0 hit with roll 92, side 1 missed (drew 80 for accuracy); side 1 won the speed tie. Then a turn
    without an attack: no draws at all."""
    draws = torch.tensor([[40, 80, 92, rules.NO_DRAW, 1], [rules.NO_DRAW] * 5])
    assert draw_features(draws).tolist() == [[1.0, 1.0, pytest.approx(7 / 15), 1.0, 0.0, 0.0, 0.0, 1.0],
                                             [0.0] * DRAW_FEATURES]


def test_matchup_features_by_hand() -> None:
    """Side 0 attacks with move slot 1 and hits (roll 97); side 1 switches to its slot 2, which becomes the
    defender; side 1 made no attack, so its attack one-hots are empty."""
    from envs.rng import Rng

    game = rules.DuelGame(Rng(5))
    obs = torch.from_numpy(game.observation()[None])
    mine, theirs = game.sides[0].team[0].species, game.sides[1].team[2].species
    draws = torch.tensor([[10, rules.NO_DRAW, 97, rules.NO_DRAW, rules.NO_DRAW]])
    got = matchup_features(obs, torch.tensor([1]), torch.tensor([rules.SWITCH + 2]), draws)[0]
    attacks = rules.NUM_SPECIES * rules.MOVES_PER_CREATURE * rules.NUM_SPECIES
    side = 2 * attacks + rules.NUM_SPECIES + rules.TEAM_SIZE + 1
    assert tuple(got.shape) == (2 * side,) == (MATCHUP_FEATURES,)
    hit = (mine * rules.MOVES_PER_CREATURE + 1) * rules.NUM_SPECIES + theirs
    assert got[:attacks].nonzero().flatten().tolist() == [hit]
    assert got[attacks + hit].item() == pytest.approx(12 / 15) and got[attacks: 2 * attacks].count_nonzero() == 1
    assert got[2 * attacks: 2 * attacks + rules.NUM_SPECIES].count_nonzero() == 0  # no pass
    assert got[side - 4: side - 1].tolist() == [1.0, 0.0, 0.0]  # side 0 fights with slot 0
    assert got[side - 1].item() == pytest.approx(game.sides[0].team[0].hp / 100)
    assert got[side: side + 2 * attacks].count_nonzero() == 0  # side 1 did not attack
    assert got[2 * side - 4: 2 * side - 1].tolist() == [0.0, 0.0, 1.0]  # side 1 switched to slot 2
    assert got[2 * side - 1].item() == pytest.approx(game.sides[1].team[2].hp / 100)


def test_only_the_creatures_in_play_get_hp_deltas(data_dir: Path) -> None:
    """The data's HP deltas are 0 outside the two fighters (the model's deltas there are 0 by construction),
    and a model with random weights predicts 0 exactly there and nonzero deltas for the fighters."""
    batch = batch_of(data_dir)
    in_play = batch.x[:, FIGHTER_SLOT_COLUMNS]
    assert in_play.sum(dim=1).tolist() == [2.0] * len(batch)  # one creature a side
    assert batch.hp[in_play == 0].count_nonzero() == 0 and batch.hp[in_play == 1].count_nonzero() > 0
    torch.manual_seed(0)
    hp = WorldModel(rules.OBS_SIZE, rules.NUM_ACTIONS, [8])(batch.x)[0]
    assert hp[in_play == 0].count_nonzero() == 0 and hp[in_play == 1].count_nonzero() == 2 * len(batch)


def test_a_fighters_ko_logit_reads_the_hp_head_without_training_it(data_dir: Path) -> None:
    """A fighter's KO logit is the KO head's plus ko_per_hp logits a HP of predicted HP after the turn (to the
    whole HP) below half a HP; the others' is the KO head's alone. The KO loss does not reach the HP head."""
    batch = batch_of(data_dir)
    torch.manual_seed(0)
    model = WorldModel(rules.OBS_SIZE, rules.NUM_ACTIONS, [8])
    with torch.no_grad():
        model.ko_per_hp.fill_(0.0)
        hp, head_only, _, _ = model(batch.x)
        model.ko_per_hp.fill_(2.0)
        _, ko, _, _ = model(batch.x)
    in_play = batch.x[:, FIGHTER_SLOT_COLUMNS]
    hp_after = torch.round((batch.x[:, OBS_HP_COLUMNS] + hp) * HP_SCALE)
    assert hp_after.min() < 1 and hp_after.max() > 1  # both sides of the KO line
    assert torch.allclose(ko, head_only + in_play * 2.0 * (0.5 - hp_after), atol=1e-4)
    assert torch.equal(ko[in_play == 0], head_only[in_play == 0])
    model(batch.x)[1].sum().backward()
    hp_grad = model.hp.weight.grad  # the heads run as one product: the HP rows get a gradient of zeros
    assert hp_grad is None or hp_grad.count_nonzero() == 0
    assert model.ko_per_hp.grad is not None and model.ko.weight.grad is not None and model.ko.weight.grad.any()


def test_the_done_logit_reads_the_ko_logits_without_training_them(data_dir: Path) -> None:
    """The done logit is the done head's plus done_per_creature logits a creature that the side keeping
    fewest keeps below half a creature (its living creatures, each kept with the probability its KO logit
    gives); the done loss does not reach the KO logits."""
    batch = batch_of(data_dir)
    torch.manual_seed(0)
    model = WorldModel(rules.OBS_SIZE, rules.NUM_ACTIONS, [8])
    with torch.no_grad():
        model.done_per_creature.fill_(0.0)
        _, ko, head_only, _ = model(batch.x)
        model.done_per_creature.fill_(3.0)
        done = model(batch.x)[2]
    kept = (batch.x[:, OBS_ALIVE_COLUMNS] * torch.sigmoid(-ko)).view(-1, 2, rules.TEAM_SIZE).sum(dim=2)
    assert torch.allclose(done, head_only + 3.0 * (0.5 - kept.min(dim=1).values), atol=1e-5)
    model(batch.x)[2].sum().backward()
    for grad in (model.ko.weight.grad, model.ko_per_hp.grad):  # the heads run as one product: zeros there
        assert grad is None or grad.count_nonzero() == 0
    assert model.done_per_creature.grad is not None and model.done.weight.grad is not None


def test_epoch_order_is_fixed_by_seed_and_epoch_and_minibatches_cover_it() -> None:
    assert torch.equal(epoch_order(1, 2, 50), epoch_order(1, 2, 50))
    assert not torch.equal(epoch_order(1, 2, 50), epoch_order(1, 3, 50))
    parts = list(minibatches(10, 4, 0))
    assert parts == [(0, slice(0, 4)), (1, slice(4, 8)), (2, slice(8, 10))]
    assert [n for n, _ in minibatches(10, 4, 2)] == [2]


# -- training on drifted HP (worldmodel.hp_noise) -----------------------------------------------------------
def test_hp_noise_zero_is_the_clean_epoch_and_keeps_no_inputs(data_dir: Path) -> None:
    columns = datasets.load(data_dir).train.columns
    train = Tensors.from_columns(columns)
    assert train.obs is None and train.opp_action is None  # the fast path holds no more than before
    clean = train.rows(epoch_order(4, 2, len(train)))  # what an epoch was before hp_noise existed
    epoch = shuffled(train, 4, 2, hp_noise=0)
    assert torch.equal(epoch.x, clean.x) and torch.equal(epoch.hp, clean.hp) and torch.equal(epoch.ko, clean.ko)
    kept = shuffled(Tensors.from_columns(columns, keep_inputs=True), 4, 2, hp_noise=0)
    assert torch.equal(kept.x, clean.x)
    model = WorldModel(rules.OBS_SIZE, rules.NUM_ACTIONS, [8])
    assert torch.equal(loss_sum(model(epoch.x), epoch, weights()), loss_sum(model(clean.x), clean, weights()))


def test_hp_noise_raises_only_the_hp_inputs_within_bounds(data_dir: Path) -> None:
    columns = datasets.load(data_dir).train.columns
    train = Tensors.from_columns(columns, keep_inputs=True)
    clean, noised = shuffled(train, 4, 2), shuffled(train, 4, 2, hp_noise=3)
    changed = (clean.x != noised.x).any(dim=0).nonzero().flatten().tolist()
    assert changed and set(changed) <= {*OBS_HP_COLUMNS, *FIGHTER_HP_COLUMNS}
    assert set(FIGHTER_HP_COLUMNS) & set(changed)  # the matchup's HP are rebuilt too, not only the observation's
    # The HP-reading columns are what `features` makes of the noised observations.
    order = epoch_order(4, 2, len(train))
    draws = torch.from_numpy(np.array(columns["draws"], dtype=np.int64)).index_select(0, order)
    assert noised.obs is not None and noised.opp_action is not None
    assert torch.equal(noised.x, features(noised.obs, noised.action, noised.opp_action, draws))
    hp_before, hp_after = (t.x[:, OBS_HP_COLUMNS].double() * HP_SCALE for t in (clean, noised))
    raised = hp_after - hp_before
    assert torch.allclose(raised, raised.round(), atol=1e-4) and raised.min() > -1e-4 and raised.max() < 3 + 1e-4
    assert raised.max() > 2.5  # the whole range is drawn
    assert torch.equal(hp_after[hp_before == 0], hp_before[hp_before == 0])  # a fainted creature stays at 0
    species = clean.x[:, : 6 * rules.SLOT_SIZE].reshape(-1, 6, rules.SLOT_SIZE)[:, :, 3:].argmax(dim=2)
    max_hp = torch.tensor([s.hp for s in rules.SPECIES], dtype=torch.float64)[species]
    assert (hp_after <= max_hp + 1e-4).all()
    for name in ("hp", "ko", "done", "reward", "action"):  # the targets stay the real game's
        assert torch.equal(getattr(noised, name), getattr(clean, name))
    assert torch.equal(shuffled(train, 4, 2, hp_noise=3).x, noised.x)  # fixed by seed and epoch: a resume
    assert not torch.equal(shuffled(train, 4, 3, hp_noise=3).x[:, OBS_HP_COLUMNS] - shuffled(train, 4, 3).x[
        :, OBS_HP_COLUMNS], noised.x[:, OBS_HP_COLUMNS] - clean.x[:, OBS_HP_COLUMNS])  # and fresh each epoch


def test_check_resume_refuses_another_trainers_checkpoint() -> None:
    with pytest.raises(UsageError, match=r"not a trainctl\.worldmodel/3 checkpoint"):
        check_resume({"step": 1, "format": "trainctl.ppo/1"})


@pytest.mark.parametrize("older", ["trainctl.worldmodel/1", "trainctl.worldmodel/2"])
def test_check_resume_refuses_a_model_of_an_older_format(older: str) -> None:
    """A /1 checkpoint's model read no draws; a /2 one's predicted HP deltas for the creatures not in play (the
    same weights compute another function now): their format says so."""
    model = WorldModel(rules.OBS_SIZE, rules.NUM_ACTIONS, [8])
    state = {"format": older, "env": "duel", "net_arch": [8], "obs_size": rules.OBS_SIZE,
             "num_actions": rules.NUM_ACTIONS, "model": model.state_dict(), "optimizer": {}, "scheduler": {},
             "epoch": 0, "batch_in_epoch": 0, "samples": 0, "best_val_total": 1.0, "bad_epochs": 0,
             "data_sha256": "", "rng_torch": torch.get_rng_state()}
    with pytest.raises(UsageError, match=rf"format '{re.escape(older)}' is not 'trainctl\.worldmodel/3'"):
        check_resume(state)


# -- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--data", "{missing}"], "does not exist"),
    (["--data", "{empty}"], "is empty"),
    (["--data", "{other}"], "is a dataset of 'beastybar'"),
    ([], "data.dir is empty"),
    (["--data", "{data}", "--env", "beastybar"], "holds a dataset of 'duel'"),
    (["--data", "{data}", "--set", "worldmodel.w_pass=-1"], "w_pass = -1 is out of range"),
    (["--data", "{data}", "--set", "worldmodel.plateau_factor=1"], "plateau_factor = 1 is out of range"),
    (["--data", "{data}", "--set", "worldmodel.hp_noise=-2"], "hp_noise = -2 is out of range; expected >= 0"),
    (["--data", "{data}", "--set", "worldmodel.hp_noise=lots"], "hp_noise = 'lots' has the wrong type"),
    (["--data", "{data}", "--set", "worldmodel.hp_noise=1.5"], "hp_noise = 1.5 has the wrong type"),
    (["--data", "{data}", "--set", "worldmodel.hidden=[0]"], "hidden"),
])
def test_bad_input_is_one_line_and_starts_nothing(args: list[str], message: str, data_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "dataset.json").write_text(json.dumps({"schema_version": datasets.SCHEMA_VERSION,
                                                                  "game": "beastybar"}))
    (tmp_path / "other" / datasets.SOURCE_NAME).write_text("")
    folders = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "other": tmp_path / "other",
               "data": data_dir}
    runs = tmp_path / "runs"
    argv = ["run", "--algo", "worldmodel", *(a.format(**folders) for a in args), "--runs-dir", str(runs)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not runs.exists()


def test_data_flag_sets_data_dir_and_the_datasets_game(data_dir: Path) -> None:
    from cli.main import build_parser

    args = build_parser().parse_args(["run", "--algo", "worldmodel", "--data", str(data_dir)])
    assert args.env == "duel" and args.assignments == [f"data.dir={json.dumps(str(data_dir.absolute()))}"]
    args = build_parser().parse_args(["run", "--env", "soccer", "--data", str(data_dir)])
    assert args.env == "soccer"


# -- the TUI ----------------------------------------------------------------------------------------------
async def test_the_tui_plots_a_world_model_runs_epochs_against_samples_seen(data_dir: Path, tmp_path: Path) -> None:
    from tui_fixtures import T0, wait_for_text

    from engine.events import EventWriter, metric_event, perf_event, status_event
    from engine.runstore import RunDir, atomic_write_json
    from tui.app import TrainctlApp

    cfg = config(data_dir)
    samples, epochs = 50_000, 6
    info = {"kind": "trainer", "command": ["trainctl", "run"], "created": T0, "algo": "worldmodel", "env": "duel",
            "profile": "balance", "total_steps": samples * epochs, "seed": 0, "config": cfg.to_json()}
    run = RunDir.create(tmp_path, "20260101T000000_worldmodel_duel_balance", info)
    with EventWriter(run.events_path) as writer:
        writer.write({**status_event("running"), "t": T0})
        for epoch in range(1, epochs + 1):
            writer.write({**perf_event(samples * epoch, 40_000.0, 0.0, {"data": 0.001, "forward": 0.005,
                                                                         "backward": 0.01, "optimizer": 0.004,
                                                                         "eval": 0.002}), "t": T0 + epoch})
            writer.write({**metric_event(samples * epoch, {"epoch": epoch, "train/loss": 1.0 / epoch,
                                                           "train/lr": 1e-3, "val/reward_mae": 0.2 / epoch,
                                                           "val_total": 2.0 / epoch}), "t": T0 + epoch})
        writer.write({**status_event("finished", exit_code=0), "t": T0 + 10})
    atomic_write_json(run.status_path, {"state": "finished", "created": T0, "started": T0, "ended": T0 + 10,
                                        "step": samples * epochs, "exit_code": 0, "updated": T0 + 10})
    app = TrainctlApp(tmp_path, clock=lambda: T0 + 86400, poll_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_text(app, pilot, "worldmodel/du")
        await pilot.press("2")
        shown = await wait_for_text(app, pilot, "val/reward_mae 0.03333 ● last")
        assert "train/loss 0.1667 ● last" in shown
        assert re.search(r"steps +50k +100k +150k", shown)  # the x axis: samples seen
        await pilot.press("1")
        shown = await wait_for_text(app, pilot, "backward")
        assert all(phase in shown for phase in ("data", "forward", "optimizer", "eval"))
