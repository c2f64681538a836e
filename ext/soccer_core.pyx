# distutils: extra_compile_args = -ffp-contract=off
"""The soccer core: N car-soccer games in C arrays, stepped in one call, the scripted car driven inside C.

It follows envs/soccer/rules.py (the reference; the rules page is docs/games/soccer.md) operation for
operation in float64, so the two agree bit for bit: the same expressions in the same order, the C
library's sin/cos/atan2/sqrt (which Python's math module calls too), and no fused multiply-add
(`-ffp-contract=off` above). The differential test holds the two together.

`SoccerCore(num_games, tables, opponent, options, auto_reset, buffers)` follows the core protocol of
docs/adding-a-game.md for a continuous-control game: `tables` is `envs.soccer.rules.core_tables()`,
`opponent` one of `OPPONENTS`, `options` {"side": one of SIDES, "max_steps": steps per episode >= 1,
"reward_weights": {part: finite float} over REWARD_PARTS}. Buffers, N = games: obs float32[N, 18],
rewards float32[N], terminated bool[N], truncated bool[N] (always false: the time limit is the game's own
end), masks bool[N, 0] (no legal-action masks), terminal_obs float32[N, 18]. `step(actions)` takes
float32[N, 2] ([throttle, steer] per game): every value is clipped to [-1, 1] (infinities too); it returns
the index of the first game whose action has a NaN (and then no game has moved), else -1. Its own
read-only arrays: reward_parts float64[N, 4] (this step's weighted parts, REWARD_PARTS order),
episode_return float64[N], episode_length int32[N], episode_outcome int8[N] (+1 win, 0 draw, -1 loss; of
each game's last finished episode).
`enemy_turn_ns` is the time spent computing the scripted cars' actions, read off the monotonic clock
around each whole pass over the games (the scripted car acts every step). The step loop runs without the
GIL and touches no Python object.
"""

from libc.math cimport M_PI, atan2, cos, fabs, isnan, sin, sqrt
from libc.stdint cimport uint64_t
from libc.stdlib cimport free

import numpy as np

from ext.core_common cimport (
    allocated, check_index, checked_buffers, checked_dict, checked_weights, choice_index, now_ns, reseed_games,
    rng_state_rows)
from ext.rng cimport rng_below

# The rules' vocabulary (envs/soccer/rules.py), indexed as in the core.
OPPONENTS = ("chaser", "goalie")
SIDES = ("left", "right", "random")
REWARD_PARTS = ("goal", "touch", "ball_to_goal", "ball_distance")
OUTCOMES = ("draw", "win", "loss")
OPTION_KEYS = ("side", "max_steps", "reward_weights")
TABLE_KEYS = ("world", "car", "ball", "kickoff", "scripted", "scales")

cdef double TWO_PI = 2.0 * M_PI
cdef int GOALIE = 1
cdef int RANDOM_SIDE = 2


# --- the physics, in rules.py's order --------------------------------------------------------------

cdef inline double clamp(double value, double low, double high) noexcept nogil:
    return low if value < low else (high if value > high else value)


cdef inline double wrap(double angle) noexcept nogil:
    while angle > M_PI:
        angle -= TWO_PI
    while angle <= -M_PI:
        angle += TWO_PI
    return angle


cdef inline void set_heading(Car* car, double heading) noexcept nogil:
    car.heading = heading
    car.cos_h = cos(heading)
    car.sin_h = sin(heading)


cdef void drive(Car* car, const Tables* t, double throttle, double steer) noexcept nogil:
    cdef double limit_x, limit_y, x, y
    car.speed = clamp(car.speed + (throttle * t.car_accel - t.car_drag * car.speed) * t.dt,
                      -t.car_max_reverse, t.car_max_speed)
    set_heading(car, wrap(car.heading + steer * t.car_turn_rate * t.dt))
    car.x = car.x + car.speed * car.cos_h * t.dt
    car.y = car.y + car.speed * car.sin_h * t.dt
    limit_x = t.half_length - t.car_radius
    limit_y = t.half_width - t.car_radius
    x = clamp(car.x, -limit_x, limit_x)
    y = clamp(car.y, -limit_y, limit_y)
    if x != car.x or y != car.y:
        car.x = x
        car.y = y
        car.speed = 0.0


