"""Soccer's rules in pure Python: the reference the Cython core (ext/soccer_core.pyx) is held to bit for
bit. The rules page is docs/games/soccer.md; this module fixes the order of every float operation.

Every quantity is a Python float (IEEE float64), computed in the operations and the order written here,
with `math.sin/cos/atan2/sqrt` (the C library's, as the core calls them). Expressions are evaluated left
to right as Python and C both do (`x + v * c * DT` is `x + ((v * c) * DT)`), so writing the same
expression in the core gives the same bits. Randomness: one `envs.rng.Rng` per game, integers only.

World state: two cars (index 0 = the left car, attacking +x; 1 = the right car) and a ball; the agent
drives car `agent` (0 or 1), the scripted opponent the other. `SoccerGame.step(throttle, steer)` takes
the agent's action as floats (the envs round it to float32 first, as the core's action buffer holds it),
clips each component to [-1, 1] (infinities included) and refuses a NaN. Slow by design; never on a hot path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from envs import reward_weights
from envs.rng import Rng

OPPONENTS = ("chaser", "goalie")
SIDES = ("left", "right", "random")
REWARD_PARTS = ("goal", "touch", "ball_to_goal", "ball_distance")
DEFAULT_WEIGHTS: Mapping[str, float] = {"goal": 1.0, "touch": 0.02, "ball_to_goal": 0.01, "ball_distance": 0.001}
OUTCOMES = ("draw", "win", "loss")
NUM_ACTIONS = 2  # the size of the action vector [throttle, steer] (a continuous game's CoreSpec.num_actions)
OBS_SIZE = 18
MAX_STEPS = 600
STATE_SIZE = 12  # left car x, y, heading, speed; right car the same; ball x, y, vx, vy

# --- the rules numbers (docs/games/soccer.md, "Pitch, cars, ball") --------------------------------------
DT = 0.1
HALF_LENGTH = 50.0
HALF_WIDTH = 32.0
GOAL_HALF_WIDTH = 8.0
CAR_RADIUS = 2.0
CAR_ACCEL = 20.0
CAR_DRAG = 0.5
CAR_MAX_SPEED = 20.0
CAR_MAX_REVERSE = 8.0
CAR_TURN_RATE = 3.0
BALL_RADIUS = 1.5
BALL_FRICTION = 0.985
WALL_RESTITUTION = 0.8
CAR_RESTITUTION = 0.9
BALL_MAX_SPEED = 40.0
KICKOFF_X = 20.0
KICKOFF_POSITIONS = 9
KICKOFF_STEP = 1.0
STEER_GAIN = 2.0
AIM_OFFSET = 3.0
GOALIE_DEPTH = 5.0
GOALIE_REACH = 30.0
GOALIE_SLOW = 5.0
DISTANCE_SCALE = 100.0
GOAL_DIFF_CAP = 5.0

TWO_PI = 2.0 * math.pi


def core_tables() -> dict[str, list[float]]:
    """The rules numbers as the core takes them, in its order (the one way they reach the core)."""
    return {
        "world": [DT, HALF_LENGTH, HALF_WIDTH, GOAL_HALF_WIDTH],
        "car": [CAR_RADIUS, CAR_ACCEL, CAR_DRAG, CAR_MAX_SPEED, CAR_MAX_REVERSE, CAR_TURN_RATE],
        "ball": [BALL_RADIUS, BALL_FRICTION, WALL_RESTITUTION, CAR_RESTITUTION, BALL_MAX_SPEED],
        "kickoff": [KICKOFF_X, float(KICKOFF_POSITIONS), KICKOFF_STEP],
        "scripted": [STEER_GAIN, AIM_OFFSET, GOALIE_DEPTH, GOALIE_REACH, GOALIE_SLOW],
        "scales": [DISTANCE_SCALE, GOAL_DIFF_CAP],
    }


def checked_weights(weights: Mapping[str, object]) -> dict[str, float]:
    """`weights` as {part: float} in REWARD_PARTS order; ValueError unless it has exactly those keys, each
    a finite number."""
    return reward_weights.checked(weights, REWARD_PARTS)


def clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def wrap(angle: float) -> float:
    """`angle` moved into (-pi, pi] by whole turns."""
    while angle > math.pi:
        angle -= TWO_PI
    while angle <= -math.pi:
        angle += TWO_PI
    return angle


@dataclass
class Car:
    x: float
    y: float
    heading: float
    speed: float


@dataclass
class Ball:
    x: float
    y: float
    vx: float
    vy: float


def drive(car: Car, throttle: float, steer: float) -> None:
    """Step 2 of the rules page for one car."""
    car.speed = clamp(car.speed + (throttle * CAR_ACCEL - CAR_DRAG * car.speed) * DT, -CAR_MAX_REVERSE, CAR_MAX_SPEED)
    car.heading = wrap(car.heading + steer * CAR_TURN_RATE * DT)
    car.x = car.x + car.speed * math.cos(car.heading) * DT
    car.y = car.y + car.speed * math.sin(car.heading) * DT
    limit_x = HALF_LENGTH - CAR_RADIUS
    limit_y = HALF_WIDTH - CAR_RADIUS
    x = clamp(car.x, -limit_x, limit_x)
    y = clamp(car.y, -limit_y, limit_y)
    if x != car.x or y != car.y:
        car.x, car.y, car.speed = x, y, 0.0


def touch(car: Car, ball: Ball) -> bool:
    """Step 4 for one car: push the ball out and bounce it off the car; True when they touched."""
    dx = ball.x - car.x
    dy = ball.y - car.y
    d2 = dx * dx + dy * dy
    reach = CAR_RADIUS + BALL_RADIUS
    if d2 >= reach * reach:
        return False
    d = math.sqrt(d2)
    c = math.cos(car.heading)
    s = math.sin(car.heading)
    if d > 0.0:
        nx = dx / d
        ny = dy / d
    else:
        nx = c
        ny = s
    ball.x = car.x + nx * reach
    ball.y = car.y + ny * reach
    rel = (ball.vx - car.speed * c) * nx + (ball.vy - car.speed * s) * ny
    if rel < 0.0:
        k = (1.0 + CAR_RESTITUTION) * rel
        ball.vx = ball.vx - k * nx
        ball.vy = ball.vy - k * ny
    return True


def cap_ball_speed(ball: Ball) -> None:
    speed2 = ball.vx * ball.vx + ball.vy * ball.vy
    if speed2 > BALL_MAX_SPEED * BALL_MAX_SPEED:
        factor = BALL_MAX_SPEED / math.sqrt(speed2)
        ball.vx = ball.vx * factor
        ball.vy = ball.vy * factor


def bounce(position: float, velocity: float, limit: float) -> tuple[float, float]:
    """One axis of a wall bounce (steps 5-6): reflect past +-limit, damp the velocity, clamp."""
    if position > limit:
        position = 2.0 * limit - position
        velocity = -velocity * WALL_RESTITUTION
    elif position < -limit:
        position = -2.0 * limit - position
        velocity = -velocity * WALL_RESTITUTION
    return clamp(position, -limit, limit), velocity


def heading_error(car: Car, tx: float, ty: float) -> float:
    """The turn from the car's heading to the direction of (tx, ty), in (-pi, pi]."""
    return wrap(math.atan2(ty - car.y, tx - car.x) - car.heading)


