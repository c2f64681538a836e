"""engine.sweep and `trainctl sweep` without training: grid expansion, the square-root rule, the group folder,
the comparison table from planted run folders, and the bad input refused before anything is written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tui_fixtures import fabricate_world_model_sweep

from cli import main as cli
from engine import launcher, sweep
from engine.arena import eval_event
from engine.errors import UsageError
from engine.events import metric_event, perf_event
from engine.runstore import RunDir

ASK = sweep.SweepAsk("ppo", "beastybar", 4096)


def test_split_values_keeps_lists_whole() -> None:
    assert sweep.split_values("1,2, 3") == ["1", "2", "3"]
    assert sweep.split_values("[64,64],[128, 128]") == ["[64,64]", "[128, 128]"]
    assert sweep.split_values('"a,b",c') == ['"a,b"', "c"]


def test_grid_expands_to_every_combination_in_order() -> None:
    trials, notes = sweep.expand(sweep.SweepAsk("ppo", "beastybar", 4096, grid=(
        "ppo.n_epochs=1,2", "ppo.net_arch=[64,64],[32]"), sets=("torch.threads=1",)))
    assert notes == []
    assert [t.label for t in trials] == [
        "ppo.n_epochs=1 ppo.net_arch=[64,64]", "ppo.n_epochs=1 ppo.net_arch=[32]",
        "ppo.n_epochs=2 ppo.net_arch=[64,64]", "ppo.n_epochs=2 ppo.net_arch=[32]"]
    assert [t.name for t in trials] == ["t01", "t02", "t03", "t04"]
    assert trials[3].job.assignments == ("torch.threads=1", "ppo.n_epochs=2", "ppo.net_arch=[32]")
    assert {t.job.profile for t in trials} == {"balance"} and {t.job.steps for t in trials} == {4096}


def test_presets_times_grid() -> None:
    trials, _ = sweep.expand(sweep.SweepAsk("ppo", "beastybar", 4096, profiles=("balance", "speed"),
                                            grid=("ppo.n_epochs=1,2",)))
    assert [(t.job.profile, t.label) for t in trials] == [
        ("balance", "balance ppo.n_epochs=1"), ("balance", "balance ppo.n_epochs=2"),
        ("speed", "speed ppo.n_epochs=1"), ("speed", "speed ppo.n_epochs=2")]


def test_presets_alone_are_one_trial_each() -> None:
    trials, _ = sweep.expand(sweep.SweepAsk("ppo", "beastybar", 4096, profiles=("balance", "speed")))
    assert [(t.job.profile, t.label, t.job.assignments) for t in trials] == [("balance", "balance", ()),
                                                                            ("speed", "speed", ())]


def test_sqrt_rule_by_hand() -> None:
    assert sweep.sqrt_lr(3e-4, 1024, 1024) == pytest.approx(3e-4)
    assert sweep.sqrt_lr(3e-4, 1024, 4096) == pytest.approx(6e-4)  # 4x the batch, 2x the step
    assert sweep.sqrt_lr(1e-3, 2048, 1024) == pytest.approx(1e-3 / math.sqrt(2))


@given(st.floats(1e-6, 1.0), st.integers(1, 10_000), st.integers(1, 10_000))
def test_sqrt_rule_keeps_lr_squared_over_batch(lr: float, base: int, batch: int) -> None:
    new = sweep.sqrt_lr(lr, base, batch)
    assert new**2 / batch == pytest.approx(lr**2 / base, rel=1e-9)


def test_batch_ladder_scales_the_profiles_step_sizes() -> None:
    # balance PPO: batch 1024, learning rate 3e-4 -> 1e-4 (profiles/balance.toml).
    trials, notes = sweep.expand(sweep.SweepAsk("ppo", "beastybar", 4096, ladder=(1024, 2048, 4096)))
    sets = [dict(a.split("=") for a in t.job.assignments) for t in trials]
    assert [s["ppo.batch_size"] for s in sets] == ["1024", "2048", "4096"]
    assert [float(s["ppo.learning_rate"]) for s in sets] == pytest.approx([3e-4, 3e-4 * math.sqrt(2), 6e-4], rel=1e-5)
    assert [float(s["ppo.learning_rate_end"]) for s in sets] == pytest.approx([1e-4, 1e-4 * math.sqrt(2), 2e-4],
                                                                               rel=1e-5)
    assert notes[2] == ("batch 4096: ppo.learning_rate 0.0003 x sqrt(4096/1024) = 0.0006; "
                        "ppo.learning_rate_end 0.0001 x sqrt(4096/1024) = 0.0002")


def test_batch_ladder_on_dqn_has_no_end_rate() -> None:
    trials, notes = sweep.expand(sweep.SweepAsk("dqn-per", "skirmish", 4096, ladder=(640,)))
    # balance dqn: batch 320, learning rate 1e-4 (the default) -> 1e-4 * sqrt(2).
    assert trials[0].job.assignments == ("dqn.batch_size=640", f"dqn.learning_rate={1e-4 * math.sqrt(2):.6g}")
    assert "learning_rate_end" not in notes[0]


@pytest.mark.parametrize(("spec", "message"), [
    ("ppo.nope=1,2", "'ppo.nope' is not a config key"),
    ("nope=1,2", "'nope' is not a config key"),
    ("ppo.n_epochs=", "has no values"),
    ("ppo.n_epochs", "has no values"),
    ("ppo.n_epochs=1,,2", "has an empty value"),
    ("run.algo=ppo,dqn-per", "cannot vary"),
])
def test_bad_grid(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        sweep.expand(sweep.SweepAsk("ppo", "beastybar", 4096, grid=(spec,)))


def test_wrong_value_type_names_the_trial() -> None:
    trials, _ = sweep.expand(sweep.SweepAsk("ppo", "beastybar", 4096, grid=("ppo.n_epochs=2,abc",)))
    with pytest.raises(UsageError, match=r"trial t02 \(ppo.n_epochs=abc\).*wrong type; expected int"):
        sweep.plan_trials(trials)


def test_trial_round_trips_through_json() -> None:
    trials, _ = sweep.expand(sweep.SweepAsk("ppo", "beastybar", 4096, grid=("ppo.n_epochs=1,2",), seed=3))
    assert [sweep.Trial.from_json(json.loads(json.dumps(t.to_json()))) for t in trials] == trials


# -- the command's bad input: one line, exit 2, nothing written ------------------------------------------
BASE = ["sweep", "--algo", "ppo", "--env", "beastybar", "--steps", "4096"]


@pytest.mark.parametrize(("args", "message"), [
    (["--grid", "ppo.nope=1,2"], "'ppo.nope' is not a config key"),
    (["--grid", "ppo.n_epochs=1,x"], "wrong type"),
    (["--grid", "ppo.n_epochs="], "has no values"),
    ([], "the sweep is empty"),
    (["--grid", "ppo.n_epochs=1,2", "--parallel", "0"], "--parallel 0"),
    (["--grid", "ppo.n_epochs=1,2", "--backend", "ray", "--address", "127.0.0.1:1"],
     "Ray address 127.0.0.1:1 is unreachable"),
    (["--grid", "ppo.n_epochs=1,2", "--backend", "ray"], "needs --address"),
    (["--batch-ladder", "1024,big"], "expected whole batch sizes"),
    (["--preset", "balance,nope"], "unknown profile 'nope'"),
])
def test_sweep_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert_refused([*BASE, *args], message, tmp_path / "runs", capsys)


def assert_refused(argv: list[str], message: str, runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`trainctl ARGV --runs-dir RUNS` exits 2 with one line on stderr holding `message`, and makes no RUNS."""
    assert cli.main([*argv, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not runs.exists()


def test_sweep_folder_of_another_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mine"
    group = sweep.open_group(folder, "sweep", {"algo": "ppo", "grid": ["ppo.n_epochs=1,2"]})
    folder.mkdir()
    group.save()
    before = sorted(p.name for p in folder.iterdir())
    assert cli.main([*BASE, "--grid", "ppo.n_epochs=3,4", "--dir", str(folder)]) == 2
    assert "is the folder of another sweep" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_run_folder_is_no_sweep_folder(tmp_path: Path) -> None:
    run = planted_run(tmp_path, "t01-a1", sps=100.0, win=0.5)
    with pytest.raises(UsageError, match="is a run folder"):
        sweep.open_group(run.path, "sweep", {})
    with pytest.raises(UsageError, match="already holds runs"):
        sweep.open_group(tmp_path, "sweep", {})


# -- the table from planted run folders ------------------------------------------------------------------
def planted_run(folder: Path, name: str, sps: float, win: float | None, state: str = "finished",
                steps: int = 4096, error: str | None = None, stamp: str = "20260101T000000") -> RunDir:
    """A run folder as a trainer leaves it: two perf windows at `sps`, a final win rate, `state`."""
    run = RunDir.create(folder, f"{stamp}_{name}", {"kind": "trainer", "algo": "ppo", "env": "beastybar",
                                                    "profile": "balance", "total_steps": steps})
    events = [perf_event(steps // 2, sps, 1.0, {"action": 1000 / sps / 2, "env_step": 1000 / sps / 2}),
              perf_event(steps, sps, 1.0, {"action": 1000 / sps / 2, "env_step": 1000 / sps / 2}),
              metric_event(steps, {"rollout/ep_rew_mean": 0.25, **({"rollout/win_rate": win} if win is not None
                                                                   else {})})]
    if error:
        events.append({"t": 0.0, "kind": "log", "level": "error", "msg": error})
    run.events_path.write_text("".join(json.dumps(e) + "\n" for e in events))
    run.write_status(state=state, step=steps, launched=1000.0, ended=1042.0)
    return run


def test_run_figures_from_events(tmp_path: Path) -> None:
    figures = sweep.run_figures(planted_run(tmp_path, "t01-a1", sps=2000.0, win=0.625))
    assert (figures.state, figures.steps, figures.wall) == ("finished", 4096, 42.0)
    assert figures.sps == pytest.approx(2000.0)
    assert figures.seconds == pytest.approx(4096 / 2000.0)
    assert figures.win == pytest.approx(62.5) and figures.reward == pytest.approx(0.25)
    assert figures.ms == pytest.approx({"action": 0.25, "env_step": 0.25})


def append_eval(run: RunDir, win_rates: tuple[float, ...], step: int = 4096) -> None:
    """An `eval` event (engine.arena's) at the end of `run`: one row per opponent with its win rate."""
    rows = [{"opponent": f"bot{i}", "games": 100, "win_rate": w} for i, w in enumerate(win_rates)]
    with open(run.events_path, "a", encoding="utf-8") as f:
        f.write(json.dumps(eval_event(step, "final.pt", 100, 0, rows)) + "\n")


def test_quality_is_the_last_eval_tables_mean_win_rate(tmp_path: Path) -> None:
    run = planted_run(tmp_path, "t01-a1", sps=2000.0, win=0.625)
    assert sweep.run_figures(run).win_from == "rollout/win_rate"
    append_eval(run, (0.2, 0.4), step=2048)
    append_eval(run, (0.5, 0.9))
    figures = sweep.run_figures(run)
    assert figures.win == pytest.approx(70.0) and figures.win_from == "eval"


def test_sweep_table_marks_the_best_and_reports_errors(tmp_path: Path) -> None:
    trials, _ = sweep.expand(sweep.SweepAsk("ppo", "beastybar", 4096, grid=("ppo.n_epochs=1,2,3",)))
    group = sweep.Group(tmp_path, "sweep", {"algo": "ppo", "env": "beastybar", "steps": 4096}, tuple(trials))
    planted_run(tmp_path, "t01-a1", sps=3000.0, win=0.40)
    planted_run(tmp_path, "t02-a1", sps=2000.0, win=0.55)
    planted_run(tmp_path, "t03-a1", sps=1000.0, win=None, state="failed", error="ValueError: boom")
    planted_run(tmp_path, "t03-a2", sps=1000.0, win=None, state="failed", error="ValueError: boom again",
                stamp="20260101T000001")
    text, markdown, data = sweep.sweep_report(group, "win")
    lines = text.splitlines()
    assert lines[1].split() == ["TRIAL", "CONFIG", "STATE", "TIME", "STEPS/S", "WIN", "%", "REWARD", "BEST"]
    assert lines[2].split()[:7] == ["t01", "ppo.n_epochs=1", "finished", "42s", "3,000", "40.0", "0.250"]
    assert lines[3].endswith("* best win") and "best" not in lines[2] + lines[4]
    assert "t03: ValueError: boom again" in text  # the newest attempt's error
    assert [r["best"] for r in data["rows"]] == [False, True, False]
    assert "| t02 | ppo.n_epochs=2 | finished |" in markdown
    assert sweep.sweep_report(group, "sps")[0].splitlines()[2].endswith("* best sps")


def test_a_world_model_sweep_shows_samples_its_lowest_validation_loss_and_wm_bench(tmp_path: Path) -> None:
    group = fabricate_world_model_sweep(tmp_path)
    assert sweep.run_figures(sweep.latest_run(tmp_path, group.trials[0])).val == pytest.approx(0.5)  # type: ignore[arg-type]
    text, _, data = sweep.sweep_report(group)  # best by the trainer's default: the lowest validation loss
    lines = text.splitlines()
    assert lines[0].endswith("4,096 samples each; best by val")
    assert lines[1].split() == ["TRIAL", "CONFIG", "STATE", "TIME", "SAMPLES/S", "VAL", "LOSS", "WM-BENCH", "BEST"]
    assert lines[2].split()[3:7] == ["42s", "9,000", "0.5000", "NO-GO"]
    assert lines[3].split()[4:] == ["12,000", "0.4500", "GO", "*", "best", "val"]
    assert lines[4].split()[4:] == ["15,000", "0.6000", "-"]
    assert [r["best"] for r in data["rows"]] == [False, True, False]
    assert sweep.sweep_report(group, "sps")[0].splitlines()[4].endswith("* best sps")


def test_parallel_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--parallel 0"):
        sweep.TrialPool(tmp_path, [], parallel=0)


def test_report_prints_the_sweep_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trials = [sweep.Trial("t01", "ppo.n_epochs=1", launcher.Job("ppo", "beastybar", steps=4096))]
    group = sweep.Group(tmp_path / "sw", "sweep", {"algo": "ppo", "env": "beastybar", "steps": 4096}, tuple(trials))
    group.path.mkdir()
    group.save()
    planted_run(group.path, "t01-a1", sps=3000.0, win=0.40)
    assert cli.main(["report", str(group.path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sweep sw: ppo on beastybar, 1 trials") and "* best win" in out
    assert cli.main(["report", "sw", "--runs-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == out


class FakeLaunch:
    """Stands in for engine.launcher.launch: plants the trial's run at once, failed for the trials named in
    `failing`, finished for the others, and records the most runs alive at once."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.alive: set[str] = set()
        self.most = 0
        self.started: list[str] = []

    def __call__(self, job: launcher.Job, folder: Path) -> tuple[RunDir, object]:
        name = str(job.name)
        fails = name.split("-a")[0] in self.failing
        run = planted_run(folder, name, sps=100.0, win=0.5, state="failed" if fails else "finished",
                          error=f"RuntimeError: {name} broke" if fails else None)
        self.started.append(name)
        self.alive.add(name)
        self.most = max(self.most, len(self.alive))
        fake = self

        class Proc:
            polls = 0

            def poll(self) -> int | None:
                self.polls += 1
                if self.polls < 2:  # alive for one poll, so that runs overlap
                    return None
                fake.alive.discard(name)
                return 0

        return run, Proc()


def test_pool_retries_a_failure_once_then_reports_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trials, _ = sweep.expand(sweep.SweepAsk("ppo", "beastybar", 4096, grid=("ppo.n_epochs=1,2,3",)))
    fake = FakeLaunch(failing={"t02"})
    monkeypatch.setattr(launcher, "launch", fake)
    said: list[str] = []
    outcomes = sweep.TrialPool(tmp_path, trials, parallel=2, say=said.append, poll_s=0.0).run()
    assert [(o.trial.name, o.state) for o in outcomes] == [("t01", "finished"), ("t02", "failed"), ("t03", "finished")]
    assert outcomes[1].error == "RuntimeError: t02-a2 broke"
    assert sorted(fake.started) == ["t01-a1", "t02-a1", "t02-a2", "t03-a1"]
    assert fake.most == 2
    assert "t02 ppo.n_epochs=2: failed (RuntimeError: t02-a1 broke); trying once more" in said

    # Again: finished trials are skipped, the failed one gets a new attempt (and its retry).
    fake.started.clear()
    again = sweep.TrialPool(tmp_path, trials, parallel=2, say=said.append, poll_s=0.0).run()
    assert [o.state for o in again] == ["skipped", "failed", "skipped"]
    assert fake.started == ["t02-a3", "t02-a4"]


def test_ray_copy_back_numbers_runs_after_those_there(tmp_path: Path) -> None:
    from engine import sweep_ray  # imports no Ray itself

    trial = sweep.Trial("t01", "ppo.n_epochs=1", launcher.Job("ppo", "beastybar", steps=4096))
    folder, stage = tmp_path / "sweep", tmp_path / "stage"
    planted_run(folder, "t01-a1", sps=100.0, win=None, state="failed", error="RuntimeError: here")
    planted_run(stage, "t01-a1", sps=100.0, win=None, state="failed", error="RuntimeError: on the node",
                stamp="20260101T000005")
    planted_run(stage, "t01-a2", sps=250.0, win=0.5, stamp="20260101T000009")
    sweep_ray.unpack_runs(sweep_ray.pack_stage(str(stage)), folder, trial)
    assert not stage.exists()
    assert [r.run_id for r in sweep.attempts(folder, trial)] == [
        "20260101T000000_t01-a1", "20260101T000005_t01-a2", "20260101T000009_t01-a3"]
    newest = sweep.latest_run(folder, trial)
    assert newest is not None and sweep.run_figures(newest).sps == pytest.approx(250.0)
    assert sweep.run_error(sweep.attempts(folder, trial)[1]) == "RuntimeError: on the node"
    assert sorted(p.name for p in folder.iterdir()) == [r.run_id for r in sweep.attempts(folder, trial)]


@pytest.mark.parametrize(("address", "host", "port"), [("10.0.0.5:6379", "10.0.0.5", 6379),
                                                       ("ray://head", "head", 10001), ("head", "head", 6379)])
def test_ray_address_forms(address: str, host: str, port: int) -> None:
    from engine import sweep_ray

    assert sweep_ray.split_address(address) == (host, port)
    with pytest.raises(UsageError, match="is not host:port"):
        sweep_ray.split_address("head:port")