cdef bint touch(const Car* car, Ball* ball, const Tables* t) noexcept nogil:
    cdef double dx = ball.x - car.x
    cdef double dy = ball.y - car.y
    cdef double d2 = dx * dx + dy * dy
    cdef double reach = t.car_radius + t.ball_radius
    cdef double d, c, s, nx, ny, rel, k
    if d2 >= reach * reach:
        return False
    d = sqrt(d2)
    c = car.cos_h
    s = car.sin_h
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
        k = (1.0 + t.car_restitution) * rel
        ball.vx = ball.vx - k * nx
        ball.vy = ball.vy - k * ny
    return True


cdef inline void cap_ball_speed(Ball* ball, const Tables* t) noexcept nogil:
    cdef double speed2 = ball.vx * ball.vx + ball.vy * ball.vy
    cdef double factor
    if speed2 > t.ball_max_speed * t.ball_max_speed:
        factor = t.ball_max_speed / sqrt(speed2)
        ball.vx = ball.vx * factor
        ball.vy = ball.vy * factor


cdef inline void bounce(double* position, double* velocity, double limit, double restitution) noexcept nogil:
    if position[0] > limit:
        position[0] = 2.0 * limit - position[0]
        velocity[0] = -velocity[0] * restitution
    elif position[0] < -limit:
        position[0] = -2.0 * limit - position[0]
        velocity[0] = -velocity[0] * restitution
    position[0] = clamp(position[0], -limit, limit)


cdef inline double heading_error(const Car* car, double tx, double ty) noexcept nogil:
    return wrap(atan2(ty - car.y, tx - car.x) - car.heading)


cdef inline double steer(const Tables* t, double error) noexcept nogil:
    return clamp(t.steer_gain * error, -1.0, 1.0)


cdef void scripted_action(const Game* g, const Tables* t, int k, double* out) noexcept nogil:
    """out[0], out[1] = throttle, steer of the scripted car k (rules.scripted_action)."""
    cdef const Car* car = &g.cars[k]
    cdef const Ball* ball = &g.ball
    cdef double forward = 1.0 if k == 0 else -1.0
    cdef double attack_x = forward * t.half_length
    cdef double own_x, gx, gy, guard_x, guard_y, dx, dy, error, ux, uy, n
    if t.opponent == GOALIE:
        own_x = -attack_x
        gx = own_x - ball.x
        gy = 0.0 - ball.y
        if gx * gx + gy * gy >= t.goalie_reach * t.goalie_reach:
            guard_x = own_x + forward * t.goalie_depth
            guard_y = clamp(ball.y, -t.goal_half_width, t.goal_half_width)
            dx = guard_x - car.x
            dy = guard_y - car.y
            error = heading_error(car, guard_x, guard_y)
            out[0] = clamp((sqrt(dx * dx + dy * dy) * cos(error) - car.speed) / t.goalie_slow, -1.0, 1.0)
            out[1] = steer(t, error)
            return
    ux = attack_x - ball.x
    uy = 0.0 - ball.y
    n = sqrt(ux * ux + uy * uy)
    out[0] = 1.0
    out[1] = steer(t, heading_error(car, ball.x - ux / n * t.aim_offset, ball.y - uy / n * t.aim_offset))


