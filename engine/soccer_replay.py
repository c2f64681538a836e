"""One soccer game played step by step for a person to watch, and its frames as plain text.

`ReplayGame(driver, opponent, seed)` plays one game of `envs.soccer.rules.SoccerGame` (the reference:
it exposes the whole world, both cars, the ball, the score and the clock; it plays bit for bit as the
core the policy trained on). The agent's car is driven by a `Driver`: `policy_driver(policy)` for a
trained checkpoint (its deterministic action on the observation, normalised by its frozen statistics
when it has them) or `scripted_driver(name)` for a scripted car (the rules' chaser or goalie driving the
agent's car, so a user can watch the game without a checkpoint). `frames()` yields the game's frames:
frame 0 is the kick-off, frame k the state after k steps (0.1 s each), the last one the final whistle.

`render(frame, names)` draws a frame in RENDER_WIDTH x RENDER_HEIGHT characters (fits an 80 x 24
terminal): a line with the score and the clock, the walled pitch with both goal mouths (`#` nets
behind them), the centre line, the ball `o`, each car as its letter (A the agent, B the scripted car)
with an arrow in the cell its heading points to, and a legend line. y grows upwards, as in the
rules; a cell is 100/60 m wide and 64/19 m tall (terminal cells are about twice as tall as wide).
The text depends only on the frame, so a game's frames are reproducible to the character. This
module prints nothing and writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.soccer import rules

COLUMNS = 60  # pitch cells across its length (x)
ROWS = 19  # pitch cells across its width (y)
RENDER_WIDTH = COLUMNS + 4  # nets, walls and the pitch
RENDER_HEIGHT = ROWS + 4  # score line, two walls, legend
ARROWS = "→↗↑↖←↙↓↘"  # heading in eighths of a turn from +x, anticlockwise
AGENT, OPPONENT, BALL = "A", "B", "o"
# (agent's [throttle, steer]) from the game: the agent's car, the ball, the agent's observation.
Driver = Callable[[rules.SoccerGame], tuple[float, float]]


@dataclass(frozen=True)
class Frame:
    """What a frame shows: `cars` ((x, y, heading) of the left car, of the right car), `ball` (x, y),
    `agent` the agent's car (0 left, 1 right), `goals` (left car's, right car's), `step` of `max_steps`."""

    cars: tuple[tuple[float, float, float], tuple[float, float, float]]
    ball: tuple[float, float]
    agent: int
    goals: tuple[int, int]
    step: int
    max_steps: int


def snapshot(game: rules.SoccerGame) -> Frame:
    left, right = game.cars
    return Frame(((left.x, left.y, left.heading), (right.x, right.y, right.heading)), (game.ball.x, game.ball.y),
                 game.agent, (game.goals[0], game.goals[1]), game.steps, game.max_steps)


def _float32(value: float) -> float:
    """The value as the envs pass it to the game: rounded to float32 (the core's action buffer)."""
    return float(np.float32(value))


def scripted_driver(name: str) -> Driver:
    """The agent's car driven by scripted car `name` (chaser or goalie), attacking the agent's goal side."""
    index = rules.OPPONENTS.index(name)

    def drive(game: rules.SoccerGame) -> tuple[float, float]:
        forward = 1.0 if game.agent == 0 else -1.0
        throttle, steer = rules.scripted_action(index, game.cars[game.agent], game.ball, forward)
        return _float32(throttle), _float32(steer)

    return drive


def policy_driver(policy: Any, statistics: Mapping[str, Any] | None) -> Driver:
    """The deterministic action of an SB3 policy on the agent's observation, normalised by `statistics`
    (engine.vec_normalize's checkpoint value) frozen, as in training."""
    normalize = _frozen_normalizer(statistics) if statistics is not None else None

    def drive(game: rules.SoccerGame) -> tuple[float, float]:
        obs = np.array([game.observation()], dtype=np.float32)
        if normalize is not None:
            obs = normalize(obs)
        actions, _state = policy.predict(obs, deterministic=True)
        action = np.asarray(actions, dtype=np.float32).reshape(-1)
        return float(action[0]), float(action[1])

    return drive


