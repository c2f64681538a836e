"""trainctl eval: players, paired deals, lockstep matches (core and reference), counts, intervals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envs
from engine.arena import eval_row, evaluate_subject
from engine.errors import UsageError
from engine.evaluate import sb3_chooser
from engine.matches import MatchResult, paired_deals, play_match
from engine.players import NeuralPlayer, parse_player, parse_subject
from envs.beastybar import rules
from envs.rng import Rng
from tests.eval_fixtures import write_bots, write_ppo_checkpoint

RUNS = Path("no-runs-here")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ppo_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture()
def bots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.syspath_prepend(str(tmp_path))
    return write_bots(tmp_path)


def fabricated(outcome: list[int], margin: list[int]) -> MatchResult:
    return MatchResult("a", "b", np.array(outcome, np.int8), np.array(margin), np.full(len(outcome), 24),
                       decisions=(40, 40), raw_illegal=(3, 0), neural=(True, False))


# -- counts and intervals ---------------------------------------------------------------------------
def test_eval_row_counts_and_wilson_interval_by_hand() -> None:
    row = eval_row(fabricated([1, 1, 0, -1], [5, 2, 0, -3]))
    assert (row["games"], row["wins"], row["draws"], row["losses"]) == (4, 2, 1, 1)
    assert row["win_rate"] == 0.5
    # Wilson, 2 of 4, z = 1.96: centre 0.5, half-width 1.96 sqrt(1/16 + 1.96^2/64) / (1 + 1.96^2/4) = 0.34997
    assert row["win_low"] == pytest.approx(0.15003, abs=1e-5)
    assert row["win_high"] == pytest.approx(0.84997, abs=1e-5)
    assert row["margin"] == 1.0 and row["turns"] == 24.0
    assert row["illegal_rate"] == 3 / 40


def test_eval_row_all_wins_interval_reaches_one() -> None:
    row = eval_row(fabricated([1] * 10, [1] * 10))
    # 10 of 10: (10 / (10 + 1.96^2), 1) = (0.7225, 1)
    assert row["win_low"] == pytest.approx(10 / (10 + 1.96**2), abs=1e-9) and row["win_high"] == 1.0


def test_turned_result_swaps_sides() -> None:
    turned = fabricated([1, 1, 0, -1], [5, 2, 0, -3]).turned()
    assert (turned.first, turned.outcomes.wins, turned.outcomes.losses, turned.mean_margin) == ("b", 1, 2, -1.0)
    assert turned.illegal_rate(0) is None and turned.illegal_rate(1) == 3 / 40


def test_scripted_match_counts_match_the_rules_played_by_hand() -> None:
    deals = paired_deals(30, 77)
    result = play_match(parse_player("heuristic", RUNS), parse_player("random", RUNS), deals)
    for k, seed in enumerate(deals.seeds.tolist()):
        rng = Rng(seed)
        state = rules.deal(rng, first="agent" if k % 2 == 0 else "opponent")
        policies = (rules.heuristic_opponent, rules.random_opponent)
        while not state.over:
            rules.play_turn(state, policies[state.current_player](state, rng))
        points = rules.bar_points(state)
        assert result.outcome[k] == {0: 1, 1: -1, -1: 0}[rules.winner(state, "points")]
        assert result.margin[k] == points[0] - points[1] and result.turns[k] == 24
    o = result.outcomes
    assert o.games == 30 and o.wins == np.count_nonzero(result.outcome == 1)
    assert result.illegal_rate(0) is None and result.illegal_rate(1) is None


# -- seats ------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(games=st.integers(1, 41), seed=st.integers(0, 2**63 - 1))
def test_paired_deals_play_each_deal_with_each_seat_moving_first(games: int, seed: int) -> None:
    deals = paired_deals(games, seed)
    seeds, a_first = deals.seeds.tolist(), deals.a_first.tolist()
    assert len(deals) == games and a_first.count(True) == math.ceil(games / 2) and a_first.count(False) == games // 2
    assert seeds[0] == seed and seeds[-1] == seed + (games - 1) // 2
    for k in range(0, games - 1, 2):  # the same deal twice, A first then B first
        assert seeds[k] == seeds[k + 1] and a_first[k] and not a_first[k + 1]
    swapped = deals.swapped()
    assert swapped.seeds.tolist() == seeds and swapped.a_first.tolist() == [not f for f in a_first]


def test_a_paired_deal_gives_the_same_hands_whoever_starts() -> None:
    deals = paired_deals(2, 41)
    first, second = (rules.deal(Rng(int(deals.seeds[k])), first=deals.first(k)) for k in range(2))
    assert (first.first, second.first) == (0, 1)
    assert first.hands == second.hands and first.piles == second.piles


def test_the_same_games_and_seed_give_the_same_deals() -> None:
    assert paired_deals(10, 5).seeds.tolist() == paired_deals(10, 5).seeds.tolist()
    assert paired_deals(10, 5).seeds.tolist() != paired_deals(10, 6).seeds.tolist()
    with pytest.raises(ValueError, match="games"):
        paired_deals(0, 5)


# -- neural players ---------------------------------------------------------------------------------
def test_core_and_reference_paths_play_the_same_games(checkpoint: Path) -> None:
    deals = paired_deals(40, 10_000)
    net = parse_player(f"ckpt:{checkpoint}", RUNS)
    fast = play_match(net, parse_player("heuristic", RUNS), deals)
    slow = play_match(net, parse_player("heuristic", RUNS), deals, use_core=False)
    for field in ("outcome", "margin", "turns"):
        assert getattr(fast, field).tolist() == getattr(slow, field).tolist()
    assert fast.decisions == slow.decisions == (40 * 12, 40 * 12)
    assert fast.raw_illegal == slow.raw_illegal


def test_batched_neural_player_acts_as_one_game_at_a_time_in_gym_envs(checkpoint: Path) -> None:
    """Each game of a lockstep batch, replayed alone in a one-game gymnasium env: same outcome."""
    deals = paired_deals(16, 123)
    net = parse_player(f"ckpt:{checkpoint}", RUNS)
    assert isinstance(net, NeuralPlayer)
    calls: list[int] = []
    choose = net.choose_batch
    net.choose_batch = lambda obs, masks: (calls.append(len(obs)), choose(obs, masks))[1]  # type: ignore[method-assign]
    batched = play_match(net, parse_player("random", RUNS), deals)
    assert calls == [16] * 12  # one forward per step over every game, whoever started each
    for k, seed in enumerate(deals.seeds.tolist()):
        env = envs.make("beastybar", core="reference", opponent="random", seed=seed, first=deals.first(k))
        obs, _ = env.reset()
        done, reward = False, 0.0
        while not done:
            action = choose(obs[None], env.action_masks()[None])[0]
            obs, reward, done, _, _ = env.step(int(action))
        assert int(reward) == batched.outcome[k]


def test_neural_player_as_second_seat_is_turned_round(checkpoint: Path) -> None:
    deals = paired_deals(20, 9)
    net, heuristic = parse_player(f"ckpt:{checkpoint}", RUNS), parse_player("heuristic", RUNS)
    ours = play_match(net, heuristic, deals)
    theirs = play_match(heuristic, net, deals.swapped())
    assert theirs.first == "heuristic" and theirs.outcome.tolist() == (-ours.outcome).tolist()
    assert theirs.illegal_rate(1) == ours.illegal_rate(0) is not None


def test_neural_vs_neural_runs_on_the_reference(checkpoint: Path, tmp_path: Path) -> None:
    other = write_ppo_checkpoint(tmp_path, step=99, seed=1)
    a, b = parse_player(f"ckpt:{checkpoint}", RUNS), parse_player(f"ckpt:{other}", RUNS)
    result = play_match(a, b, paired_deals(10, 1))
    assert result.games == 10 and result.decisions == (120, 120)
    assert result.illegal_rate(0) is not None and result.illegal_rate(1) is not None


def test_masked_argmax_is_legal_and_counts_raw_illegal_choices(checkpoint: Path) -> None:
    net = parse_player(f"ckpt:{checkpoint}", RUNS)
    assert isinstance(net, NeuralPlayer)
    obs = np.zeros((3, rules.OBS_SIZE), np.float32)
    masks = np.zeros((3, rules.NUM_ACTIONS), np.bool_)
    masks[:, 5] = True
    assert net.choose_batch(obs, masks).tolist() == [5, 5, 5]
    raw = int(net._scores(__import__("torch").zeros(1, rules.OBS_SIZE)).argmax())
    assert net.raw_illegal == (0 if raw == 5 else 3) and net.decisions == 3


# -- py: players ------------------------------------------------------------------------------------
def test_py_player_plays_and_gets_a_copy_of_the_state(bots: str) -> None:
    deals = paired_deals(12, 3)
    good = play_match(parse_player(f"py:{bots}:first_legal", RUNS), parse_player("random", RUNS), deals)
    vandal = play_match(parse_player(f"py:{bots}:vandal", RUNS), parse_player("random", RUNS), deals)
    assert good.stopped is None and good.games == 12
    assert vandal.outcome.tolist() == good.outcome.tolist()  # the vandal's edits never reach the game


@pytest.mark.parametrize(("func", "said"), [("illegal", "returned 99, not a legal action"),
                                            ("raises", "raised RuntimeError: my bot broke")])
def test_py_player_bad_move_stops_its_pairing_only(bots: str, func: str, said: str) -> None:
    subject = parse_player("heuristic", RUNS)
    results = evaluate_subject(subject, [parse_player(f"py:{bots}:{func}", RUNS), parse_player("random", RUNS)],
                               games=8, seed=1)
    assert results[0].stopped is not None and said in results[0].stopped
    assert "in game" in results[0].stopped and "seed" in results[0].stopped and "turn" in results[0].stopped
    assert results[0].games == 0
    assert results[1].stopped is None and results[1].games == 8


@pytest.mark.parametrize(("spec", "said"), [
    ("py:eval_test_broken:play", "does not import"),
    ("py:no_such_module_at_all:play", "does not import"),
    ("py:eval_test_bots:nothing", "has no function"),
    ("py:justone", "is not MODULE:FUNC"),
    ("alphazero", "unknown player 'alphazero'"),
    ("zip:foo", "unknown player kind"),
    ("ckpt:", "names nothing"),
])
def test_bad_player_specs_are_one_line_usage_errors(bots: str, spec: str, said: str) -> None:
    with pytest.raises(UsageError, match=said) as caught:
        parse_player(spec, RUNS)
    assert "\n" not in str(caught.value)


def test_scripted_names_come_from_the_rules_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(rules.OPPONENT_POLICIES, "lazy", rules.random_opponent)
    monkeypatch.setattr(rules, "OPPONENTS", (*rules.OPPONENTS, "lazy"))
    assert parse_player("lazy", RUNS).spec == "lazy"


def test_checkpoints_of_another_game_or_none_are_refused(tmp_path: Path, checkpoint: Path) -> None:
    other = write_ppo_checkpoint(tmp_path / "skirmish", env="skirmish")
    with pytest.raises(UsageError, match="trained on 'skirmish'"):
        parse_player(f"ckpt:{other}", RUNS)
    with pytest.raises(UsageError, match="does not exist"):
        parse_player(f"ckpt:{tmp_path / 'nope.pt'}", RUNS)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="cannot be loaded"):
        parse_subject(str(junk), RUNS)
    assert isinstance(parse_subject(str(checkpoint), RUNS), NeuralPlayer)


def test_network_choices_are_sb3_deterministic_masked_predictions(checkpoint: Path) -> None:
    net = parse_player(f"ckpt:{checkpoint}", RUNS)
    assert isinstance(net, NeuralPlayer)
    venv = envs.make_vec("beastybar", 64, seed=3)
    obs = venv.reset()
    for _ in range(6):
        masks = venv.action_masks()
        ours = net.choose_batch(obs, masks)
        assert ours.tolist() == sb3_chooser(net.network)(obs, masks).tolist()
        obs, *_ = venv.step(ours)