def steer(error: float) -> float:
    return clamp(STEER_GAIN * error, -1.0, 1.0)


def chase(car: Car, ball: Ball, attack_x: float) -> tuple[float, float]:
    """The chaser: full throttle to a point AIM_OFFSET behind the ball on the line to the goal at attack_x."""
    ux = attack_x - ball.x
    uy = 0.0 - ball.y
    n = math.sqrt(ux * ux + uy * uy)
    return 1.0, steer(heading_error(car, ball.x - ux / n * AIM_OFFSET, ball.y - uy / n * AIM_OFFSET))


def scripted_action(opponent: int, car: Car, ball: Ball, forward: float) -> tuple[float, float]:
    """(throttle, steer) of the scripted car; `forward` is +1 for the left car (attacking +x), -1 else."""
    attack_x = forward * HALF_LENGTH
    if opponent == OPPONENTS.index("goalie"):
        own_x = -attack_x
        gx = own_x - ball.x
        gy = 0.0 - ball.y
        if gx * gx + gy * gy >= GOALIE_REACH * GOALIE_REACH:
            guard_x = own_x + forward * GOALIE_DEPTH
            guard_y = clamp(ball.y, -GOAL_HALF_WIDTH, GOAL_HALF_WIDTH)
            dx = guard_x - car.x
            dy = guard_y - car.y
            error = heading_error(car, guard_x, guard_y)
            # Arrive: aim at a speed of (distance ahead) m/s, braking when faster, so it stops on the spot.
            throttle = clamp((math.sqrt(dx * dx + dy * dy) * math.cos(error) - car.speed) / GOALIE_SLOW, -1.0, 1.0)
            return throttle, steer(error)
    return chase(car, ball, attack_x)


