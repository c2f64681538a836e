"""The Skirmish core: N games in C arrays, stepped in one call, the scripted player's whole turn inside C.

It follows envs/skirmish/rules.py (the reference and the rules' documentation; the rules page is
docs/games/skirmish.md) decision for decision and die for die; the differential test holds the two
together. Unlike the reference it caches pairwise distances, engagement and line of sight per game,
invalidated by every move, charge and casualty.

`SkirmishCore(num_games, tables, opponent, options, auto_reset, buffers)` follows the core protocol of
docs/adding-a-game.md: `tables` is `envs.skirmish.rules.core_tables()` (profiles, missions, deployment
and the scalar rules numbers, copied once into C), `opponent` one of `OPPONENTS` (the scripted player
only), `options` {"mode": "train" | "debug", "max_steps": decisions before truncation}. Buffers, N = games:
    given (`buffers`, an envs.batched_vec_env.CoreBuffers, written in place): obs float32[N, 103],
    rewards float32[N], terminated bool[N], truncated bool[N], masks bool[N, 14] (legal actions of the
    pending decision), terminal_obs float32[N, 103] (final observation of a game that ended this step);
    its own (read-only attributes): reward_parts float32[N, 3] (vp, damage, outcome), info int32[N, 9]
    (INFO_COLUMNS), units int32[N, 8, 3] (x, y, wounds; x = y = -1 when destroyed), decision int32[N, 2]
    (phase, acting unit; -1 once over), episode_return float64[N], episode_length int32[N] (of each
    game's last finished episode).
info, units and decision describe the state right after the step, before an automatic reset; obs and
masks are the next game's when a game ended (with auto_reset; without it a finished game keeps its final
observation and a hold-only mask until `reset`). `enemy_turn_ns` is the time spent in the player's turns,
read off the monotonic clock around each of them (at most one a round per game, so the reads are rare
next to the work they time). No Python object is touched per game on the step path, which runs without
the GIL.
"""

from libc.stdint cimport uint64_t, int64_t
from libc.stdlib cimport free
from libc.string cimport memset

import numpy as np

from ext.core_common cimport (
    allocated, check_index, checked_buffers, checked_dict, choice_index, now_ns, reseed_games, rng_state_rows)
from ext.rng cimport Rng, rng_below, rng_d6

# The rules' vocabulary (envs/skirmish/rules.py OPPONENTS, MODES, END_REASONS, PHASE_NAMES, WINNERS),
# indexed as in the core.
OPPONENTS = ("scripted",)
MODES = ("train", "debug")
OPTION_KEYS = ("mode", "max_steps")
TABLE_KEYS = ("mission_names", "profiles", "blocked", "objectives", "deployment", "scalars")
INFO_COLUMNS = ("model_health", "player_health", "in_attack", "model_vp", "player_vp", "mission",
                "end_reason", "winner", "turn")
END_REASONS = ("", "rounds", "model_destroyed", "player_destroyed", "truncated")
PHASE_NAMES = ("command", "movement", "shooting", "charge", "fight")
WINNER_NAMES = {1: "model", -1: "player", 0: "draw"}

cdef enum:
    # phases
    COMMAND = 0
    MOVEMENT = 1
    SHOOTING = 2
    CHARGE = 3
    FIGHT = 4
    # end reasons
    NOT_ENDED = 0
    ROUNDS_OVER = 1
    MODEL_DESTROYED = 2
    PLAYER_DESTROYED = 3
    TRUNCATED = 4
    # profile columns
    P_M = 0
    P_WS = 1
    P_BS = 2
    P_T = 3
    P_W = 4
    P_SV = 5
    P_OC = 6
    P_RANGE = 7
    P_SHOTS = 8
    P_S = 9
    P_AP = 10
    P_D = 11
    P_A = 12
    P_MS = 13
    P_MAP = 14
    P_MD = 15
    FAR = 1 << 30

cdef int COMPASS_X[8]
cdef int COMPASS_Y[8]
COMPASS_X[:] = [0, 1, 1, 1, 0, -1, -1, -1]
COMPASS_Y[:] = [-1, -1, 0, 1, 1, 1, 0, -1]


# --- small pure helpers ---------------------------------------------------------------------------

cdef inline int iabs(int v) noexcept nogil:
    return -v if v < 0 else v


cdef inline int imax(int a, int b) noexcept nogil:
    return a if a > b else b


cdef inline int imin(int a, int b) noexcept nogil:
    return a if a < b else b


cdef inline int chebyshev(int ax, int ay, int bx, int by) noexcept nogil:
    return imax(iabs(ax - bx), iabs(ay - by))