def _frozen_normalizer(statistics: Mapping[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    from stable_baselines3.common.vec_env import VecNormalize

    from engine import vec_normalize
    from envs.soccer.vec_env import SoccerVecEnv

    norm = VecNormalize(SoccerVecEnv(1), norm_obs=True, norm_reward=False)
    vec_normalize.restore(norm, statistics, training=False)
    return lambda obs: np.asarray(norm.normalize_obs(obs), dtype=np.float32)


class ReplayGame:
    """One game for watching (see the module docstring); `side` as `rules.SoccerGame` takes it."""

    def __init__(self, driver: Driver, opponent: str, seed: int, side: str = "random",
                 max_steps: int = rules.MAX_STEPS) -> None:
        self.driver = driver
        self.game = rules.SoccerGame(seed, opponent, side=side, max_steps=max_steps)

    def frames(self) -> Iterator[Frame]:
        game = self.game
        yield snapshot(game)
        while not game.over:
            throttle, steer = self.driver(game)
            game.step(throttle, steer)
            yield snapshot(game)


# -- drawing ------------------------------------------------------------------------------------------
def _cell(x: float, y: float) -> tuple[int, int]:
    """(row, column) of world point (x, y) in the pitch grid."""
    column = int((x + rules.HALF_LENGTH) / (2 * rules.HALF_LENGTH) * COLUMNS)
    row = int((rules.HALF_WIDTH - y) / (2 * rules.HALF_WIDTH) * ROWS)
    return min(max(row, 0), ROWS - 1), min(max(column, 0), COLUMNS - 1)


def _arrow(heading: float) -> tuple[str, int, int]:
    """The arrow for a heading and the (row, column) step to the cell it points to."""
    eighth = round(heading / (math.pi / 4)) % 8
    dx = (1, 1, 0, -1, -1, -1, 0, 1)[eighth]
    dy = (0, 1, 1, 1, 0, -1, -1, -1)[eighth]
    return ARROWS[eighth], -dy, dx


def _clock(step: int) -> str:
    tenths = round(step * rules.DT * 10)
    return f"{tenths // 600:02d}:{tenths // 10 % 60:02d}.{tenths % 10}"


def render(frame: Frame, names: tuple[str, str]) -> str:
    """The frame as RENDER_HEIGHT lines of at most RENDER_WIDTH characters; `names` (the agent's, the
    scripted car's) label the score line."""
    grid = [[" "] * COLUMNS for _ in range(ROWS)]
    centre = COLUMNS // 2
    for row in range(ROWS):
        grid[row][centre] = ":"
    grid[ROWS // 2][centre] = "+"
    ball_row, ball_column = _cell(*frame.ball)
    grid[ball_row][ball_column] = BALL
    letters = {frame.agent: AGENT, 1 - frame.agent: OPPONENT}
    placed = [_cell(x, y) for x, y, _h in frame.cars]
    for k, (_x, _y, heading) in enumerate(frame.cars):
        arrow, drow, dcolumn = _arrow(heading)
        row, column = placed[k][0] + drow, placed[k][1] + dcolumn
        if 0 <= row < ROWS and 0 <= column < COLUMNS and (row, column) not in placed and grid[row][column] != BALL:
            grid[row][column] = arrow
    for k, (row, column) in enumerate(placed):
        grid[row][column] = letters[k]
    top_goal, bottom_goal = _cell(0.0, rules.GOAL_HALF_WIDTH)[0], _cell(0.0, -rules.GOAL_HALF_WIDTH)[0]
    lines = [_score_line(frame, names), " +" + "-" * COLUMNS + "+ "]
    for row, cells in enumerate(grid):
        mouth = top_goal <= row <= bottom_goal
        wall = " " if mouth else "|"
        net = "#" if mouth else " "
        lines.append(f"{net}{wall}{''.join(cells)}{wall}{net}")
    lines.append(" +" + "-" * COLUMNS + "+ ")
    lines.append(f" {AGENT} {names[0]}  {OPPONENT} {names[1]}  {BALL} ball  arrow: heading  # goal"[:RENDER_WIDTH])
    return "\n".join(line.rstrip() for line in lines)


def _score_line(frame: Frame, names: tuple[str, str]) -> str:
    sides = ("left", "right")
    agent_goals, opponent_goals = frame.goals[frame.agent], frame.goals[1 - frame.agent]
    score = f"{AGENT} {names[0]} ({sides[frame.agent]}) {agent_goals} - {opponent_goals} {names[1]} {OPPONENT}"
    clock = f"{_clock(frame.step)} / {_clock(frame.max_steps)}"
    return f" {score}"[:RENDER_WIDTH - len(clock) - 2].ljust(RENDER_WIDTH - len(clock) - 1) + clock


def result_line(frame: Frame, names: tuple[str, str]) -> str:
    """The final score from the agent's side, with the outcome."""
    agent_goals, opponent_goals = frame.goals[frame.agent], frame.goals[1 - frame.agent]
    outcome = "win" if agent_goals > opponent_goals else "loss" if agent_goals < opponent_goals else "draw"
    return f"final: {names[0]} {agent_goals} - {opponent_goals} {names[1]} ({outcome} for {names[0]})"