class SoccerGame:
    """One game: `reset()` starts an episode (continuing the generator stream), `step(throttle, steer)`
    plays one step; then read `observation()`, `reward`, `reward_parts`, `terminated`, `truncated`
    (always False), `end_info()` once over, `state()` (float64 tuple, STATE_SIZE) for the tests."""

    def __init__(self, seed: int, opponent: str = "chaser", side: str = "random", max_steps: int = MAX_STEPS,
                 reward_weights: Mapping[str, object] = DEFAULT_WEIGHTS) -> None:
        self.rng = Rng(seed)
        self.opponent = OPPONENTS.index(opponent)
        self.side = SIDES.index(side)
        self.max_steps = max_steps
        self.weights = tuple(checked_weights(reward_weights).values())
        self.cars = [Car(0.0, 0.0, 0.0, 0.0), Car(0.0, 0.0, 0.0, 0.0)]
        self.ball = Ball(0.0, 0.0, 0.0, 0.0)
        self.reset()

    def reset(self) -> None:
        self.agent = self.rng.below(2) if SIDES[self.side] == "random" else self.side
        self.goals = [0, 0]
        self.steps = 0
        self.reward = 0.0
        self.reward_parts = [0.0] * len(REWARD_PARTS)
        self.episode_parts = [0.0] * len(REWARD_PARTS)
        self.terminated = False
        self.truncated = False
        self.kickoff()

    def kickoff(self) -> None:
        ball_y = (self.rng.below(KICKOFF_POSITIONS) - KICKOFF_POSITIONS // 2) * KICKOFF_STEP
        left_y = (self.rng.below(KICKOFF_POSITIONS) - KICKOFF_POSITIONS // 2) * KICKOFF_STEP
        right_y = (self.rng.below(KICKOFF_POSITIONS) - KICKOFF_POSITIONS // 2) * KICKOFF_STEP
        self.ball = Ball(0.0, float(ball_y), 0.0, 0.0)
        self.cars = [Car(-KICKOFF_X, float(left_y), 0.0, 0.0), Car(KICKOFF_X, float(right_y), math.pi, 0.0)]

    @property
    def over(self) -> bool:
        return self.terminated

    def step(self, throttle: float, steer: float) -> None:
        if math.isnan(throttle) or math.isnan(steer):
            raise ValueError(f"action [{throttle!r}, {steer!r}] has a NaN")
        if self.over:
            raise ValueError("the game is over; call reset()")
        agent, other = self.agent, 1 - self.agent
        actions = [(0.0, 0.0), (0.0, 0.0)]
        actions[agent] = (clamp(throttle, -1.0, 1.0), clamp(steer, -1.0, 1.0))
        actions[other] = scripted_action(self.opponent, self.cars[other], self.ball, 1.0 if other == 0 else -1.0)
        for car, (t, s) in zip(self.cars, actions, strict=True):
            drive(car, t, s)
        ball = self.ball
        ball.x = ball.x + ball.vx * DT
        ball.y = ball.y + ball.vy * DT
        ball.vx = ball.vx * BALL_FRICTION
        ball.vy = ball.vy * BALL_FRICTION
        touched = [touch(car, ball) for car in self.cars]
        cap_ball_speed(ball)
        ball.y, ball.vy = bounce(ball.y, ball.vy, HALF_WIDTH - BALL_RADIUS)
        limit_x = HALF_LENGTH - BALL_RADIUS
        scorer = -1
        if (ball.x > limit_x or ball.x < -limit_x) and abs(ball.y) < GOAL_HALF_WIDTH:
            scorer = 0 if ball.x > 0.0 else 1
        else:
            ball.x, ball.vx = bounce(ball.x, ball.vx, limit_x)
        self._score_step(scorer, touched[agent])
        self.steps += 1
        if scorer >= 0:
            self.goals[scorer] += 1
            self.kickoff()
        self.terminated = self.steps >= self.max_steps

    def _score_step(self, scorer: int, touched: bool) -> None:
        """Step 7: the weighted reward parts and the reward of this step."""
        car, ball = self.cars[self.agent], self.ball
        goal = 0.0 if scorer < 0 else 1.0 if scorer == self.agent else -1.0
        limit_x = HALF_LENGTH - BALL_RADIUS
        ux = (HALF_LENGTH if self.agent == 0 else -HALF_LENGTH) - clamp(ball.x, -limit_x, limit_x)
        uy = 0.0 - ball.y
        towards = (ball.vx * ux + ball.vy * uy) / math.sqrt(ux * ux + uy * uy) / BALL_MAX_SPEED
        dx = ball.x - car.x
        dy = ball.y - car.y
        distance = -math.sqrt(dx * dx + dy * dy) / DISTANCE_SCALE
        raw = (goal, 1.0 if touched else 0.0, towards, distance)
        self.reward_parts = [w * r for w, r in zip(self.weights, raw, strict=True)]
        total = 0.0
        for k, part in enumerate(self.reward_parts):
            total = total + part
            self.episode_parts[k] = self.episode_parts[k] + part
        self.reward = total

    def observation(self) -> list[float]:
        """OBS_SIZE float64 entries in the agent's frame (docs/games/soccer.md); round to float32 to use."""
        m = 1.0 if self.agent == 0 else -1.0
        obs: list[float] = []
        for car in (self.cars[self.agent], self.cars[1 - self.agent]):
            obs += [m * car.x / HALF_LENGTH, m * car.y / HALF_WIDTH, m * math.cos(car.heading),
                    m * math.sin(car.heading), car.speed / CAR_MAX_SPEED]
        ball, car = self.ball, self.cars[self.agent]
        obs += [m * ball.x / HALF_LENGTH, m * ball.y / HALF_WIDTH, m * ball.vx / BALL_MAX_SPEED,
                m * ball.vy / BALL_MAX_SPEED, m * (ball.x - car.x) / (2.0 * HALF_LENGTH),
                m * (ball.y - car.y) / (2.0 * HALF_WIDTH)]
        obs.append(float(self.max_steps - self.steps) / float(self.max_steps))
        difference = float(self.goals[self.agent] - self.goals[1 - self.agent])
        obs.append(clamp(difference, -GOAL_DIFF_CAP, GOAL_DIFF_CAP) / GOAL_DIFF_CAP)
        return obs

    def state(self) -> tuple[float, ...]:
        left, right, ball = self.cars[0], self.cars[1], self.ball
        return (left.x, left.y, left.heading, left.speed, right.x, right.y, right.heading, right.speed,
                ball.x, ball.y, ball.vx, ball.vy)

    def end_info(self) -> dict[str, object]:
        """The info of a finished episode: goals, outcome, the agent's side, the reward parts' sums."""
        goals_for, goals_against = self.goals[self.agent], self.goals[1 - self.agent]
        return {
            "goals_for": goals_for,
            "goals_against": goals_against,
            "outcome": OUTCOMES[0 if goals_for == goals_against else 1 if goals_for > goals_against else 2],
            "side": SIDES[self.agent],
            "reward_parts": dict(zip(REWARD_PARTS, self.episode_parts, strict=True)),
        }