cdef inline int wound_need(int strength, int toughness) noexcept nogil:
    if strength >= 2 * toughness:
        return 2
    if strength > toughness:
        return 3
    if strength == toughness:
        return 4
    if 2 * strength <= toughness:
        return 6
    return 5


cdef inline int hit_faces(int skill) noexcept nogil:
    return 7 - imax(skill, 2)


cdef inline int unsaved_faces(int save, int ap) noexcept nogil:
    return 6 - imax(0, 7 - imax(save + ap, 2))


cdef inline int charge_ways(int distance) noexcept nogil:
    cdef int need = 2 * (distance - 1), a, b, ways = 0
    for a in range(1, 7):
        for b in range(1, 7):
            if a + b >= need:
                ways += 1
    return ways


cdef bint bresenham_clear(const signed char* blocked, int ax, int ay, int bx, int by) noexcept nogil:
    cdef int tmp, dx, dy, sx, sy, err, e2, x, y
    if by * BOARD_W + bx < ay * BOARD_W + ax:
        tmp = ax; ax = bx; bx = tmp
        tmp = ay; ay = by; by = tmp
    dx = iabs(bx - ax)
    dy = -iabs(by - ay)
    sx = 1 if ax < bx else -1
    sy = 1 if ay < by else -1
    err = dx + dy
    x = ax
    y = ay
    while True:
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x += sx
        if e2 <= dx:
            err += dx
            y += sy
        if x == bx and y == by:
            return True
        if blocked[y * BOARD_W + x]:
            return False


# --- caches ---------------------------------------------------------------------------------------

cdef inline void invalidate(Game* g) noexcept nogil:
    g.dist_valid = 0
    memset(g.los, -1, sizeof(g.los))


cdef void refresh_distances(Game* g) noexcept nogil:
    cdef int i, j, d
    for i in range(NUM_UNITS):
        g.engaged[i] = 0
    for i in range(NUM_UNITS):
        g.dist[i][i] = 0
        for j in range(i + 1, NUM_UNITS):
            d = chebyshev(g.x[i], g.y[i], g.x[j], g.y[j])
            g.dist[i][j] = d
            g.dist[j][i] = d
            if d == 1 and g.wounds[i] > 0 and g.wounds[j] > 0 and (i < PER_SIDE) != (j < PER_SIDE):
                g.engaged[i] = 1
                g.engaged[j] = 1
    g.dist_valid = 1


cdef inline int dist(Game* g, int i, int j) noexcept nogil:
    if not g.dist_valid:
        refresh_distances(g)
    return g.dist[i][j]


cdef inline bint engaged(Game* g, int u) noexcept nogil:
    if not g.dist_valid:
        refresh_distances(g)
    return g.engaged[u]


cdef inline bint los(Game* g, const Tables* t, int i, int j) noexcept nogil:
    if g.los[i][j] < 0:
        g.los[i][j] = bresenham_clear(t.blocked[g.mission], g.x[i], g.y[i], g.x[j], g.y[j])
        g.los[j][i] = g.los[i][j]
    return g.los[i][j]


# --- queries --------------------------------------------------------------------------------------

cdef inline bint alive(Game* g, int u) noexcept nogil:
    return g.wounds[u] > 0


cdef inline int first_enemy(int u) noexcept nogil:
    return PER_SIDE if u < PER_SIDE else 0


cdef inline bint free_cell(Game* g, const Tables* t, int x, int y) noexcept nogil:
    if x < 0 or x >= BOARD_W or y < 0 or y >= BOARD_H:
        return False
    return not t.blocked[g.mission][y * BOARD_W + x] and g.occupant[y * BOARD_W + x] == 0


cdef int controller(Game* g, const Tables* t, int k) noexcept nogil:
    cdef int u, oc0 = 0, oc1 = 0, ox = t.obj_x[g.mission][k], oy = t.obj_y[g.mission][k]
    for u in range(NUM_UNITS):
        if alive(g, u) and chebyshev(g.x[u], g.y[u], ox, oy) <= t.control_range:
            if u < PER_SIDE:
                oc0 += t.profile[u][P_OC]
            else:
                oc1 += t.profile[u - PER_SIDE][P_OC]
    return (oc0 > oc1) - (oc0 < oc1)


cdef int nearest_objective_not_held(Game* g, const Tables* t, int u, int side_sign) noexcept nogil:
    cdef int k, d, best = -1, best_d = FAR
    for k in range(t.n_objectives[g.mission]):
        if controller(g, t, k) != side_sign:
            d = chebyshev(g.x[u], g.y[u], t.obj_x[g.mission][k], t.obj_y[g.mission][k])
            if d < best_d:
                best = k
                best_d = d
    return best


