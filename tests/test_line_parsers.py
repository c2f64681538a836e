"""The line parsers of `trainctl run -- CMD` (engine.line_parsers) on the exact lines real trainers print."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import UsageError
from engine.events import perf_extras
from engine.line_parsers import PARSERS, make_reader, read_summary

# What seed 004's trainer prints, verbatim.
SEED004_PERF = ("[PERF] steps=256 updates=64 action_ms=0.412 enemy_turn_ms=98.100 env_step_ms=101.300 "
                "replay_sample_ms=1.460 train_fwd_ms=2.100 train_bwd_ms=3.300 log_ms=0.050")
SEED004_DQN = ("[DQN][PERF] qsize=unknown dropped_batches=0 push_batch_ms=0.52 optimize_ms=12.10 updates/sec=80.50 "
               "batches=1 transitions=256 updates=64 interval_s=5.0")
SEED003_STEP = "[Step   600] eval/win_rate=0.9340 | train/loss=0.1234"


def sb3_table(values: dict[str, float | int]) -> list[str]:
    """The lines SB3's own logger prints for `values` (its HumanOutputFormat, as PPO's learn() does)."""
    from stable_baselines3.common.logger import HumanOutputFormat

    out = io.StringIO()
    HumanOutputFormat(out).write(values, {k: None for k in values})  # type: ignore[misc]
    return out.getvalue().splitlines()


def kinds(events: list[dict]) -> list[str]:
    return [e["kind"] for e in events]


def test_seed004_window_counts_add_up_to_the_step_and_give_steps_per_second() -> None:
    reader = make_reader("auto", t0=100.0)
    (first,) = reader.feed(SEED004_PERF, t=102.0)
    assert first["kind"] == "perf" and first["step"] == 256 and first["sps"] == pytest.approx(128.0)
    assert first["ms"]["enemy_turn"] == pytest.approx(98.1) and first["ms"]["log"] == pytest.approx(0.05)
    assert first["updates"] == 64 and first["updates_total"] == 64
    (second,) = reader.feed(SEED004_PERF, t=106.0)
    assert second["step"] == 512 and second["sps"] == pytest.approx(64.0) and second["updates_total"] == 128
    (third,) = reader.feed(SEED004_PERF, t=106.0)  # arrived with the previous one: that window's rate
    assert third["step"] == 768 and third["sps"] == pytest.approx(64.0)
    (fourth,) = reader.feed(SEED004_PERF, t=108.0)  # the window since t=106 holds both lines' steps
    assert fourth["sps"] == pytest.approx(256.0)
    assert reader.counts() == {"trainctl": 4} and reader.malformed == 0


def test_seed004_tagged_line_is_an_extra_event_with_its_unknown_keys_kept() -> None:
    reader = make_reader("auto", t0=0.0)
    reader.feed(SEED004_PERF, t=1.0)
    (extra,) = reader.feed(SEED004_DQN, t=2.0)
    assert extra["kind"] == "extra" and extra["tag"] == "DQN" and extra["step"] == 256
    assert extra["values"]["qsize"] == "unknown" and extra["values"]["updates/sec"] == pytest.approx(80.5)
    assert extra["values"]["optimize_ms"] == pytest.approx(12.1)
    assert reader.feed("[ANY][PERF] depth=3", t=3.0)[0]["tag"] == "ANY"
    assert reader.feed("12:00:01 [Q] [PERF] depth=4", t=3.0)[0]["values"] == {"depth": 4.0}
    assert reader.malformed == 0 and reader.clock.step == 256  # a tagged line's counts are not env steps


def test_our_own_lines_and_a_malformed_one() -> None:
    reader = make_reader("trainctl", t0=0.0)
    (perf,) = reader.feed("[PERF] step=4096 sps=2048.5 eps=12.5 env_step_ms=0.250 custom=7", t=1.0)
    assert perf["sps"] == 2048.5 and perf["eps"] == 12.5 and perf["ms"] == {"env_step": 0.25} and perf["custom"] == 7
    assert reader.feed("[PERF] step=8192 sps=oops", t=2.0) == [] and reader.malformed == 1
    (metric,) = reader.feed("[METRIC] step=8192 reward/mean=0.75", t=3.0)
    assert metric["step"] == 8192 and metric["values"] == {"reward/mean": 0.75}
    assert reader.feed("hello", t=4.0) == [] and reader.not_understood == 1


def test_sb3_tables_from_sb3s_own_logger() -> None:
    reader = make_reader("auto", t0=0.0)
    events = []
    for step in (2048, 4096):
        values = {"rollout/ep_len_mean": 22.5, "rollout/ep_rew_mean": 22.5, "time/fps": 1203,
                  "time/iterations": step // 2048, "time/total_timesteps": step, "train/loss": 0.25}
        for line in sb3_table(values):
            events += reader.feed(line, t=1.0)
    assert kinds(events) == ["metric", "perf", "metric", "perf"]
    metric, perf = events[2], events[3]
    assert metric["step"] == 4096 and metric["values"]["rollout/ep_rew_mean"] == 22.5
    assert metric["values"]["train/loss"] == 0.25 and metric["values"]["time/iterations"] == 2
    assert perf["sps"] == 1203 and perf["step"] == 4096
    assert reader.counts() == {"sb3": 2} and reader.not_understood == 0
    assert reader.summary() == "read as sb3 tables (2 blocks), 0 lines not understood"


def test_cleanrl_lines() -> None:
    reader = make_reader("auto", t0=0.0)
    (metric,) = reader.feed("global_step=1234, episodic_return=[21.]", t=1.0)
    assert metric["step"] == 1234 and metric["values"] == {"episodic_return": 21.0}
    (perf,) = reader.feed("SPS: 877", t=2.0)
    assert perf["kind"] == "perf" and perf["sps"] == 877 and perf["step"] == 1234
    assert reader.counts() == {"cleanrl": 2}


def test_seed003_step_prefix_and_step_pairs() -> None:
    reader = make_reader("auto", t0=0.0)
    events = reader.feed(SEED003_STEP, t=2.0)
    assert kinds(events) == ["metric", "perf"]
    assert events[0]["step"] == 600 and events[0]["values"] == {"eval/win_rate": 0.934, "train/loss": 0.1234}
    assert events[1]["sps"] == pytest.approx(300.0)
    (metric, _) = reader.feed("step=900, loss=0.5, lr=3e-4", t=3.0)
    assert metric["step"] == 900 and metric["values"] == {"loss": 0.5, "lr": 3e-4}
    assert reader.feed("epoch=3 note=slow", t=4.0) == [] and reader.not_understood == 1
    assert reader.counts() == {"kv": 2}


def test_regex_named_groups() -> None:
    reader = make_reader(r"regex:it (?P<step>\d+): loss (?P<loss>[-\d.e]+)", t0=0.0)
    events = reader.feed("it 500: loss 0.125 (whatever)", t=1.0)
    assert events[0]["step"] == 500 and events[0]["values"] == {"loss": 0.125}
    assert reader.feed("it 600: loss nan-ish", t=2.0) == [] and reader.not_understood == 1
    assert reader.counts() == {"regex": 1}
    assert read_summary(reader.counts(), 1) == "read as regex lines (1 lines), 1 lines not understood"


@pytest.mark.parametrize(("spec", "expected"), [
    ("yaml", "is not a known format"), ("regex:(", "does not compile"), ("regex:loss=(\\S+)", "no named group")])
def test_bad_parse_specs_are_usage_errors(spec: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected):
        make_reader(spec)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_each_parser_alone_ignores_what_is_not_its_format(name: str) -> None:
    reader = make_reader(name, t0=0.0)
    assert reader.feed("Using cpu device", t=1.0) == []
    assert reader.not_understood == 1


@given(st.text(max_size=200))
def test_any_text_is_read_without_error(line: str) -> None:
    reader = make_reader("auto", t0=0.0)
    for event in reader.feed(line, t=1.0):
        assert event["kind"] in ("perf", "metric", "extra")
    assert reader.not_understood + sum(reader.counts().values()) + reader.malformed <= 1


def seed004_line(i: int) -> str:
    return (f"[PERF] steps={256 + i} updates={60 + i % 5} action_ms={0.4 + i / 100:.3f} enemy_turn_ms={98 + i:.3f} "
            f"env_step_ms=101.300 log_ms=0.050 qsize={i}")


def test_a_burst_of_perf_lines_in_one_read_folds_into_one_event_with_the_same_totals() -> None:
    lines = [seed004_line(i) for i in range(50)]
    apart = make_reader("auto", t0=0.0)
    separate = [event for i, line in enumerate(lines) for event in apart.feed(line, t=1.0 + i)]
    together = make_reader("auto", t0=0.0)
    (folded,) = together.feed_lines(lines, t=50.0)
    assert len(separate) == 50 and folded["folded"] == 50
    assert folded["step"] == separate[-1]["step"] == sum(256 + i for i in range(50))
    assert folded["updates"] == sum(e["updates"] for e in separate)
    assert folded["updates_total"] == separate[-1]["updates_total"] and folded["qsize"] == 49
    for phase in ("action", "enemy_turn", "env_step", "log"):
        assert folded["ms"][phase] == pytest.approx(sum(e["ms"][phase] for e in separate) / 50)
    assert folded["sps"] == pytest.approx(folded["step"] / 50.0)  # no sps printed: the step's progress over time
    assert together.counts() == apart.counts() == {"trainctl": 50} and together.malformed == 0
    assert "folded" not in perf_extras(folded)  # not a key the trainer printed: the TUI does not list it


def test_perf_lines_fold_only_between_other_events_and_keep_their_order() -> None:
    lines = [seed004_line(1), seed004_line(2), SEED004_DQN, "not a format", seed004_line(3), "[METRIC] x=1",
             seed004_line(4)]
    events = make_reader("auto", t0=0.0).feed_lines(lines, t=1.0)
    assert kinds(events) == ["perf", "extra", "perf", "metric", "perf"]
    assert [e.get("folded", 1) for e in events if e["kind"] == "perf"] == [2, 1, 1]
    assert events[1]["step"] == events[0]["step"] == 257 + 258  # the extra is at the step of the lines before it


PERF_KEY_ORDERS = [("steps", "updates", "env_step_ms", "qsize"), ("step", "sps", "eps", "action_ms"), ("steps", "step"),
                   ("steps", "steps"), ("updates",), ("", "steps")]
# Counts read in one go as plain digits (an exact sum below 2**53) and read as floats (a sign, a point, an
# exponent, a sum past 2**53 where int(float(text)) is not the printed integer) must agree.
NUMBERS = st.sampled_from(["1", "2.5", "256", "-3", "1e3", "0.7", "99999999999999999999", "4503599627370497", "1_000"])
PRINTED = st.one_of(NUMBERS, NUMBERS, NUMBERS, st.sampled_from(["nan", "inf", "oops", "[3]", "=", "a=b", ""]))
PERF_LINES = st.sampled_from(PERF_KEY_ORDERS).flatmap(lambda keys: st.builds(
    lambda values, sep, end: "[PERF]" + sep + sep.join(f"{k}={v}" for k, v in zip(keys, values, strict=True)) + end,
    st.lists(PRINTED, min_size=len(keys), max_size=len(keys)), st.sampled_from([" ", "  ", "\t", ""]),
    st.sampled_from(["", " ", "\t", " x"])))
OTHER_LINES = st.sampled_from([SEED004_DQN, "[METRIC] step=5 loss=1", "[METRIC] step=nan loss=1", "hello", "", "[PERF]",
                               "12:00 [PERF] steps=3", "step=9 loss=2", "SPS: 5"])


def lines_read_together_give_what_they_give_one_by_one(lines: list[str]) -> None:
    """Folding, and the one-pattern reading of a run of [PERF] lines, lose and invent nothing."""
    apart, together = make_reader("auto", t0=0.0), make_reader("auto", t0=0.0)
    separate = [event for line in lines for event in apart.feed(line, t=1.0)]
    joined = together.feed_lines(lines, t=1.0)
    assert (together.counts(), together.malformed, together.not_understood, together.clock.step) == (
        apart.counts(), apart.malformed, apart.not_understood, apart.clock.step)

    def others(events: list[dict]) -> list[tuple]:
        return [(e["kind"], e["step"], e.get("tag"), e["values"]) for e in events if e["kind"] != "perf"]

    assert others(joined) == others(separate)
    perf_apart, perf_together = [e for e in separate if e["kind"] == "perf"], [e for e in joined if e["kind"] == "perf"]
    assert sum(e.get("folded", 1) for e in perf_together) == len(perf_apart)
    assert [e["updates_total"] for e in perf_together if "updates_total" in e][-1:] == [
        e["updates_total"] for e in perf_apart if "updates_total" in e][-1:]
    assert [e["step"] for e in perf_together][-1:] == [e["step"] for e in perf_apart][-1:]


any_lines = given(st.lists(st.one_of(PERF_LINES, PERF_LINES, OTHER_LINES), max_size=40))
test_lines_read_together_give_what_they_give_one_by_one = settings(max_examples=75)(
    any_lines(lines_read_together_give_what_they_give_one_by_one))
test_lines_read_together_give_what_they_give_one_by_one_at_length = pytest.mark.heavy(settings(max_examples=300)(
    any_lines(lines_read_together_give_what_they_give_one_by_one)))