cdef inline double kickoff_offset(Game* g, const Tables* t) noexcept nogil:
    return <double>(<int>rng_below(&g.rng, <unsigned int>t.kickoff_positions) - t.kickoff_positions // 2) \
        * t.kickoff_step


cdef void kickoff(Game* g, const Tables* t) noexcept nogil:
    cdef double ball_y = kickoff_offset(g, t)
    cdef double left_y = kickoff_offset(g, t)
    cdef double right_y = kickoff_offset(g, t)
    g.ball.x = 0.0
    g.ball.y = ball_y
    g.ball.vx = 0.0
    g.ball.vy = 0.0
    g.cars[0].x = -t.kickoff_x
    g.cars[0].y = left_y
    set_heading(&g.cars[0], 0.0)
    g.cars[0].speed = 0.0
    g.cars[1].x = t.kickoff_x
    g.cars[1].y = right_y
    set_heading(&g.cars[1], M_PI)
    g.cars[1].speed = 0.0


cdef void new_episode(Game* g, const Tables* t) noexcept nogil:
    cdef int k
    g.agent = <int>rng_below(&g.rng, 2) if t.side == RANDOM_SIDE else t.side
    g.goals[0] = 0
    g.goals[1] = 0
    g.steps = 0
    g.over = False
    for k in range(NUM_PARTS):
        g.parts[k] = 0.0
        g.ep_parts[k] = 0.0
    g.ep_return = 0.0
    g.ep_length = 0
    kickoff(g, t)


cdef void score_step(Game* g, const Tables* t, int scorer, bint touched) noexcept nogil:
    """Step 7: this step's weighted reward parts (rules.SoccerGame._score_step)."""
    cdef const Car* car = &g.cars[g.agent]
    cdef const Ball* ball = &g.ball
    cdef double raw[NUM_PARTS]
    cdef double limit_x = t.half_length - t.ball_radius
    cdef double ux = (t.half_length if g.agent == 0 else -t.half_length) - clamp(ball.x, -limit_x, limit_x)
    cdef double uy = 0.0 - ball.y
    cdef double dx = ball.x - car.x
    cdef double dy = ball.y - car.y
    cdef int k
    raw[0] = 0.0 if scorer < 0 else (1.0 if scorer == g.agent else -1.0)
    raw[1] = 1.0 if touched else 0.0
    raw[2] = (ball.vx * ux + ball.vy * uy) / sqrt(ux * ux + uy * uy) / t.ball_max_speed
    raw[3] = -sqrt(dx * dx + dy * dy) / t.distance_scale
    for k in range(NUM_PARTS):
        g.parts[k] = t.weights[k] * raw[k]
        g.ep_parts[k] = g.ep_parts[k] + g.parts[k]


cdef void step_game(Game* g, const Tables* t, double throttle, double steer, const double* scripted) noexcept nogil:
    """One step of the rules page (steps 2-9); `scripted` is the scripted car's action from step 1."""
    cdef int agent = g.agent
    cdef int k, scorer = -1
    cdef bint touched[2]
    cdef double limit_x
    cdef Ball* ball = &g.ball
    for k in range(2):
        if k == agent:
            drive(&g.cars[k], t, clamp(throttle, -1.0, 1.0), clamp(steer, -1.0, 1.0))
        else:
            drive(&g.cars[k], t, scripted[0], scripted[1])
    ball.x = ball.x + ball.vx * t.dt
    ball.y = ball.y + ball.vy * t.dt
    ball.vx = ball.vx * t.ball_friction
    ball.vy = ball.vy * t.ball_friction
    touched[0] = touch(&g.cars[0], ball, t)
    touched[1] = touch(&g.cars[1], ball, t)
    cap_ball_speed(ball, t)
    bounce(&ball.y, &ball.vy, t.half_width - t.ball_radius, t.wall_restitution)
    limit_x = t.half_length - t.ball_radius
    if (ball.x > limit_x or ball.x < -limit_x) and fabs(ball.y) < t.goal_half_width:
        scorer = 0 if ball.x > 0.0 else 1
    else:
        bounce(&ball.x, &ball.vx, limit_x, t.wall_restitution)
    score_step(g, t, scorer, touched[agent])
    g.steps += 1
    if scorer >= 0:
        g.goals[scorer] += 1
        kickoff(g, t)
    g.over = g.steps >= t.max_steps


cdef double total_reward(const Game* g) noexcept nogil:
    cdef double total = 0.0
    cdef int k
    for k in range(NUM_PARTS):
        total = total + g.parts[k]
    return total


cdef void write_car(const Car* car, const Tables* t, double m, float* out) noexcept nogil:
    out[0] = <float>(m * car.x / t.half_length)
    out[1] = <float>(m * car.y / t.half_width)
    out[2] = <float>(m * car.cos_h)
    out[3] = <float>(m * car.sin_h)
    out[4] = <float>(car.speed / t.car_max_speed)


cdef void write_obs(const Game* g, const Tables* t, float* out) noexcept nogil:
    """The agent's observation (rules.SoccerGame.observation), rounded to float32."""
    cdef double m = 1.0 if g.agent == 0 else -1.0
    cdef const Car* car = &g.cars[g.agent]
    cdef const Ball* ball = &g.ball
    write_car(car, t, m, out)
    write_car(&g.cars[1 - g.agent], t, m, out + 5)
    out[10] = <float>(m * ball.x / t.half_length)
    out[11] = <float>(m * ball.y / t.half_width)
    out[12] = <float>(m * ball.vx / t.ball_max_speed)
    out[13] = <float>(m * ball.vy / t.ball_max_speed)
    out[14] = <float>(m * (ball.x - car.x) / (2.0 * t.half_length))
    out[15] = <float>(m * (ball.y - car.y) / (2.0 * t.half_width))
    out[16] = <float>(<double>(t.max_steps - g.steps) / <double>t.max_steps)
    out[17] = <float>(clamp(<double>(g.goals[g.agent] - g.goals[1 - g.agent]), -t.goal_diff_cap, t.goal_diff_cap)
                      / t.goal_diff_cap)


cdef str outcome(int goals_for, int goals_against):
    return OUTCOMES[0 if goals_for == goals_against else (1 if goals_for > goals_against else 2)]


# --- construction -----------------------------------------------------------------------------------

cdef list table_row(dict tables, str key, int size):
    row = [float(v) for v in tables[key]]
    if len(row) != size:
        raise ValueError(f"tables[{key!r}] must have {size} numbers, got {len(row)}")
    return row


cdef void load_tables(dict tables, Tables* t) except *:
    t.dt, t.half_length, t.half_width, t.goal_half_width = table_row(tables, "world", 4)
    (t.car_radius, t.car_accel, t.car_drag, t.car_max_speed, t.car_max_reverse,
     t.car_turn_rate) = table_row(tables, "car", 6)
    (t.ball_radius, t.ball_friction, t.wall_restitution, t.car_restitution,
     t.ball_max_speed) = table_row(tables, "ball", 5)
    kickoff_x, positions, t.kickoff_step = table_row(tables, "kickoff", 3)
    t.kickoff_x = kickoff_x
    t.kickoff_positions = <int>positions
    t.steer_gain, t.aim_offset, t.goalie_depth, t.goalie_reach, t.goalie_slow = table_row(tables, "scripted", 5)
    t.distance_scale, t.goal_diff_cap = table_row(tables, "scales", 2)


cdef void load_weights(object weights, Tables* t) except *:
    for k, value in enumerate(checked_weights(weights, REWARD_PARTS)):
        t.weights[k] = value


cdef class SoccerCore:
    """N soccer games over the rules tables of `envs.soccer.rules.core_tables()`; see the module docstring
    for the buffers. Games start seeded 0..N-1; `reset(seeds)` reseeds them."""

    cdef Game* games
    cdef double* scripted           # [N][2] the scripted cars' actions of the running step
    cdef Tables tables
    cdef uint64_t enemy_ns
    cdef readonly int num_games, max_steps
    cdef readonly str opponent, side
    cdef readonly bint auto_reset
    cdef readonly object reward_parts, episode_return, episode_length, episode_outcome
    cdef float[:, ::1] obs_v, terminal_obs_v
    cdef float[::1] rewards_v
    cdef unsigned char[::1] terminated_v, truncated_v
    cdef double[:, ::1] reward_parts_v
    cdef double[::1] episode_return_v
    cdef int[::1] episode_length_v
    cdef signed char[::1] episode_outcome_v

    def __cinit__(self):
        self.games = NULL
        self.scripted = NULL

    def __init__(self, int num_games, tables, str opponent, options, bint auto_reset, buffers):
        """tables: envs.soccer.rules.core_tables(); opponent: one of OPPONENTS; options: {"side": one of
        SIDES, "max_steps": >= 1, "reward_weights": {part: finite number} over REWARD_PARTS}; buffers:
        envs.batched_vec_env.CoreBuffers of num_games rows with masks of 0 columns. ValueError naming what
        is wrong otherwise."""
        (self.obs_v, self.rewards_v, self.terminated_v, self.truncated_v, _,
         self.terminal_obs_v) = checked_buffers(buffers, num_games, OBS_SIZE, 0)
        self.tables.opponent = choice_index("opponent", opponent, OPPONENTS)
        options = checked_dict("options", options, OPTION_KEYS)
        self.tables.side = choice_index("side", options["side"], SIDES)
        if options["max_steps"] < 1:
            raise ValueError(f"max_steps must be >= 1, got {options['max_steps']}")
        self.tables.max_steps = options["max_steps"]
        load_weights(options["reward_weights"], &self.tables)
        load_tables(checked_dict("tables", tables, TABLE_KEYS), &self.tables)
        self.num_games = num_games
        self.max_steps = options["max_steps"]
        self.opponent = opponent
        self.side = options["side"]
        self.auto_reset = auto_reset
        self.reward_parts = np.zeros((num_games, NUM_PARTS), dtype=np.float64)
        self.episode_return = np.zeros(num_games, dtype=np.float64)
        self.episode_length = np.zeros(num_games, dtype=np.int32)
        self.episode_outcome = np.zeros(num_games, dtype=np.int8)
        self.episode_outcome_v = self.episode_outcome
        self.reward_parts_v = self.reward_parts
        self.episode_return_v = self.episode_return
        self.episode_length_v = self.episode_length
        self.games = <Game*>allocated(num_games, sizeof(Game))
        self.scripted = <double*>allocated(2 * num_games, sizeof(double))
        self.reset(np.arange(num_games, dtype=np.uint64))

    def __dealloc__(self):
        free(self.games)
        free(self.scripted)

    def reset(self, seeds=None):
        """A new episode everywhere; seeds uint64[N] reseeds each game's generator first, None continues
        each game's own stream."""
        cdef int i, k
        reseed_games(seeds, &self.games[0].rng, sizeof(Game), self.num_games)
        for i in range(self.num_games):
            new_episode(&self.games[i], &self.tables)
            self.terminated_v[i] = 0
            self.truncated_v[i] = 0
            self.rewards_v[i] = 0.0
            for k in range(NUM_PARTS):
                self.reward_parts_v[i, k] = 0.0
            write_obs(&self.games[i], &self.tables, &self.obs_v[i, 0])

    def step(self, const float[:, ::1] actions):
        """Play actions[i] = [throttle, steer] (float32[N, 2]) in every game still playing. Returns -1, or
        the index of the first game whose action has a NaN (and then no game has moved)."""
        cdef int i, k
        cdef Game* g
        cdef const Tables* t = &self.tables
        cdef uint64_t started
        if actions.shape[0] != self.num_games or actions.shape[1] != ACTION_SIZE:
            raise ValueError(f"expected actions of shape ({self.num_games}, {ACTION_SIZE}), "
                             f"got ({actions.shape[0]}, {actions.shape[1]})")
        for i in range(self.num_games):
            if isnan(actions[i, 0]) or isnan(actions[i, 1]):
                return i
        with nogil:
            started = now_ns()
            for i in range(self.num_games):
                if not self.games[i].over:
                    scripted_action(&self.games[i], t, 1 - self.games[i].agent, &self.scripted[2 * i])
            self.enemy_ns += now_ns() - started
            for i in range(self.num_games):
                g = &self.games[i]
                if g.over:  # only without auto_reset: a finished game waits for reset
                    continue
                step_game(g, t, actions[i, 0], actions[i, 1], &self.scripted[2 * i])
                for k in range(NUM_PARTS):
                    self.reward_parts_v[i, k] = g.parts[k]
                self.rewards_v[i] = <float>total_reward(g)
                g.ep_return += self.rewards_v[i]
                g.ep_length += 1
                self.terminated_v[i] = g.over
                self.truncated_v[i] = 0
                if g.over:
                    write_obs(g, t, &self.terminal_obs_v[i, 0])
                    self.episode_return_v[i] = g.ep_return
                    self.episode_length_v[i] = g.ep_length
                    g.end_goals_for = g.goals[g.agent]
                    g.end_goals_against = g.goals[1 - g.agent]
                    g.end_agent = g.agent
                    self.episode_outcome_v[i] = (g.end_goals_for > g.end_goals_against) - (
                        g.end_goals_for < g.end_goals_against)
                    for k in range(NUM_PARTS):
                        g.end_parts[k] = g.ep_parts[k]
                    if self.auto_reset:
                        new_episode(g, t)
                write_obs(g, t, &self.obs_v[i, 0])
        return -1

    def end_info(self, int index):
        """The info of the episode game `index` last finished (BatchedCore protocol): goals_for,
        goals_against, outcome, side (the agent's), reward_parts (episode sums)."""
        check_index(index, self.num_games)
        cdef Game* g = &self.games[index]
        return {
            "goals_for": g.end_goals_for,
            "goals_against": g.end_goals_against,
            "outcome": outcome(g.end_goals_for, g.end_goals_against),
            "side": SIDES[g.end_agent],
            "reward_parts": {part: g.end_parts[k] for k, part in enumerate(REWARD_PARTS)},
        }

    @property
    def enemy_turn_ns(self):
        """Nanoseconds spent computing the scripted cars' actions since construction."""
        return self.enemy_ns

    def states(self):
        """float64[N, 12]: every game's physics state (rules.SoccerGame.state) as it stands."""
        out = np.zeros((self.num_games, STATE_SIZE), dtype=np.float64)
        cdef double[:, ::1] v = out
        cdef int i, k
        cdef Game* g
        for i in range(self.num_games):
            g = &self.games[i]
            for k in range(2):
                v[i, 4 * k] = g.cars[k].x
                v[i, 4 * k + 1] = g.cars[k].y
                v[i, 4 * k + 2] = g.cars[k].heading
                v[i, 4 * k + 3] = g.cars[k].speed
            v[i, 8] = g.ball.x
            v[i, 9] = g.ball.y
            v[i, 10] = g.ball.vx
            v[i, 11] = g.ball.vy
        return out

    def rng_states(self):
        """uint64[N, 4]: every game's generator state (for the differential test)."""
        return rng_state_rows(&self.games[0].rng, sizeof(Game), self.num_games)