cdef int first_step_toward(Game* g, const Tables* t, int u, int tx, int ty) noexcept nogil:
    cdef int x = g.x[u], y = g.y[u], d, nx, ny, c, e
    cdef int best_c = chebyshev(x, y, tx, ty), best_e = (x - tx) * (x - tx) + (y - ty) * (y - ty), best = -1
    for d in range(8):
        nx = x + COMPASS_X[d]
        ny = y + COMPASS_Y[d]
        if free_cell(g, t, nx, ny):
            c = chebyshev(nx, ny, tx, ty)
            e = (nx - tx) * (nx - tx) + (ny - ty) * (ny - ty)
            if c < best_c or (c == best_c and e < best_e):
                best_c = c
                best_e = e
                best = d
    return best


cdef int charge_cell(Game* g, const Tables* t, int u, int target) noexcept nogil:
    cdef int d, cx, cy, c, e, best = -1, best_c = FAR, best_e = FAR
    for d in range(8):
        cx = g.x[target] + COMPASS_X[d]
        cy = g.y[target] + COMPASS_Y[d]
        if free_cell(g, t, cx, cy):
            c = chebyshev(cx, cy, g.x[u], g.y[u])
            e = (cx - g.x[u]) * (cx - g.x[u]) + (cy - g.y[u]) * (cy - g.y[u])
            if c < best_c or (c == best_c and e < best_e):
                best_c = c
                best_e = e
                best = cy * BOARD_W + cx
    return best


cdef inline bint can_shoot(Game* g, const Tables* t, int u, int e) noexcept nogil:
    return (alive(g, e) and dist(g, u, e) <= t.profile[u % PER_SIDE][P_RANGE] and los(g, t, u, e))


cdef inline bint can_charge(Game* g, const Tables* t, int u, int e) noexcept nogil:
    return alive(g, e) and dist(g, u, e) <= t.charge_range and charge_cell(g, t, u, e) >= 0


cdef void legal(Game* g, const Tables* t, int phase, int u, unsigned char* mask) noexcept nogil:
    cdef int a, d, k
    for a in range(NUM_ACTIONS):
        mask[a] = 0
    mask[0] = 1
    if phase == MOVEMENT:
        for d in range(8):
            mask[1 + d] = free_cell(g, t, g.x[u] + COMPASS_X[d], g.y[u] + COMPASS_Y[d])
        k = nearest_objective_not_held(g, t, u, 1)
        if k >= 0:
            mask[9] = first_step_toward(g, t, u, t.obj_x[g.mission][k], t.obj_y[g.mission][k]) >= 0
    elif phase == SHOOTING:
        for a in range(PER_SIDE):
            mask[10 + a] = can_shoot(g, t, u, PER_SIDE + a)
    else:
        for a in range(PER_SIDE):
            mask[10 + a] = can_charge(g, t, u, PER_SIDE + a)


cdef bint has_choice(Game* g, const Tables* t, int phase, int u) noexcept nogil:
    cdef unsigned char mask[NUM_ACTIONS]
    cdef int a
    if not alive(g, u) or engaged(g, u):
        return False
    legal(g, t, phase, u, mask)
    for a in range(1, NUM_ACTIONS):
        if mask[a]:
            return True
    return False


# --- state changes --------------------------------------------------------------------------------

cdef inline void place(Game* g, int u, int x, int y) noexcept nogil:
    g.occupant[g.y[u] * BOARD_W + g.x[u]] = 0
    g.x[u] = x
    g.y[u] = y
    g.occupant[y * BOARD_W + x] = <signed char>(u + 1)
    invalidate(g)


cdef void move_straight(Game* g, const Tables* t, int u, int d) noexcept nogil:
    cdef int s
    for s in range(t.profile[u % PER_SIDE][P_M]):
        if not free_cell(g, t, g.x[u] + COMPASS_X[d], g.y[u] + COMPASS_Y[d]):
            return
        place(g, u, g.x[u] + COMPASS_X[d], g.y[u] + COMPASS_Y[d])


cdef void move_toward(Game* g, const Tables* t, int u, int tx, int ty) noexcept nogil:
    cdef int s, d
    for s in range(t.profile[u % PER_SIDE][P_M]):
        d = first_step_toward(g, t, u, tx, ty)
        if d < 0:
            return
        place(g, u, g.x[u] + COMPASS_X[d], g.y[u] + COMPASS_Y[d])


