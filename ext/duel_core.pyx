"""Duel in C: N games stepped in one call (rules: docs/games/duel.md; the pure-Python oracle is
envs/duel/rules.py, which fixes every detail and the observation layout in words).

`DuelCore(num_games, tables, opponent, options, auto_reset, buffers)` follows the core protocol of
docs/adding-a-game.md: `tables` is `envs.duel.rules.core_tables()` (species, moves, type effects and the
rules' constants, copied once into C), `opponent` one of `OPPONENTS`, `options` {"shaping": one of `SHAPINGS`},
and `buffers` an `envs.batched_vec_env.CoreBuffers` of N games (row i = game i): obs float32[N, 62],
rewards float32[N], terminated bool[N], truncated bool[N] (always False: the turn limit is a rule),
masks bool[N, 7], terminal_obs float32[N, 62].

`step(actions)` has, in every game, the scripted side choose (drawing from the game's own `Rng`), then
resolves the turn of both choices and writes observation, reward, terminated and mask. With
`auto_reset` a game that ends writes its final observation to `terminal_obs` and deals the next game
from the same stream; without it a finished game keeps its final observation and an all-False mask
until `reset`. `choose(player, out)` writes a scripted player's choice for the agent's side of every
game (dataset generation plays both sides by script); its draws come first in the turn, as the rules
page orders them.

The scripted side's choices run as one pass over the games, timed as a whole into `enemy_turn_ns` (two
clock reads per step). The step loop is flat C under `nogil` and touches no Python object; it never
raises on a bad action: it reports the first bad game's index and steps nothing.
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free
from libc.string cimport memset

import numpy as np

from ext.core_common cimport (
    allocated, check_index, checked_buffers, checked_dict, choice_index, now_ns, reseed_games, rng_state_rows)
from ext.rng cimport Rng, rng_below

# The rules' vocabulary (envs/duel/rules.py OPPONENTS); the index is the core's id.
OPPONENTS = ("random", "greedy", "sensible")
SHAPINGS = ("hp", "none")
OPTION_KEYS = ("shaping",)
SPECIES_KEYS = ("species_type", "species_hp", "species_attack", "species_defence", "species_speed")
MOVE_KEYS = ("move_type", "move_power", "move_accuracy")
SCALAR_KEYS = ("max_turns", "pass_heal_divisor", "roll_min", "roll_range", "damage_divisor", "shaping_divisor",
               "hp_scale")
TABLE_KEYS = (*SPECIES_KEYS, "species_moves", *MOVE_KEYS, "effect", *SCALAR_KEYS)
TURN_DRAWS = NUM_DRAWS  # the width of `turn_draws` (len(envs.duel.rules.DRAWS))
cdef enum:
    PLAYER_RANDOM = 0
    PLAYER_GREEDY = 1
    PLAYER_SENSIBLE = 2
    SHAPING_HP = 0          # SHAPINGS.index("hp"); the other id is none


cdef list _ints(object tables, str key, int size):
    values = tables[key]
    if len(values) != size:
        raise ValueError(f"tables[{key!r}] must hold {size} ints")
    return [int(v) for v in values]


cdef list _rows(object tables, str key, int rows, int cols):
    values = tables[key]
    if len(values) != rows or any(len(row) != cols for row in values):
        raise ValueError(f"tables[{key!r}] must hold {rows} rows of {cols} ints")
    return [[int(v) for v in row] for row in values]


cdef int load_tables(object tables, Tables* t) except -1:
    """Copy `envs.duel.rules.core_tables()` into `t`; ValueError if a table is missing or mis-sized."""
    cdef int i, j
    checked_dict("tables", tables, TABLE_KEYS)
    species = [_ints(tables, key, NUM_SPECIES) for key in SPECIES_KEYS]
    moves = [_ints(tables, key, NUM_MOVES) for key in MOVE_KEYS]
    species_moves = _rows(tables, "species_moves", NUM_SPECIES, MOVES_PER_CREATURE)
    effect = _rows(tables, "effect", NUM_TYPES, NUM_TYPES)
    for i in range(NUM_SPECIES):
        t.species_type[i], t.species_hp[i], t.species_attack[i], t.species_defence[i], t.species_speed[i] = (
            species[0][i], species[1][i], species[2][i], species[3][i], species[4][i])
        for j in range(MOVES_PER_CREATURE):
            if not 0 <= species_moves[i][j] < NUM_MOVES:
                raise ValueError(f"tables['species_moves'][{i}] names a move outside 0..{NUM_MOVES - 1}")
            t.species_moves[i][j] = species_moves[i][j]
        if not 0 <= species[0][i] < NUM_TYPES or not 0 < species[1][i] <= tables["hp_scale"]:
            raise ValueError(f"species {i}: type outside 0..{NUM_TYPES - 1} or HP outside 1..hp_scale")
    for i in range(NUM_MOVES):
        t.move_type[i], t.move_power[i], t.move_accuracy[i] = moves[0][i], moves[1][i], moves[2][i]
    for i in range(NUM_TYPES):
        for j in range(NUM_TYPES):
            t.effect[i][j] = effect[i][j]
    t.max_turns = tables["max_turns"]
    t.pass_heal_divisor = tables["pass_heal_divisor"]
    t.roll_min = tables["roll_min"]
    t.roll_range = tables["roll_range"]
    t.damage_divisor = tables["damage_divisor"]
    t.shaping_divisor = tables["shaping_divisor"]
    t.hp_scale = tables["hp_scale"]
    return 0


# ---------------------------------------------------------------- rules

cdef inline int alive_count(const Side* s) noexcept nogil:
    cdef int slot, n = 0
    for slot in range(TEAM_SIZE):
        if s.hp[slot] > 0:
            n += 1
    return n


cdef uint8_t legal_bits(const Side* s) noexcept nogil:
    """Bit a set = action a is legal for side `s` (the rules page's action table)."""
    cdef uint8_t bits = 0
    cdef int slot
    if s.hp[s.active] > 0:
        bits = (1 << (PASS + 1)) - 1
    for slot in range(TEAM_SIZE):
        if s.hp[slot] > 0 and slot != s.active:
            bits |= 1 << (SWITCH + slot)
    return bits


cdef void deal_team(const Tables* t, Rng* rng, Side* s) noexcept nogil:
    cdef int ids[NUM_SPECIES]
    cdef int i, j, tmp
    for i in range(NUM_SPECIES):
        ids[i] = i
    for i in range(NUM_SPECIES - 1, 0, -1):
        j = <int>rng_below(rng, i + 1)
        tmp = ids[i]
        ids[i] = ids[j]
        ids[j] = tmp
    for i in range(TEAM_SIZE):
        s.species[i] = ids[i]
        s.hp[i] = t.species_hp[ids[i]]
    s.active = 0
    s.last_action = -1


cdef void deal(const Tables* t, Game* g) noexcept nogil:
    deal_team(t, &g.rng, &g.sides[0])
    deal_team(t, &g.rng, &g.sides[1])
    g.turn = 0
    g.over = 0
    g.winner = -1
    g.episode_return = 0.0


cdef inline int64_t move_value(const Tables* t, int attacker, int slot, int defender) noexcept nogil:
    """power * accuracy * effect * attack of `attacker`'s move `slot` against species `defender`."""
    cdef int move = t.species_moves[attacker][slot]
    return (<int64_t>t.move_power[move] * t.move_accuracy[move]
            * t.effect[t.move_type[move]][t.species_type[defender]] * t.species_attack[attacker])


cdef int64_t matchup(const Tables* t, int attacker, int defender) noexcept nogil:
    cdef int64_t best = 0, value
    cdef int slot
    for slot in range(MOVES_PER_CREATURE):
        value = move_value(t, attacker, slot, defender)
        if value > best:
            best = value
    return best


cdef int best_attack(const Tables* t, const Side* me, const Side* foe) noexcept nogil:
    cdef int slot, best = 0
    cdef int attacker = me.species[me.active]
    cdef int defender = foe.species[foe.active]
    cdef int64_t best_value = move_value(t, attacker, 0, defender), value
    for slot in range(1, MOVES_PER_CREATURE):
        value = move_value(t, attacker, slot, defender)
        if value > best_value:  # strictly: ties stay with the lower slot
            best_value = value
            best = slot
    return best


cdef inline int bit_count(uint8_t bits) noexcept nogil:
    cdef int n = 0
    while bits:
        bits &= bits - 1
        n += 1
    return n


cdef int choose(const Tables* t, Game* g, int side, int player) noexcept nogil:
    """The scripted `player`'s action for `side` (rules.PLAYERS); `random` draws once."""
    cdef Side* me = &g.sides[side]
    cdef Side* foe = &g.sides[1 - side]
    cdef uint8_t legal
    cdef int slot, nth, best_slot = -1
    cdef int64_t best_value = -1, value
    if player == PLAYER_RANDOM:
        legal = legal_bits(me)
        nth = <int>rng_below(&g.rng, bit_count(legal))
        for slot in range(NUM_ACTIONS):
            if (legal >> slot) & 1:
                if nth == 0:
                    return slot
                nth -= 1
        return -1  # unreachable: a side still playing has a legal action
    if player == PLAYER_GREEDY:
        if me.hp[me.active] > 0:
            return best_attack(t, me, foe)
        for slot in range(TEAM_SIZE):
            if me.hp[slot] > 0:
                return SWITCH + slot
        return -1
    for slot in range(TEAM_SIZE):  # sensible: the best benched matchup, ties to the lower slot
        if me.hp[slot] > 0 and slot != me.active:
            value = matchup(t, me.species[slot], foe.species[foe.active])
            if value > best_value:
                best_value = value
                best_slot = slot
    if me.hp[me.active] <= 0:
        return SWITCH + best_slot
    if best_slot >= 0 and best_value >= 2 * matchup(t, me.species[me.active], foe.species[foe.active]):
        return SWITCH + best_slot
    return best_attack(t, me, foe)


cdef void attack(const Tables* t, Game* g, int side, int slot, int* hp_lost) noexcept nogil:
    """Side `side`'s active creature uses move `slot` on the other side's active creature."""
    cdef Side* me = &g.sides[side]
    cdef Side* foe = &g.sides[1 - side]
    cdef int attacker = me.species[me.active]
    cdef int defender = foe.species[foe.active]
    cdef int move = t.species_moves[attacker][slot]
    cdef int roll, damage, accuracy
    if me.hp[me.active] <= 0:  # KO earlier this turn
        return
    accuracy = <int>rng_below(&g.rng, 100)
    g.draws[side] = <int8_t>accuracy
    if accuracy >= t.move_accuracy[move]:
        return
    roll = t.roll_min + <int>rng_below(&g.rng, t.roll_range)
    g.draws[DRAW_ROLL + side] = <int8_t>roll
    damage = <int>((<int64_t>t.move_power[move] * t.species_attack[attacker]
                    * t.effect[t.move_type[move]][t.species_type[defender]] * roll)
                   // (<int64_t>t.species_defence[defender] * t.damage_divisor))
    if damage < 1:
        damage = 1
    if damage > foe.hp[foe.active]:
        damage = foe.hp[foe.active]
    foe.hp[foe.active] -= damage
    hp_lost[1 - side] += damage


cdef float play_turn(const Tables* t, Game* g, int a0, int a1, int shaping) noexcept nogil:
    """Resolve one turn of legal actions (rules.DuelGame.play_turn); returns side 0's reward."""
    cdef int actions[2]
    cdef int hp_lost[2]
    cdef int side, first, speed0, speed1, max_hp, alive0, alive1
    cdef Side* s
    actions[0] = a0
    actions[1] = a1
    hp_lost[0] = 0
    hp_lost[1] = 0
    for side in range(NUM_DRAWS):
        g.draws[side] = NO_DRAW
    for side in range(2):
        if actions[side] >= SWITCH:
            g.sides[side].active = actions[side] - SWITCH
    if a0 < PASS and a1 < PASS:
        speed0 = t.species_speed[g.sides[0].species[g.sides[0].active]]
        speed1 = t.species_speed[g.sides[1].species[g.sides[1].active]]
        if speed0 == speed1:
            first = <int>rng_below(&g.rng, 2)
            g.draws[DRAW_FIRST] = <int8_t>first
        else:
            first = 0 if speed0 > speed1 else 1
        attack(t, g, first, actions[first], hp_lost)
        attack(t, g, 1 - first, actions[1 - first], hp_lost)
    elif a0 < PASS:
        attack(t, g, 0, a0, hp_lost)
    elif a1 < PASS:
        attack(t, g, 1, a1, hp_lost)
    for side in range(2):
        s = &g.sides[side]
        if actions[side] == PASS and s.hp[s.active] > 0:
            max_hp = t.species_hp[s.species[s.active]]
            s.hp[s.active] = min(max_hp, s.hp[s.active] + max_hp // t.pass_heal_divisor)
        s.last_action = actions[side]
    g.turn += 1
    alive0 = alive_count(&g.sides[0])
    alive1 = alive_count(&g.sides[1])
    if alive0 == 0 or alive1 == 0:
        g.over = 1
        g.winner = -1 if alive0 == alive1 else (0 if alive1 == 0 else 1)
    elif g.turn >= t.max_turns:
        g.over = 1
        g.winner = -1
    if g.over:
        return 1.0 if g.winner == 0 else (-1.0 if g.winner == 1 else 0.0)
    if shaping != SHAPING_HP:
        return 0.0
    return <float>((hp_lost[1] - hp_lost[0]) / <double>t.shaping_divisor)


cdef void write_observation(const Tables* t, const Game* g, float* row) noexcept nogil:
    cdef int side, slot, base
    cdef const Side* s
    memset(row, 0, OBS_SIZE * sizeof(float))
    for side in range(2):
        s = &g.sides[side]
        for slot in range(TEAM_SIZE):
            base = (side * TEAM_SIZE + slot) * SLOT_SIZE
            row[base] = <float>(s.hp[slot] / <double>t.hp_scale)
            row[base + 1] = 1.0 if s.hp[slot] > 0 else 0.0
            row[base + 2] = 1.0 if slot == s.active else 0.0
            row[base + 3 + s.species[slot]] = 1.0
    row[OBS_TURN] = <float>(g.turn / <double>t.max_turns)
    if g.sides[1].last_action >= 0:
        row[OBS_LAST_ACTION + g.sides[1].last_action] = 1.0


# ---------------------------------------------------------------- the batched core

cdef class DuelCore:
    """N games of Duel in C arrays, stepped together; see the module docstring for the arguments and
    buffers. Games start seeded 0..N-1; `reset(seeds)` reseeds them.

    Per-game stats of the last finished episode (read them for the games that ended in a step):
    `episode_return` float64[N], `episode_length` int32[N] (turns), `winner` int8[N] (0, 1, -1 = draw),
    `alive` int8[N, 2] (creatures not KO per side). `turn_draws` int8[N, 5]: each game's random draws in
    the last step's turn (envs.duel.rules.DRAWS: accuracy draw and roll a side, the speed tie; -1 where
    none was made), for datasets whose world model reads a turn's luck. `enemy_turn_ns`: nanoseconds spent in the scripted
    side's choices since construction, C monotonic clock.
    """

    cdef Game* games
    cdef Tables tables
    cdef readonly int num_games
    cdef readonly str opponent
    cdef readonly bint auto_reset
    cdef readonly object episode_return, episode_length, winner, alive, turn_draws
    cdef int opponent_id
    cdef int shaping_id
    cdef readonly str shaping
    cdef uint64_t enemy_ns
    cdef int32_t[::1] opponent_actions
    cdef float[:, ::1] obs
    cdef float[::1] rewards
    cdef uint8_t[::1] terminated
    cdef uint8_t[::1] truncated
    cdef uint8_t[:, ::1] masks
    cdef float[:, ::1] terminal_obs
    cdef double[::1] episode_return_view
    cdef int32_t[::1] episode_length_view
    cdef int8_t[::1] winner_view
    cdef int8_t[:, ::1] alive_view
    cdef int8_t[:, ::1] turn_draws_view

    def __cinit__(self):
        self.games = NULL

    def __init__(self, int num_games, tables, str opponent, options, bint auto_reset, buffers):
        """tables: envs.duel.rules.core_tables(); opponent: one of OPPONENTS; options: {"shaping": one of SHAPINGS};
        buffers: envs.batched_vec_env.CoreBuffers of num_games rows. ValueError naming what is wrong."""
        self.obs, self.rewards, self.terminated, self.truncated, self.masks, self.terminal_obs = checked_buffers(
            buffers, num_games, OBS_SIZE, NUM_ACTIONS)
        load_tables(tables, &self.tables)
        self.opponent_id = choice_index("opponent", opponent, OPPONENTS)
        options = checked_dict("options", options, OPTION_KEYS)
        self.shaping_id = choice_index("shaping", options["shaping"], SHAPINGS)
        self.shaping = options["shaping"]
        self.num_games = num_games
        self.opponent = opponent
        self.auto_reset = auto_reset
        self.episode_return = np.zeros(num_games, np.float64)
        self.episode_length = np.zeros(num_games, np.int32)
        self.winner = np.zeros(num_games, np.int8)
        self.alive = np.zeros((num_games, 2), np.int8)
        self.episode_return_view = self.episode_return
        self.episode_length_view = self.episode_length
        self.winner_view = self.winner
        self.alive_view = self.alive
        self.turn_draws = np.full((num_games, NUM_DRAWS), NO_DRAW, np.int8)
        self.turn_draws_view = self.turn_draws
        self.opponent_actions = np.zeros(num_games, np.int32)
        self.games = <Game*>allocated(num_games, sizeof(Game))
        self.reset(np.arange(num_games, dtype=np.uint64))

    def __dealloc__(self):
        free(self.games)

    def reset(self, seeds=None):
        """Deal a new game everywhere; `seeds` uint64[N] reseeds each game first, None continues its stream."""
        cdef int i
        reseed_games(seeds, &self.games[0].rng, sizeof(Game), self.num_games)
        with nogil:
            for i in range(self.num_games):
                deal(&self.tables, &self.games[i])
                self.rewards[i] = 0.0
                self.terminated[i] = 0
                self.truncated[i] = 0
                self._publish(i)

    def step(self, actions):
        """Play agent actions int64[N] in every game. Returns -1, or the index of the first game whose
        action is illegal (then no game has moved)."""
        cdef const int64_t[::1] action_view = np.ascontiguousarray(actions, dtype=np.int64)
        cdef int bad
        if action_view.shape[0] != self.num_games:
            raise ValueError(f"expected {self.num_games} actions, got {action_view.shape[0]}")
        with nogil:
            bad = self._step(action_view)
        return bad

    def choose(self, str player, out):
        """Write `player`'s (one of OPPONENTS) choice for the agent's side of every game into `out`
        int64[N] (-1 for a finished game); its draws come from each game's generator, before the step's."""
        cdef int player_id = choice_index("player", player, OPPONENTS)
        cdef int64_t[::1] out_view = out
        cdef int i
        if out_view.shape[0] != self.num_games:
            raise ValueError(f"expected out of {self.num_games} actions, got {out_view.shape[0]}")
        with nogil:
            for i in range(self.num_games):
                out_view[i] = -1 if self.games[i].over else choose(&self.tables, &self.games[i], 0, player_id)

    cdef int _step(self, const int64_t[::1] actions) noexcept nogil:
        cdef int i, d
        cdef int64_t action
        cdef Game* g
        cdef uint64_t started
        for i in range(self.num_games):
            action = actions[i]
            if action < 0 or action >= NUM_ACTIONS or not (self.games[i].legal >> action) & 1:
                return i
        started = now_ns()
        for i in range(self.num_games):
            self.opponent_actions[i] = choose(&self.tables, &self.games[i], 1, self.opponent_id)
        self.enemy_ns += now_ns() - started
        for i in range(self.num_games):
            g = &self.games[i]
            self.rewards[i] = play_turn(&self.tables, g, <int>actions[i], self.opponent_actions[i],
                                        self.shaping_id)
            for d in range(NUM_DRAWS):
                self.turn_draws_view[i, d] = g.draws[d]
            g.episode_return += self.rewards[i]
            self.terminated[i] = g.over
            self.truncated[i] = 0
            if not g.over:
                self._publish(i)
                continue
            self.episode_return_view[i] = g.episode_return
            self.episode_length_view[i] = g.turn
            self.winner_view[i] = g.winner
            self.alive_view[i, 0] = alive_count(&g.sides[0])
            self.alive_view[i, 1] = alive_count(&g.sides[1])
            if self.auto_reset:
                write_observation(&self.tables, g, &self.terminal_obs[i, 0])
                deal(&self.tables, g)
            self._publish(i)
        return -1

    cdef void _publish(self, int i) noexcept nogil:
        """Game i's legal actions, observation and mask at the agent's decision (none once over)."""
        cdef Game* g = &self.games[i]
        cdef int a
        g.legal = 0 if g.over else legal_bits(&g.sides[0])
        write_observation(&self.tables, g, &self.obs[i, 0])
        for a in range(NUM_ACTIONS):
            self.masks[i, a] = (g.legal >> a) & 1

    def legal_actions(self, int index):
        """Ascending legal action ids of game `index` at its agent's decision ([] when it is over)."""
        check_index(index, self.num_games)
        return [a for a in range(NUM_ACTIONS) if (self.games[index].legal >> a) & 1]

    def end_info(self, int index):
        """The end info of game `index`'s last finished episode: winner, turns, alive."""
        check_index(index, self.num_games)
        return {
            "winner": int(self.winner_view[index]),
            "turns": int(self.episode_length_view[index]),
            "alive": (int(self.alive_view[index, 0]), int(self.alive_view[index, 1])),
        }

    @property
    def enemy_turn_ns(self):
        """Nanoseconds spent in the scripted side's choices since construction (C monotonic clock)."""
        return self.enemy_ns

    def rng_states(self):
        """uint64[N, 4]: every game's generator state (for the differential test's draw check)."""
        return rng_state_rows(&self.games[0].rng, sizeof(Game), self.num_games)
