"""Events: perf/metric lines round-trip, parse in any order, and bad lines are counted, not fatal."""

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from engine.events import (
    EventTail,
    EventWriter,
    format_metric_line,
    format_perf_line,
    metric_event,
    parse_metric_line,
    parse_perf_line,
    perf_event,
    read_tail_events,
)
from engine.perf import PerfTimer


def test_perf_line_round_trip_keeps_phases_and_extras() -> None:
    event = perf_event(40960, 5123.4, 41.2, {"action": 0.12, "env_step": 0.3}, updates=7)
    line = format_perf_line(event)
    assert line.startswith("[PERF] step=40960 sps=5123 eps=41.2 action_ms=0.120 env_step_ms=0.300")
    parsed = parse_perf_line(line)
    assert parsed is not None
    assert parsed["step"] == 40960 and parsed["ms"] == {"action": 0.12, "env_step": 0.3}
    assert parsed["updates"] == 7.0


def test_perf_line_any_order_unknown_keys_and_prefix_text() -> None:
    parsed = parse_perf_line("12:00:01 INFO [PERF] env_step_ms=0.5 custom=3 sps=100 step=7")
    assert parsed is not None
    assert (parsed["step"], parsed["sps"], parsed["eps"]) == (7, 100.0, 0.0)
    assert parsed["ms"] == {"env_step": 0.5} and parsed["custom"] == 3.0


def test_malformed_perf_and_metric_lines_are_rejected() -> None:
    for bad in ("[PERF]", "[PERF] sps=fast", "[PERF] sps", "[PERF] =3", "no marker here"):
        assert parse_perf_line(bad) is None
    assert parse_metric_line("[METRIC] step=3") is None
    assert parse_metric_line("[METRIC] step=3 loss=x") is None


def test_metric_line_round_trip() -> None:
    line = format_metric_line(metric_event(5, {"train/lr": 0.0003, "rollout/win_rate": 0.5}))
    parsed = parse_metric_line(line)
    assert parsed is not None and parsed["step"] == 5
    assert parsed["values"] == {"train/lr": 0.0003, "rollout/win_rate": 0.5}


@given(st.dictionaries(st.sampled_from(["action", "env_step", "train_fwd", "x_y"]),
                       st.floats(min_value=0, max_value=1e3, allow_nan=False), min_size=1))
def test_perf_round_trip_property(ms: dict[str, float]) -> None:
    parsed = parse_perf_line(format_perf_line(perf_event(1, 2.0, 3.0, ms)))
    assert parsed is not None
    assert set(parsed["ms"]) == set(ms)
    for k, v in ms.items():
        assert abs(parsed["ms"][k] - v) <= 5e-4 + 1e-9


def test_tail_reads_whole_lines_only_and_counts_garbage(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.poll() == []
    with EventWriter(path) as w:
        w.write({"kind": "status", "state": "running", "t": 1})
    with open(path, "a") as f:
        f.write('not json\n[1, 2]\n{"kind": "log", "msg": "half')
    events = tail.poll()
    assert [e["kind"] for e in events] == ["status"]
    assert tail.malformed == 2
    with open(path, "a") as f:
        f.write('"}\n')
    assert [e["msg"] for e in tail.poll()] == ["half"]


def test_tail_restarts_when_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"kind": "a"}) + "\n" + json.dumps({"kind": "b"}) + "\n")
    tail = EventTail(path)
    assert len(tail.poll()) == 2
    path.write_text(json.dumps({"kind": "c"}) + "\n")
    assert [e["kind"] for e in tail.poll()] == ["c"]


def test_read_tail_events_drops_the_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as w:
        for i in range(2000):
            w.write({"kind": "perf", "step": i, "pad": "x" * 50})
    events = read_tail_events(path, max_bytes=4096)
    steps = [e["step"] for e in events]
    assert steps == list(range(steps[0], 2000)) and 20 < len(steps) < 80


def test_perf_timer_windows_are_per_step_and_reset() -> None:
    timer = PerfTimer()
    timer.add("env_step", 2_000_000)  # 2 ms in total
    timer.add("mystery", 1_000_000)
    timer.count_episodes(4)
    window = timer.window(step=1000)
    assert abs(window.ms["env_step"] - 0.002) < 1e-12  # 2 ms over 1000 steps
    assert list(window.ms) == ["env_step", "mystery"]
    assert window.sps > 0 and window.eps > 0
    assert timer.window(step=1000).ms == {}


def test_disabled_timer_records_nothing() -> None:
    timer = PerfTimer(enabled=False)
    timer.add("env_step", 5)
    with timer.phase("action"):
        pass
    assert timer.window(10).ms == {}
