"""Soccer's pure-Python reference (envs/soccer/rules.py) against the rules page (docs/games/soccer.md):
examples worked out by hand from the page, the scripted cars, the checks of actions and weights, and the
physics invariants over random games (hypothesis): the ball stays on the pitch, speeds stay capped, a
goal restarts from a kick-off, the reward parts sum to the reward, the observation stays in its space."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.rng import Rng
from envs.soccer import rules
from envs.soccer.env import observation_space
from envs.soccer.rules import Ball, Car, SoccerGame

ZERO_WEIGHTS = dict.fromkeys(rules.REWARD_PARTS, 0.0)


def game(seed: int = 0, **kwargs: object) -> SoccerGame:
    return SoccerGame(seed, **{"side": "left", **kwargs})  # type: ignore[arg-type]


def place(g: SoccerGame, ball: Ball, agent: Car | None = None, other: Car | None = None) -> None:
    """Puts the ball, and the cars when given; the cars default to the far corners, out of play."""
    g.ball = ball
    g.cars[g.agent] = agent or Car(-40.0, -25.0 * (1 if g.agent == 0 else -1), 0.0, 0.0)
    g.cars[1 - g.agent] = other or Car(40.0, 25.0 * (1 if g.agent == 0 else -1), math.pi, 0.0)


def test_kickoff_positions_come_from_three_draws_in_order() -> None:
    draws = Rng(11)
    b, left, right = ((draws.below(9) - 4) * 1.0 for _ in range(3))
    g = game(11)
    assert g.state() == (-20.0, left, 0.0, 0.0, 20.0, right, math.pi, 0.0, 0.0, b, 0.0, 0.0)
    assert (g.goals, g.steps, g.agent) == ([0, 0], 0, 0)


def test_a_random_side_is_drawn_first() -> None:
    for seed in range(20):
        draws = Rng(seed)
        agent = draws.below(2)
        b = (draws.below(9) - 4) * 1.0
        g = SoccerGame(seed, side="random")
        assert (g.agent, g.ball.y) == (agent, b)


def test_a_car_accelerates_with_drag_turns_and_moves_along_its_heading() -> None:
    g = game(opponent="goalie", reward_weights=ZERO_WEIGHTS)
    g.step(1.0, 0.0)
    car = g.cars[0]
    assert car.speed == 2.0  # (1 * 20 - 0.5 * 0) * 0.1
    assert car.x == pytest.approx(-19.8, abs=1e-12) and car.heading == 0.0
    g.step(1.0, 1.0)
    assert car.speed == pytest.approx(3.9, abs=1e-12)  # 2 + (20 - 0.5 * 2) * 0.1
    assert car.heading == pytest.approx(0.3, abs=1e-12)  # 1 * 3 rad/s * 0.1 s
    assert car.x == pytest.approx(-19.8 + 3.9 * math.cos(0.3) * 0.1, abs=1e-12)


def test_car_speed_is_capped_forwards_and_in_reverse_and_a_wall_stops_a_car() -> None:
    g = game(max_steps=1000)
    place(g, Ball(0.0, 0.0, 0.0, 0.0), Car(-30.0, -20.0, math.pi / 2, 0.0))
    for _ in range(40):
        g.step(1.0, 0.0)
    car = g.cars[0]
    assert car.y == 30.0 and car.speed == 0.0  # clamped to the wall (32 - 2) and stopped
    place(g, Ball(0.0, 0.0, 0.0, 0.0), Car(-30.0, 0.0, 0.0, 0.0))
    speeds = []
    for _ in range(40):
        g.step(1.0, 0.0)
        speeds.append(g.cars[0].speed)
    assert max(speeds) == 20.0
    place(g, Ball(0.0, 0.0, 0.0, 0.0), Car(30.0, 0.0, 0.0, 0.0))
    for _ in range(30):
        g.step(-1.0, 0.0)
    assert g.cars[0].speed == -8.0


def test_the_ball_rolls_with_friction_and_bounces_off_a_side_wall() -> None:
    g = game(reward_weights=ZERO_WEIGHTS)
    place(g, Ball(0.0, 0.0, 10.0, 0.0))
    g.step(0.0, 0.0)
    assert (g.ball.x, g.ball.vx) == (pytest.approx(1.0, abs=1e-12), 10.0 * 0.985)
    place(g, Ball(0.0, 30.0, 0.0, 20.0))
    g.step(0.0, 0.0)  # y = 32 past the limit 30.5: reflected to 29, vy = -(20 * 0.985) * 0.8
    assert (g.ball.y, g.ball.vy) == (pytest.approx(29.0, abs=1e-12), pytest.approx(-15.76, abs=1e-12))


def test_an_end_wall_outside_the_goal_reflects_the_ball() -> None:
    g = game(reward_weights=ZERO_WEIGHTS)
    place(g, Ball(47.0, 10.0, 30.0, 0.0))
    g.step(0.0, 0.0)  # x = 50 past 48.5 with |y| = 10 >= 8: reflected to 47
    assert (g.ball.x, g.ball.vx) == (pytest.approx(47.0, abs=1e-12), pytest.approx(-23.64, abs=1e-12))
    assert g.goals == [0, 0]


@pytest.mark.parametrize(("side", "ball_x", "vx", "goal_part"), [
    ("left", 47.0, 30.0, 1.0), ("left", -47.0, -30.0, -1.0), ("right", -47.0, -30.0, 1.0), ("right", 47.0, 30.0, -1.0),
])
def test_a_goal_scores_for_the_right_car_and_restarts_from_a_kickoff(side: str, ball_x: float, vx: float,
                                                                      goal_part: float) -> None:
    g = game(3, side=side, reward_weights={**ZERO_WEIGHTS, "goal": 2.0})
    place(g, Ball(ball_x, 5.0, vx, 0.0))
    draws = Rng(0)
    draws.s0, draws.s1, draws.s2, draws.s3 = g.rng.s0, g.rng.s1, g.rng.s2, g.rng.s3
    b, left, right = ((draws.below(9) - 4) * 1.0 for _ in range(3))
    g.step(0.0, 0.0)
    scorer = 0 if ball_x > 0 else 1
    assert g.goals[scorer] == 1 and g.goals[1 - scorer] == 0
    assert g.reward_parts[0] == 2.0 * goal_part and g.reward == 2.0 * goal_part
    assert g.state() == (-20.0, left, 0.0, 0.0, 20.0, right, math.pi, 0.0, 0.0, b, 0.0, 0.0)
    assert g.observation()[17] == goal_part / 5.0  # goal difference / 5, from the agent's side
    assert g.steps == 1 and not g.terminated


def test_a_moving_car_kicks_a_ball_at_rest() -> None:
    g = game(reward_weights={**ZERO_WEIGHTS, "touch": 0.5})
    place(g, Ball(3.0, 0.0, 0.0, 0.0), Car(0.0, 0.0, 0.0, 10.0))
    g.step(0.0, 0.0)
    car = g.cars[0]
    assert car.speed == 9.5 and car.x == pytest.approx(0.95, abs=1e-12)  # 10 + (0 - 5) * 0.1
    # d = 2.05 < 3.5: pushed out to 3.5 from the car, rel = -9.5, vx = 1.9 * 9.5
    assert (g.ball.x, g.ball.y) == (pytest.approx(4.45, abs=1e-12), 0.0)
    assert (g.ball.vx, g.ball.vy) == (pytest.approx(18.05, abs=1e-12), 0.0)
    assert g.reward_parts[1] == 0.5


def test_a_kick_is_capped_at_the_ball_speed_limit() -> None:
    g = game(reward_weights=ZERO_WEIGHTS)
    place(g, Ball(6.0, 0.0, -35.0, 0.0), Car(0.0, 0.0, 0.0, 20.0))  # would leave at 69 m/s
    g.step(1.0, 0.0)
    assert math.hypot(g.ball.vx, g.ball.vy) == pytest.approx(40.0, rel=1e-12)


def test_reward_parts_by_hand() -> None:
    g = game(reward_weights={"goal": 1.0, "touch": 1.0, "ball_to_goal": 1.0, "ball_distance": 1.0})
    place(g, Ball(10.0, 0.0, 20.0, 0.0), Car(-40.0, 0.0, 0.0, 0.0))
    g.step(0.0, 0.0)
    # the ball at x = 12, vx = 19.7 straight at the goal centre: 19.7 / 40; the car 52 m away: -0.52
    assert g.reward_parts == [0.0, 0.0, pytest.approx(19.7 / 40.0, abs=1e-12), pytest.approx(-0.52, abs=1e-12)]
    assert g.reward == sum(g.reward_parts)
    g = game(side="right", reward_weights={"goal": 1.0, "touch": 1.0, "ball_to_goal": 1.0, "ball_distance": 1.0})
    place(g, Ball(10.0, 0.0, 20.0, 0.0), Car(40.0, 0.0, math.pi, 0.0))
    g.step(0.0, 0.0)  # the right side attacks -x: the same ball runs away from its goal
    assert g.reward_parts[2] == pytest.approx(-19.7 / 40.0, abs=1e-12)


def test_actions_are_clipped_and_a_nan_is_refused() -> None:
    clipped, wild = game(5), game(5)
    for _ in range(30):
        clipped.step(1.0, -1.0)
        wild.step(7.5, -math.inf)
    assert clipped.state() == wild.state()
    with pytest.raises(ValueError, match=r"action \[nan, 0.0\] has a NaN"):
        wild.step(math.nan, 0.0)
    assert clipped.state() == wild.state()


def test_the_time_limit_ends_the_game_as_terminated() -> None:
    g = game(max_steps=3)
    for _ in range(3):
        assert not g.terminated
        g.step(0.0, 0.0)
    assert g.terminated and not g.truncated and g.observation()[16] == 0.0
    with pytest.raises(ValueError, match="the game is over"):
        g.step(0.0, 0.0)
    g.reset()
    assert not g.terminated and g.steps == 0 and g.observation()[16] == 1.0


def test_end_info_counts_goals_from_the_agents_side() -> None:
    g = game(side="right", max_steps=1)
    g.goals = [2, 1]
    g.step(0.0, 0.0)
    info = g.end_info()
    assert (info["goals_for"], info["goals_against"], info["outcome"], info["side"]) == (1, 2, "loss", "right")
    assert info["reward_parts"] == dict(zip(rules.REWARD_PARTS, g.episode_parts, strict=True))


@pytest.mark.parametrize(("weights", "message"), [
    ({"goal": 1.0}, "reward_weights must have the keys goal, touch, ball_to_goal, ball_distance; got goal"),
    ({**rules.DEFAULT_WEIGHTS, "touch": "a"}, r"reward_weights\['touch'\] must be a finite number, got 'a'"),
    ({**rules.DEFAULT_WEIGHTS, "goal": True}, r"reward_weights\['goal'\] must be a finite number, got True"),
    ({**rules.DEFAULT_WEIGHTS, "goal": math.nan}, r"reward_weights\['goal'\] must be a finite number, got nan"),
])
def test_reward_weights_must_be_finite_numbers_for_every_part(weights: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rules.checked_weights(weights)


def test_the_chaser_scores_against_a_car_that_does_not_move() -> None:
    scored = 0
    for seed in range(4):
        g = game(seed, opponent="chaser", side="right")
        while not g.terminated:
            g.step(0.0, 0.0)
        scored += g.goals[0]
    assert scored >= 4


def test_the_goalie_guards_its_goal_while_the_ball_is_far() -> None:
    g = game(2, opponent="goalie", max_steps=300)
    while not g.terminated:
        g.step(0.0, 0.0)
    goalie = g.cars[1]
    guard = (50.0 - 5.0, max(-8.0, min(8.0, g.ball.y)))
    assert math.hypot(goalie.x - guard[0], goalie.y - guard[1]) < 0.5 and abs(goalie.speed) < 0.5
    assert g.goals == [0, 0]


def test_core_tables_hold_every_rules_number_in_the_cores_order() -> None:
    tables = rules.core_tables()
    assert tables["world"] == [0.1, 50.0, 32.0, 8.0]
    assert tables["kickoff"] == [20.0, 9.0, 1.0]
    assert sum(map(len, tables.values())) == 25


def assert_invariants(g: SoccerGame, goals_before: int) -> None:
    ball, limit_x, limit_y = g.ball, 50.0 - 1.5, 32.0 - 1.5
    assert -limit_x <= ball.x <= limit_x and -limit_y <= ball.y <= limit_y, "the ball left the pitch"
    assert math.hypot(ball.vx, ball.vy) <= 40.0 * (1 + 1e-12)
    for car in g.cars:
        assert -48.0 <= car.x <= 48.0 and -30.0 <= car.y <= 30.0
        assert -8.0 <= car.speed <= 20.0 and -math.pi < car.heading <= math.pi
    if sum(g.goals) > goals_before:
        assert sum(g.goals) == goals_before + 1
        assert (ball.x, ball.vx, ball.vy) == (0.0, 0.0, 0.0) and g.cars[0].x == -20.0 and g.cars[1].x == 20.0
        assert (g.cars[0].speed, g.cars[1].speed, g.cars[0].heading, g.cars[1].heading) == (0.0, 0.0, 0.0, math.pi)
        assert abs(g.reward_parts[0]) == g.weights[0]
    else:
        assert g.reward_parts[0] == 0.0
    assert np.float32(sum(g.reward_parts)) == np.float32(g.reward)
    assert np.array(g.observation(), dtype=np.float32) in observation_space()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), opponent=st.sampled_from(rules.OPPONENTS), side=st.sampled_from(rules.SIDES),
       actions=st.lists(st.tuples(st.floats(-1.5, 1.5), st.floats(-1.5, 1.5)), min_size=1, max_size=20),
       max_steps=st.integers(1, 400))
def test_physics_invariants_hold_over_random_games(seed: int, opponent: str, side: str,
                                                   actions: list[tuple[float, float]], max_steps: int) -> None:
    g = SoccerGame(seed, opponent, side, max_steps)
    steps = 0
    while not g.terminated:
        goals_before = sum(g.goals)
        throttle, steer = actions[steps % len(actions)]
        g.step(throttle, steer)
        steps += 1
        assert_invariants(g, goals_before)
    assert steps == max_steps