cdef void end_game(Game* g, int reason) noexcept nogil:
    g.end_reason = reason
    if reason == MODEL_DESTROYED:
        g.winner = -1
    elif reason == PLAYER_DESTROYED:
        g.winner = 1
    else:
        g.winner = (g.vp[0] > g.vp[1]) - (g.vp[0] < g.vp[1])
    g.outcome = g.winner


cdef void casualty(Game* g, int target) noexcept nogil:
    cdef int v, first = 0 if target < PER_SIDE else PER_SIDE
    g.occupant[g.y[target] * BOARD_W + g.x[target]] = 0
    invalidate(g)
    for v in range(first, first + PER_SIDE):
        if alive(g, v):
            return
    end_game(g, MODEL_DESTROYED if target < PER_SIDE else PLAYER_DESTROYED)


cdef void attacks(Game* g, const Tables* t, int target, int count, int skill, int strength, int ap,
                  int damage) noexcept nogil:
    cdef int n, roll, lost
    cdef const int* tp = t.profile[target % PER_SIDE]
    cdef int need = wound_need(strength, tp[P_T])
    for n in range(count):
        if g.wounds[target] == 0:
            return
        roll = rng_d6(&g.rng)
        if roll == 1 or roll < skill:
            continue
        roll = rng_d6(&g.rng)
        if roll == 1 or roll < need:
            continue
        roll = rng_d6(&g.rng)
        if roll != 1 and roll - ap >= tp[P_SV]:
            continue
        lost = imin(damage, g.wounds[target])
        g.wounds[target] -= lost
        if target >= PER_SIDE:
            g.dealt += lost
        else:
            g.taken += lost
        if g.wounds[target] == 0:
            casualty(g, target)


cdef inline void shoot(Game* g, const Tables* t, int u, int target) noexcept nogil:
    cdef const int* p = t.profile[u % PER_SIDE]
    attacks(g, t, target, p[P_SHOTS], p[P_BS], p[P_S], p[P_AP], p[P_D])


cdef void charge(Game* g, const Tables* t, int u, int target) noexcept nogil:
    cdef int cell = charge_cell(g, t, u, target)
    cdef int roll = rng_d6(&g.rng)
    roll += rng_d6(&g.rng)
    if roll >= 2 * (dist(g, u, target) - 1):
        place(g, u, cell % BOARD_W, cell // BOARD_W)


cdef void command(Game* g, const Tables* t, int side) noexcept nogil:
    cdef int k, held = 0, sign = 1 if side == 0 else -1
    if g.round < 2:
        return
    for k in range(t.n_objectives[g.mission]):
        if controller(g, t, k) == sign:
            held += 1
    g.vp[side] += held * t.vp_per_objective
    g.vp_gained[side] += held * t.vp_per_objective


cdef void fight(Game* g, const Tables* t, int side) noexcept nogil:
    cdef int group, first, u, e, target, fewest
    cdef const int* p
    for group in range(2):
        first = PER_SIDE if (side == 1) != (group == 1) else 0
        for u in range(first, first + PER_SIDE):
            if not alive(g, u):
                continue
            target = -1
            fewest = FAR
            for e in range(first_enemy(u), first_enemy(u) + PER_SIDE):
                if alive(g, e) and dist(g, u, e) == 1 and g.wounds[e] < fewest:
                    target = e
                    fewest = g.wounds[e]
            if target < 0:
                continue
            p = t.profile[u % PER_SIDE]
            attacks(g, t, target, p[P_A], p[P_WS], p[P_MS], p[P_MAP], p[P_MD])
            if g.end_reason != NOT_ENDED:
                return


# --- the scripted player --------------------------------------------------------------------------

cdef inline int expected_shooting(Game* g, const Tables* t, int u, int e) noexcept nogil:
    cdef const int* p = t.profile[u % PER_SIDE]
    cdef const int* tp = t.profile[e % PER_SIDE]
    return (p[P_SHOTS] * hit_faces(p[P_BS]) * (7 - wound_need(p[P_S], tp[P_T])) * unsaved_faces(tp[P_SV], p[P_AP])
            * imin(p[P_D], g.wounds[e]))


cdef inline int expected_melee(Game* g, const Tables* t, int u, int e) noexcept nogil:
    cdef const int* p = t.profile[u % PER_SIDE]
    cdef const int* tp = t.profile[e % PER_SIDE]
    return (p[P_A] * hit_faces(p[P_WS]) * (7 - wound_need(p[P_MS], tp[P_T])) * unsaved_faces(tp[P_SV], p[P_MAP])
            * imin(p[P_MD], g.wounds[e]))


cdef int best_shot(Game* g, const Tables* t, int u, int* best_score) noexcept nogil:
    cdef int e, score, best = -1
    best_score[0] = 0
    for e in range(PER_SIDE):
        if can_shoot(g, t, u, e):
            score = expected_shooting(g, t, u, e)
            if score > best_score[0]:
                best = e
                best_score[0] = score
    return best


cdef void player_turn(Game* g, const Tables* t) noexcept nogil:
    cdef int u, e, k, tx, ty, nearest, nearest_d, target, score, best, best_score, shot_score
    command(g, t, 1)
    for u in range(PER_SIDE, NUM_UNITS):
        if not alive(g, u) or engaged(g, u):
            continue
        k = nearest_objective_not_held(g, t, u, -1)
        if k >= 0:
            tx = t.obj_x[g.mission][k]
            ty = t.obj_y[g.mission][k]
        else:
            nearest = -1
            nearest_d = FAR
            for e in range(PER_SIDE):
                if alive(g, e) and dist(g, u, e) < nearest_d:
                    nearest = e
                    nearest_d = dist(g, u, e)
            tx = g.x[nearest]
            ty = g.y[nearest]
        move_toward(g, t, u, tx, ty)
    for u in range(PER_SIDE, NUM_UNITS):
        if alive(g, u) and not engaged(g, u):
            target = best_shot(g, t, u, &score)
            if target >= 0:
                shoot(g, t, u, target)
                if g.end_reason != NOT_ENDED:
                    return
    for u in range(PER_SIDE, NUM_UNITS):
        if not alive(g, u) or engaged(g, u):
            continue
        best = -1
        best_score = 0
        for e in range(PER_SIDE):
            if can_charge(g, t, u, e):
                score = expected_melee(g, t, u, e) * charge_ways(dist(g, u, e))
                if score > best_score:
                    best = e
                    best_score = score
        if best >= 0:
            best_shot(g, t, u, &shot_score)
            if best_score > 36 * shot_score:
                charge(g, t, u, best)
    fight(g, t, 1)


# --- game flow ------------------------------------------------------------------------------------

cdef void walk_to_decision(Game* g, const Tables* t, int phase, int unit) noexcept nogil:
    cdef int u
    cdef uint64_t started
    while True:
        for u in range(unit, PER_SIDE):
            if has_choice(g, t, phase, u):
                g.phase = phase
                g.unit = u
                return
        if phase < CHARGE:
            phase += 1
            unit = 0
            continue
        fight(g, t, 0)
        if g.end_reason != NOT_ENDED:
            return
        started = now_ns()
        player_turn(g, t)
        g.enemy_turn_ns += now_ns() - started
        if g.end_reason != NOT_ENDED:
            return
        if g.round == t.rounds:
            end_game(g, ROUNDS_OVER)
            return
        g.round += 1
        command(g, t, 0)
        phase = MOVEMENT
        unit = 0


cdef inline void clear_tallies(Game* g) noexcept nogil:
    g.vp_gained[0] = 0
    g.vp_gained[1] = 0
    g.dealt = 0
    g.taken = 0
    g.outcome = 0


cdef void reset_game(Game* g, const Tables* t) noexcept nogil:
    cdef int u
    g.mission = <int>rng_below(&g.rng, <unsigned int>t.n_missions)
    memset(g.occupant, 0, sizeof(g.occupant))
    for u in range(NUM_UNITS):
        g.x[u] = t.deploy_x[u]
        g.y[u] = t.deploy_y[u]
        g.wounds[u] = t.profile[u % PER_SIDE][P_W]
        g.occupant[g.y[u] * BOARD_W + g.x[u]] = <signed char>(u + 1)
    invalidate(g)
    g.vp[0] = 0
    g.vp[1] = 0
    g.round = 1
    g.phase = COMMAND
    g.unit = 0
    g.steps = 0
    g.end_reason = NOT_ENDED
    g.winner = 0
    clear_tallies(g)
    command(g, t, 0)
    walk_to_decision(g, t, MOVEMENT, 0)


cdef void apply_action(Game* g, const Tables* t, int action) noexcept nogil:
    cdef int u = g.unit, k
    if action == 0:
        return
    if g.phase == MOVEMENT:
        if action == 9:
            k = nearest_objective_not_held(g, t, u, 1)
            move_toward(g, t, u, t.obj_x[g.mission][k], t.obj_y[g.mission][k])
        else:
            move_straight(g, t, u, action - 1)
    elif g.phase == SHOOTING:
        shoot(g, t, u, PER_SIDE + action - 10)
    else:
        charge(g, t, u, PER_SIDE + action - 10)


cdef void step_game(Game* g, const Tables* t, int action) noexcept nogil:
    clear_tallies(g)
    g.ep_length += 1
    apply_action(g, t, action)
    if g.end_reason == NOT_ENDED:
        walk_to_decision(g, t, g.phase, g.unit + 1)
    g.steps += 1
    if g.end_reason == NOT_ENDED and g.steps >= t.max_steps:
        g.end_reason = TRUNCATED


# --- writing the buffers --------------------------------------------------------------------------

cdef void write_obs(Game* g, const Tables* t, float* obs) noexcept nogil:
    cdef int u, k, i, kind, over = g.end_reason != NOT_ENDED, o = 0
    for i in range(OBS_SIZE):
        obs[i] = 0.0
    for u in range(NUM_UNITS):
        kind = u % PER_SIDE
        if alive(g, u):
            obs[o] = <float>(g.x[u] / <double>BOARD_W)
            obs[o + 1] = <float>(g.y[u] / <double>BOARD_H)
            obs[o + 2] = <float>(g.wounds[u] / <double>t.profile[kind][P_W])
            obs[o + 3] = 1.0
            obs[o + 4] = 1.0 if engaged(g, u) else 0.0
        obs[o + 5 + kind] = 1.0
        o += 9
    for k in range(MAX_OBJECTIVES):
        if k < t.n_objectives[g.mission]:
            obs[o] = <float>(t.obj_x[g.mission][k] / <double>BOARD_W)
            obs[o + 1] = <float>(t.obj_y[g.mission][k] / <double>BOARD_H)
            obs[o + 2] = 1.0
            obs[o + 3] = <float>controller(g, t, k)
        o += 4
    obs[o] = <float>(g.round / <double>t.rounds)
    o += 1
    if not over:
        obs[o + g.phase] = 1.0
        obs[o + 5 + g.unit] = 1.0
    o += 5 + PER_SIDE
    obs[o] = <float>((g.vp[0] - g.vp[1]) / 50.0)


cdef tuple load_tables(object tables, Tables* t):
    """Copy `envs.skirmish.rules.core_tables()` into `t` (all but max_steps, an option); returns the mission
    names. ValueError if the tables do not fit the C layout."""
    cdef int i, m, k, f
    checked_dict("tables", tables, TABLE_KEYS)
    profiles = tables["profiles"]
    blocked = tables["blocked"]
    objectives = tables["objectives"]
    deployment = tables["deployment"]
    mission_names = tuple(tables["mission_names"])
    t.n_missions = len(mission_names)
    if (not 1 <= t.n_missions <= MAX_MISSIONS or len(blocked) != t.n_missions * CELLS
            or len(objectives) != t.n_missions * MAX_OBJECTIVES * 2):
        raise ValueError(f"tables: expected 1-{MAX_MISSIONS} missions, each {CELLS} cells and "
                         f"{MAX_OBJECTIVES} objective slots")
    for i in range(PER_SIDE):
        for f in range(PROFILE_FIELDS):
            t.profile[i][f] = profiles[i * PROFILE_FIELDS + f]
    for m in range(t.n_missions):
        t.n_objectives[m] = 0
        for i in range(CELLS):
            t.blocked[m][i] = blocked[m * CELLS + i]
        for k in range(MAX_OBJECTIVES):
            t.obj_x[m][k] = objectives[(m * MAX_OBJECTIVES + k) * 2]
            t.obj_y[m][k] = objectives[(m * MAX_OBJECTIVES + k) * 2 + 1]
            if t.obj_x[m][k] >= 0:
                t.n_objectives[m] = k + 1
    for i in range(NUM_UNITS):
        t.deploy_x[i] = deployment[2 * i]
        t.deploy_y[i] = deployment[2 * i + 1]
    t.rounds, t.vp_per_objective, t.control_range, t.charge_range = tables["scalars"]
    return mission_names


cdef class SkirmishCore:
    """N Skirmish games over the rules tables of `envs.skirmish.rules.core_tables()`; see the module
    docstring for the buffers. Games start seeded 0..N-1; `reset(seeds)` reseeds them."""

    cdef Game* games
    cdef Tables tables
    cdef readonly int num_games
    cdef readonly str opponent, mode
    cdef readonly bint auto_reset
    cdef bint debug
    cdef readonly object reward_parts, info, units, decision, episode_return, episode_length
    cdef object mission_names
    cdef float[:, ::1] obs_v, terminal_obs_v, reward_parts_v
    cdef float[::1] rewards_v
    cdef unsigned char[::1] terminated_v, truncated_v
    cdef unsigned char[:, ::1] masks_v
    cdef int[:, ::1] info_v, decision_v
    cdef int[:, :, ::1] units_v
    cdef double[::1] episode_return_v
    cdef int[::1] episode_length_v

    def __cinit__(self):
        self.games = NULL

    def __init__(self, int num_games, tables, str opponent, options, bint auto_reset, buffers):
        """tables: envs.skirmish.rules.core_tables(); opponent: one of OPPONENTS; options: {"mode": one of
        MODES ("debug": `end_info`/`info_dict` add positions, wounds, phase, acting unit and reward parts),
        "max_steps": decisions per game before truncation, >= 1}; buffers: envs.batched_vec_env.CoreBuffers
        of num_games rows. ValueError naming what is wrong otherwise."""
        (self.obs_v, self.rewards_v, self.terminated_v, self.truncated_v, self.masks_v,
         self.terminal_obs_v) = checked_buffers(buffers, num_games, OBS_SIZE, NUM_ACTIONS)
        choice_index("opponent", opponent, OPPONENTS)
        options = checked_dict("options", options, OPTION_KEYS)
        self.debug = choice_index("mode", options["mode"], MODES) == MODES.index("debug")
        if options["max_steps"] < 1:
            raise ValueError(f"max_steps must be >= 1, got {options['max_steps']}")
        self.mission_names = load_tables(tables, &self.tables)
        self.tables.max_steps = options["max_steps"]
        self.num_games = num_games
        self.opponent = opponent
        self.mode = options["mode"]
        self.auto_reset = auto_reset
        self.reward_parts = np.zeros((num_games, 3), dtype=np.float32)
        self.info = np.zeros((num_games, INFO_FIELDS), dtype=np.int32)
        self.units = np.zeros((num_games, NUM_UNITS, 3), dtype=np.int32)
        self.decision = np.zeros((num_games, 2), dtype=np.int32)
        self.episode_return = np.zeros(num_games, dtype=np.float64)
        self.episode_length = np.zeros(num_games, dtype=np.int32)
        self.reward_parts_v = self.reward_parts
        self.info_v = self.info
        self.units_v = self.units
        self.decision_v = self.decision
        self.episode_return_v = self.episode_return
        self.episode_length_v = self.episode_length
        self.games = <Game*>allocated(num_games, sizeof(Game))
        self.reset(np.arange(num_games, dtype=np.uint64))

    def __dealloc__(self):
        free(self.games)

    def reset(self, seeds=None):
        """A new game everywhere; seeds uint64[N] reseeds each game's generator first, None continues
        each game's own stream."""
        cdef int i
        reseed_games(seeds, &self.games[0].rng, sizeof(Game), self.num_games)
        for i in range(self.num_games):
            reset_game(&self.games[i], &self.tables)
            self.games[i].ep_return = 0.0
            self.games[i].ep_length = 0
            self.terminated_v[i] = 0
            self.truncated_v[i] = 0
            self.rewards_v[i] = 0.0
            self.reward_parts_v[i, 0] = 0.0
            self.reward_parts_v[i, 1] = 0.0
            self.reward_parts_v[i, 2] = 0.0
            self._write_state(i)
            self._write_next(i)

    cdef void _write_state(self, int i) noexcept nogil:
        """info, units and decision of game i as it stands."""
        cdef Game* g = &self.games[i]
        cdef int u, model_health = 0, player_health = 0, in_attack = 0
        for u in range(NUM_UNITS):
            if u < PER_SIDE:
                model_health += g.wounds[u]
                if alive(g, u) and engaged(g, u):
                    in_attack = 1
            else:
                player_health += g.wounds[u]
            self.units_v[i, u, 0] = g.x[u] if alive(g, u) else -1
            self.units_v[i, u, 1] = g.y[u] if alive(g, u) else -1
            self.units_v[i, u, 2] = g.wounds[u]
        self.info_v[i, 0] = model_health
        self.info_v[i, 1] = player_health
        self.info_v[i, 2] = in_attack
        self.info_v[i, 3] = g.vp[0]
        self.info_v[i, 4] = g.vp[1]
        self.info_v[i, 5] = g.mission
        self.info_v[i, 6] = g.end_reason
        self.info_v[i, 7] = g.winner
        self.info_v[i, 8] = g.round
        self.decision_v[i, 0] = -1 if g.end_reason != NOT_ENDED else g.phase
        self.decision_v[i, 1] = -1 if g.end_reason != NOT_ENDED else g.unit

    cdef void _write_next(self, int i) noexcept nogil:
        """obs and masks of game i's pending decision (hold only once over)."""
        cdef Game* g = &self.games[i]
        cdef int a
        write_obs(g, &self.tables, &self.obs_v[i, 0])
        if g.end_reason == NOT_ENDED:
            legal(g, &self.tables, g.phase, g.unit, &self.masks_v[i, 0])
        else:
            for a in range(NUM_ACTIONS):
                self.masks_v[i, a] = a == 0

    def legal_actions(self, int index):
        """Ascending legal action ids of game `index` now."""
        check_index(index, self.num_games)
        return [a for a in range(NUM_ACTIONS) if self.masks_v[index, a]]

    def step(self, const int64_t[::1] actions):
        """Play actions[i] (int64[N]) in every game still playing. Returns -1, or the index of the first
        game whose action is illegal (and then no game has moved)."""
        cdef int i
        cdef int64_t a
        cdef Game* g
        cdef double vp_part, damage_part, outcome_part
        if actions.shape[0] != self.num_games:
            raise ValueError(f"expected {self.num_games} actions, got {actions.shape[0]}")
        for i in range(self.num_games):
            a = actions[i]
            if a < 0 or a >= NUM_ACTIONS or not self.masks_v[i, a]:
                return i
        with nogil:
            for i in range(self.num_games):
                g = &self.games[i]
                if g.end_reason != NOT_ENDED:  # only without auto_reset: a finished game waits for reset
                    continue
                step_game(g, &self.tables, <int>actions[i])
                vp_part = (g.vp_gained[0] - g.vp_gained[1]) / 10.0
                damage_part = (g.dealt - g.taken) / 20.0
                outcome_part = g.outcome
                self.reward_parts_v[i, 0] = <float>vp_part
                self.reward_parts_v[i, 1] = <float>damage_part
                self.reward_parts_v[i, 2] = <float>outcome_part
                self.rewards_v[i] = <float>(vp_part + damage_part + outcome_part)
                g.ep_return += self.rewards_v[i]
                self.terminated_v[i] = g.end_reason != NOT_ENDED and g.end_reason != TRUNCATED
                self.truncated_v[i] = g.end_reason == TRUNCATED
                self._write_state(i)
                if g.end_reason != NOT_ENDED:
                    write_obs(g, &self.tables, &self.terminal_obs_v[i, 0])
                    self.episode_return_v[i] = g.ep_return
                    self.episode_length_v[i] = g.ep_length
                    if self.auto_reset:
                        reset_game(g, &self.tables)
                        g.ep_return = 0.0
                        g.ep_length = 0
                self._write_next(i)
        return -1

    def info_dict(self, int index):
        """The info of game `index`'s last step (the train keys; more in debug mode, see rules.py)."""
        check_index(index, self.num_games)
        cdef int[::1] row = self.info_v[index]
        info = {
            "model_health": row[0],
            "player_health": row[1],
            "in_attack": bool(row[2]),
            "model_vp": row[3],
            "player_vp": row[4],
            "mission": self.mission_names[row[5]],
            "end_reason": END_REASONS[row[6]],
            "winner": WINNER_NAMES[row[7]] if 0 < row[6] < TRUNCATED else "",
            "turn": row[8],
        }
        if self.debug:
            info["positions"] = [(int(x), int(y)) for x, y, _ in self.units[index]]
            info["wounds"] = self.units[index, :, 2].tolist()
            info["phase"] = PHASE_NAMES[self.decision_v[index, 0]] if self.decision_v[index, 0] >= 0 else ""
            info["acting_unit"] = self.decision_v[index, 1]
            vp, damage, outcome = self.reward_parts[index].tolist()
            info["reward_parts"] = {"vp": vp, "damage": damage, "outcome": outcome}
        return info

    def end_info(self, int index):
        """The info of the episode game `index` just finished (BatchedCore protocol)."""
        return self.info_dict(index)

    @property
    def enemy_turn_ns(self):
        """Nanoseconds spent in the scripted player's turns, summed over games since construction."""
        cdef uint64_t total = 0
        cdef int i
        for i in range(self.num_games):
            total += self.games[i].enemy_turn_ns
        return total

    def rng_states(self):
        """uint64[N, 4]: every game's generator state (for the differential test's dice check)."""
        return rng_state_rows(&self.games[0].rng, sizeof(Game), self.num_games)
