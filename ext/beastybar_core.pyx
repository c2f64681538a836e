"""Beasty Bar in C: N two-player games stepped in one call (rules: docs/games/beastybar.md; the pure-Python
oracle is envs/beastybar/rules.py, which fixes every detail and the observation layout in words).

`BeastyBarCore(num_games, tables, opponent, options, auto_reset, buffers)` follows the core protocol of
docs/adding-a-game.md: `tables` is `envs.beastybar.rules.core_tables()` (species strength and points,
copied once into C), `opponent` one of `OPPONENTS`, `options` {"scoring": one of `SCORINGS`, "first":
one of `FIRSTS`, "reward_weights": {part: weight} over `REWARD_PARTS`: the reward at a game's end is
outcome (+1 / 0 / -1) x its weight + (A's bar points - B's) / MARGIN_SCALE x margin's}, and
`buffers` an `envs.batched_vec_env.CoreBuffers` of N games (row i = game i): obs float32[N, 160],
rewards float32[N], terminated bool[N], truncated bool[N], masks bool[N, 33], terminal_obs float32[N, 160].

`step(actions)` plays, in every game, the agent's turn (player 0), then the scripted opponent's reply
(player 1, one of the scripted players, drawing from the game's own `Rng`), then writes observation, reward,
terminated, truncated and legal mask. With `auto_reset`, a game that ends writes its final observation
to `terminal_obs`, deals the next game from the same generator stream (the opponent plays its opening
turn if it starts) and writes the new game's first observation to `obs`; without it, a finished game
shows its final position with an all-False mask until `reset`.

Each game's opponent is fixed at its deal and may be external (self-play): `BeastyBarCore`'s docstring
says how such a game waits for `opponent_step`; `play_games` plays scripted players against each other.

The step runs in passes over the games (agent turns, opponent turns, results, then the new games'
opening turns), so the opponent's time is read off the monotonic clock around whole passes: two clock
reads per call (four when a game was dealt), not per game, and `enemy_turn_ns` costs the hot path
nothing measurable. A game's own draws keep their order (agent, opponent, deal, opener), so the passes
change no trajectory. The step loop is flat C under `nogil`; it never touches a Python object. It must
not raise on a bad action: it reports the first bad game's index and steps nothing, so the caller can
name game, action and legal actions.
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from libc.stdlib cimport free

import numpy as np

from ext.core_common cimport (
    allocated, check_index, checked_buffers, checked_dict, checked_weights, choice_index, now_ns, reseed_games,
    rng_state_rows)
from ext.rng cimport Rng, rng_below, rng_seed


cdef extern from *:
    """
    static inline int bb_popcount(unsigned long long x) { return __builtin_popcountll(x); }
    static inline int bb_ctz(unsigned long long x) { return __builtin_ctzll(x); }
    """
    int bb_popcount(unsigned long long x) noexcept nogil
    int bb_ctz(unsigned long long x) noexcept nogil


# The rules' vocabulary (envs/beastybar/rules.py OPPONENTS, SCORINGS, FIRSTS); the index is the core's id.
OPPONENTS = ("random", "heuristic", "aggressive", "defensive", "queue", "skunk", "noisy", "outcome")
SCORINGS = ("points", "count")
FIRSTS = ("random", "agent", "opponent")
REWARD_PARTS = ("outcome", "margin")  # envs/beastybar/rules.py REWARD_PARTS; the reward is their weighted sum
cdef double MARGIN_SCALE = 20.0       # bar points per unit of `margin` (rules.MARGIN_SCALE)
RULE_OPTION_KEYS = ("scoring", "first")  # what play_games takes: scripted players earn no reward
OPTION_KEYS = (*RULE_OPTION_KEYS, "reward_weights")
TABLE_KEYS = ("strength", "points")
cdef enum:
    PLAYER_RANDOM = 0       # the ids of OPPONENTS, in its order
    PLAYER_HEURISTIC = 1
    PLAYER_AGGRESSIVE = 2
    PLAYER_DEFENSIVE = 3
    PLAYER_QUEUE = 4
    PLAYER_SKUNK = 5
    PLAYER_NOISY = 6
    PLAYER_OUTCOME = 7
    SCORING_POINTS = 0      # SCORINGS.index("points"); the other id is count
    FIRST_RANDOM = 0        # FIRSTS.index("random"); "agent" (1) and "opponent" (2) name player id - 1

# The scripted players' weights (definitions of the players, not rules numbers: the rules module's
# DOOR_WEIGHTS, BAR_WEIGHT and NOISY_SHARPNESS, compared by a test through PLAYER_WEIGHTS).
cdef enum:
    DOOR_WEIGHTED = 3       # queue positions 0..2 count (3 - position) times their points, the rest 0
    BAR_WEIGHT = 5
    NOISY_SHARPNESS = 10
    CHAMELEON_AS_SKUNK = 26  # action id: the chameleon copying the skunk
PLAYER_WEIGHTS = {
    "door": tuple(DOOR_WEIGHTED - p for p in range(DOOR_WEIGHTED)),
    "bar": BAR_WEIGHT,
    "noisy_sharpness": NOISY_SHARPNESS,
}


cdef int load_tables(object tables, Tables* t) except -1:
    """Copy `envs.beastybar.rules.core_tables()` into `t`; ValueError if a table is missing or mis-sized."""
    cdef int i
    checked_dict("tables", tables, TABLE_KEYS)
    for key in TABLE_KEYS:
        if len(tables[key]) != NUM_SPECIES:
            raise ValueError(f"tables[{key!r}] must hold {NUM_SPECIES} ints, one per species")
    for i in range(NUM_SPECIES):
        t.strength[i] = tables["strength"][i]
        t.points[i] = tables["points"][i]
    return 0


cdef inline int card_species(int card) noexcept nogil:
    return card % NUM_SPECIES


cdef inline int card_owner(int card) noexcept nogil:
    return card // NUM_SPECIES


cdef inline int card_strength(const Tables* t, int card) noexcept nogil:
    return t.strength[card % NUM_SPECIES]


# ---------------------------------------------------------------- actions

cdef inline int action_hand_species(int action) noexcept nogil:
    """The species of the card an action plays from hand."""
    if action <= 8:
        return action
    if action <= 11:
        return KANGAROO
    if action <= 16:
        return PARROT
    return CHAMELEON


cdef uint64_t legal_bits(uint16_t hand, const Queue* q) noexcept nogil:
    """Bit a set = action a is legal for a player holding `hand` before queue `q`."""
    cdef int n = q.length
    cdef uint64_t bits = hand & 0x1FF
    cdef uint64_t positions = ((<uint64_t>1) << n) - 1
    cdef uint16_t present = 0
    cdef int i, species
    if hand & (1 << KANGAROO):
        if n == 0:
            bits |= (<uint64_t>1) << 9
        else:
            bits |= (<uint64_t>1) << 10
            if n >= 2:
                bits |= (<uint64_t>1) << 11
    if hand & (1 << PARROT):
        if n == 0:
            bits |= (<uint64_t>1) << 16
        else:
            bits |= positions << 12
    if hand & (1 << CHAMELEON):
        for i in range(n):
            species = card_species(q.cards[i])
            if species != CHAMELEON:
                present |= 1 << species
        if present == 0:
            bits |= (<uint64_t>1) << 17
        else:
            bits |= (<uint64_t>(present & 0x1FF)) << 18
            if present & (1 << PARROT):
                bits |= positions << 27
            if present & (1 << KANGAROO):
                bits |= (<uint64_t>1) << 31
                if n >= 2:
                    bits |= (<uint64_t>1) << 32
    return bits


cdef inline int nth_set_bit(uint64_t bits, int nth) noexcept nogil:
    cdef int k
    for k in range(nth):
        bits &= bits - 1
    return bb_ctz(bits)


# ---------------------------------------------------------------- queue primitives

cdef inline void queue_remove(Queue* q, int index) noexcept nogil:
    cdef int j
    for j in range(index, q.length - 1):
        q.cards[j] = q.cards[j + 1]
    q.length -= 1


cdef inline void throw_out(Queue* q, int index, Outcome* out) noexcept nogil:
    out.thrown[out.thrown_length] = q.cards[index]
    out.thrown_length += 1
    queue_remove(q, index)


cdef inline void swap_ahead(Queue* q, int position) noexcept nogil:
    cdef int8_t card = q.cards[position]
    q.cards[position] = q.cards[position - 1]
    q.cards[position - 1] = card


cdef inline int find_card(const Queue* q, int card) noexcept nogil:
    cdef int i
    for i in range(q.length):
        if q.cards[i] == card:
            return i
    return -1


cdef void hippo_moves(const Tables* t, Queue* q, int position) noexcept nogil:
    # Passes every weaker animal but a zebra (a chameleon included: it acts at its own strength here).
    cdef int ahead
    while position > 0:
        ahead = card_species(q.cards[position - 1])
        if ahead == ZEBRA or t.strength[ahead] >= t.strength[HIPPO]:
            return
        swap_ahead(q, position)
        position -= 1


cdef void crocodile_eats(const Tables* t, Queue* q, int position, Outcome* out) noexcept nogil:
    cdef int ahead
    while position > 0:
        ahead = card_species(q.cards[position - 1])
        if ahead == ZEBRA or t.strength[ahead] >= t.strength[CROCODILE]:
            return
        throw_out(q, position - 1, out)
        position -= 1


cdef inline void giraffe_steps(const Tables* t, Queue* q, int position) noexcept nogil:
    if position > 0 and card_strength(t, q.cards[position - 1]) < t.strength[GIRAFFE]:
        swap_ahead(q, position)


cdef void snake_sorts(const Tables* t, Queue* q, int played_position) noexcept nogil:
    # Stable insertion sort, strongest first; the played card (snake or chameleon-as-snake) counts as a snake.
    cdef int strength[6]
    cdef int i, j, key
    cdef int8_t card
    for i in range(q.length):
        strength[i] = card_strength(t, q.cards[i])
    strength[played_position] = t.strength[SNAKE]
    for i in range(1, q.length):
        card = q.cards[i]
        key = strength[i]
        j = i
        while j > 0 and strength[j - 1] < key:
            q.cards[j] = q.cards[j - 1]
            strength[j] = strength[j - 1]
            j -= 1
        q.cards[j] = card
        strength[j] = key


cdef void lion_acts(Queue* q, int played_position, Outcome* out) noexcept nogil:
    cdef int i
    cdef int8_t played
    for i in range(played_position):
        if card_species(q.cards[i]) == LION:
            throw_out(q, played_position, out)
            return
    i = 0
    while i < q.length - 1:  # the played lion stays at the back while monkeys leave
        if card_species(q.cards[i]) == MONKEY:
            throw_out(q, i, out)
        else:
            i += 1
    played = q.cards[q.length - 1]
    for i in range(q.length - 1, 0, -1):
        q.cards[i] = q.cards[i - 1]
    q.cards[0] = played


cdef void monkey_acts(Queue* q, int played_position, Outcome* out) noexcept nogil:
    cdef int i, species, filled
    cdef bint other_monkey = False
    cdef int8_t rebuilt[6]
    for i in range(played_position):
        if card_species(q.cards[i]) == MONKEY:
            other_monkey = True
    if not other_monkey:
        return
    i = 0
    while i < q.length:
        species = card_species(q.cards[i])
        if species == HIPPO or species == CROCODILE:
            throw_out(q, i, out)
        else:
            i += 1
    # The played card (a monkey or a chameleon) is still at the back.
    rebuilt[0] = q.cards[q.length - 1]
    filled = 1
    for i in range(q.length - 2, -1, -1):
        if card_species(q.cards[i]) == MONKEY:
            rebuilt[filled] = q.cards[i]
            filled += 1
    for i in range(q.length - 1):
        if card_species(q.cards[i]) != MONKEY:
            rebuilt[filled] = q.cards[i]
            filled += 1
    memcpy(q.cards, rebuilt, q.length * sizeof(int8_t))


cdef void skunk_acts(const Tables* t, Queue* q, int played_position, Outcome* out) noexcept nogil:
    cdef int i, species, strength
    cdef int top = 0
    cdef int second = 0
    cdef int8_t played = q.cards[played_position]
    for i in range(q.length):
        species = card_species(q.cards[i])
        if i == played_position or species == SKUNK:
            continue
        strength = t.strength[species]
        if strength > top:
            second = top
            top = strength
        elif top > strength > second:
            second = strength
    if top == 0:
        return
    i = 0
    while i < q.length:
        strength = card_strength(t, q.cards[i])
        if q.cards[i] != played and (strength == top or strength == second):
            throw_out(q, i, out)
        else:
            i += 1


cdef inline void seal_reverses(Queue* q) noexcept nogil:
    cdef int i
    cdef int8_t card
    for i in range(q.length // 2):
        card = q.cards[i]
        q.cards[i] = q.cards[q.length - 1 - i]
        q.cards[q.length - 1 - i] = card


cdef void kangaroo_jumps(Queue* q, int played_position, int distance) noexcept nogil:
    cdef int8_t played = q.cards[played_position]
    cdef int i
    for i in range(played_position, played_position - distance, -1):
        q.cards[i] = q.cards[i - 1]
    q.cards[played_position - distance] = played


cdef void resolve(const Tables* t, Queue* q, int owner, int action, Outcome* out) noexcept nogil:
    """Steps 1-4 of a turn for a legal `action` by `owner`: place, act, recurring, bar check."""
    cdef int n = q.length
    cdef int8_t played = owner * NUM_SPECIES + action_hand_species(action)
    cdef int acting = NO_ACTION
    cdef int choice = 0
    cdef int8_t recurring[6]
    cdef int recurring_length = 0
    cdef int i, species, position
    out.bar_length = 0
    out.thrown_length = 0
    q.cards[n] = played
    q.length = n + 1

    if action <= 8:
        acting = action
    elif action <= 11:
        acting = KANGAROO
        choice = action - 9
    elif action <= 15:
        acting = PARROT
        choice = action - 12
    elif action == 17 or action == 16:
        acting = NO_ACTION
    elif action <= 26:
        acting = action - 18
    elif action <= 30:
        acting = PARROT
        choice = action - 27
    else:
        acting = KANGAROO
        choice = action - 30

    if acting == LION:
        lion_acts(q, n, out)
    elif acting == HIPPO:
        hippo_moves(t, q, n)
    elif acting == CROCODILE:
        crocodile_eats(t, q, n, out)
    elif acting == SNAKE:
        snake_sorts(t, q, n)
    elif acting == GIRAFFE:
        giraffe_steps(t, q, n)
    elif acting == SEAL:
        seal_reverses(q)
    elif acting == MONKEY:
        monkey_acts(q, n, out)
    elif acting == SKUNK:
        skunk_acts(t, q, n, out)
    elif acting == KANGAROO:
        kangaroo_jumps(q, n, choice)
    elif acting == PARROT:
        throw_out(q, choice, out)

    for i in range(q.length):
        species = card_species(q.cards[i])
        if q.cards[i] != played and (species == HIPPO or species == CROCODILE or species == GIRAFFE):
            recurring[recurring_length] = q.cards[i]
            recurring_length += 1
    for i in range(recurring_length):
        position = find_card(q, recurring[i])
        if position < 0:
            continue
        species = card_species(recurring[i])
        if species == HIPPO:
            hippo_moves(t, q, position)
        elif species == CROCODILE:
            crocodile_eats(t, q, position, out)
        else:
            giraffe_steps(t, q, position)

    if q.length == QUEUE_CAPACITY:
        out.bar[0] = q.cards[0]
        out.bar[1] = q.cards[1]
        out.bar_length = 2
        out.thrown[out.thrown_length] = q.cards[4]
        out.thrown_length += 1
        q.cards[0] = q.cards[2]
        q.cards[1] = q.cards[3]
        q.length = 2


# ---------------------------------------------------------------- a game

cdef void play_turn(const Tables* t, Game* g, int player, int action) noexcept nogil:
    cdef Outcome out
    cdef int i, card, owner, species
    g.hand[player] &= ~(1 << action_hand_species(action))
    resolve(t, &g.queue, player, action, &out)
    for i in range(out.bar_length):
        card = out.bar[i]
        owner = card_owner(card)
        species = card_species(card)
        g.bar_species[owner] |= 1 << species
        g.bar_points[owner] += t.points[species]
        g.bar_count[owner] += 1
        g.bar_strength[owner] += t.strength[species]
    for i in range(out.thrown_length):
        card = out.thrown[i]
        g.thrown_species[card_owner(card)] |= 1 << card_species(card)
    if g.next_draw[player] < NUM_SPECIES:
        species = g.deck[player][g.next_draw[player]]
        g.hand[player] |= 1 << species
        g.pile_species[player] &= ~(1 << species)
        g.next_draw[player] += 1
    g.turns += 1


# ---------------------------------------------------------------- scripted players
# The rules page, "Scripted players", defines them; envs/beastybar/rules.py is their reference. Each plays
# for `me` (0 or 1) from what me's observation shows and makes exactly one rng draw per turn.

cdef struct Effect:
    # What one play does, seen from `me`: points of my / their animals into the bar and thrown out. The
    # queue value Q of the queue after it is computed apart, by the players that use it.
    int bar_mine
    int bar_theirs
    int thrown_mine
    int thrown_theirs


cdef inline int queue_value(const Tables* t, const Queue* q, int me) noexcept nogil:
    cdef int i, v
    cdef int total = 0
    for i in range(min(q.length, DOOR_WEIGHTED)):
        v = (DOOR_WEIGHTED - i) * t.points[card_species(q.cards[i])]
        total += v if card_owner(q.cards[i]) == me else -v
    return total


cdef inline void sum_points(const Tables* t, const int8_t* cards, int length, int me, int* mine,
                            int* theirs) noexcept nogil:
    """The points of `cards` owned by `me` into `mine`, the others' into `theirs`."""
    cdef int i
    mine[0] = 0
    theirs[0] = 0
    for i in range(length):
        if card_owner(cards[i]) == me:
            mine[0] += t.points[card_species(cards[i])]
        else:
            theirs[0] += t.points[card_species(cards[i])]


cdef void play_effect(const Tables* t, const Queue* before, int player, int action, int me, Queue* after,
                      Effect* e, bint with_thrown) noexcept nogil:
    """`player` plays legal `action` on a copy of `before` (left in `after`); its effect seen from `me`
    (the thrown-out sums only `with_thrown`: the players that do not read them save the loop)."""
    cdef Outcome out
    after[0] = before[0]
    resolve(t, after, player, action, &out)
    sum_points(t, out.bar, out.bar_length, me, &e.bar_mine, &e.bar_theirs)
    if with_thrown:
        sum_points(t, out.thrown, out.thrown_length, me, &e.thrown_mine, &e.thrown_theirs)


cdef inline int effect_net(const Effect* e) noexcept nogil:
    return e.bar_mine - e.bar_theirs


cdef inline int position_value(const Tables* t, const Effect* e, const Queue* after, int me) noexcept nogil:
    """V = BAR_WEIGHT * N + Q(after)."""
    return BAR_WEIGHT * effect_net(e) + queue_value(t, after, me)


cdef int outcome_score(const Tables* t, const Game* g, int me, int action) noexcept nogil:
    """The worst case of `action` over every reply the other player's unplayed species allow."""
    cdef int them = 1 - me
    cdef uint16_t unplayed = g.hand[them] | g.pile_species[them]
    cdef Queue mine_queue, reply_queue
    cdef Effect mine, reply
    cdef uint64_t replies
    cdef int score
    cdef int worst = 1 << 30
    play_effect(t, &g.queue, me, action, me, &mine_queue, &mine, False)
    if unplayed == 0:
        return position_value(t, &mine, &mine_queue, me)
    replies = legal_bits(unplayed, &mine_queue)
    while replies:
        play_effect(t, &mine_queue, them, bb_ctz(replies), me, &reply_queue, &reply, False)
        replies &= replies - 1
        score = BAR_WEIGHT * (effect_net(&mine) + effect_net(&reply)) + queue_value(t, &reply_queue, me)
        if score < worst:
            worst = score
    return worst


cdef int play_score(const Tables* t, const Game* g, int player_id, int me, int action) noexcept nogil:
    """The score the (non-random) scripted player `player_id` gives `action` (V for the noisy one)."""
    cdef Queue after
    cdef Effect e
    if player_id == PLAYER_OUTCOME:
        return outcome_score(t, g, me, action)
    play_effect(t, &g.queue, me, action, me, &after, &e,
                player_id == PLAYER_AGGRESSIVE or player_id == PLAYER_DEFENSIVE or player_id == PLAYER_SKUNK)
    if player_id == PLAYER_HEURISTIC:
        return effect_net(&e)
    if player_id == PLAYER_AGGRESSIVE:
        return 3 * e.bar_mine - e.bar_theirs + 2 * e.thrown_theirs
    if player_id == PLAYER_DEFENSIVE:
        return e.bar_mine - 3 * e.bar_theirs - 2 * e.thrown_mine
    if player_id == PLAYER_SKUNK:
        if action == SKUNK or action == CHAMELEON_AS_SKUNK:
            return effect_net(&e) + 3 * (e.thrown_theirs - e.thrown_mine) + 1
        return effect_net(&e)
    return position_value(t, &e, &after, me)  # queue, noisy


cdef int noisy_choice(const Tables* t, Game* g, int me, uint64_t legal) noexcept nogil:
    """Each legal action weighted 2 ** max(0, NOISY_SHARPNESS - (best V - its V)); one draw."""
    cdef int values[NUM_ACTIONS]
    cdef uint64_t remaining = legal
    cdef int best = -(1 << 30)
    cdef uint32_t total = 0
    cdef uint32_t draw, weight
    cdef int action, shift
    while remaining:
        action = bb_ctz(remaining)
        remaining &= remaining - 1
        values[action] = play_score(t, g, PLAYER_NOISY, me, action)
        if values[action] > best:
            best = values[action]
    remaining = legal
    while remaining:
        action = bb_ctz(remaining)
        remaining &= remaining - 1
        shift = NOISY_SHARPNESS - (best - values[action])
        total += (<uint32_t>1) << (shift if shift > 0 else 0)
    draw = rng_below(&g.rng, total)
    remaining = legal
    while True:
        action = bb_ctz(remaining)
        remaining &= remaining - 1
        shift = NOISY_SHARPNESS - (best - values[action])
        weight = (<uint32_t>1) << (shift if shift > 0 else 0)
        if draw < weight or not remaining:
            return action
        draw -= weight


cdef int choose_action(const Tables* t, Game* g, int player_id, int me) noexcept nogil:
    """The action scripted player `player_id` (an index of OPPONENTS) chooses for player `me`: uniform
    among the legal actions of the best score, in ascending order (one draw), or random or noisy."""
    cdef uint64_t legal = legal_bits(g.hand[me], &g.queue)
    cdef uint64_t remaining = legal
    cdef uint64_t best = 0
    cdef int best_score = -(1 << 30)
    cdef int action, score
    if player_id == PLAYER_RANDOM:
        return nth_set_bit(legal, <int>rng_below(&g.rng, bb_popcount(legal)))
    if player_id == PLAYER_NOISY:
        return noisy_choice(t, g, me, legal)
    while remaining:
        action = bb_ctz(remaining)
        remaining &= remaining - 1
        score = play_score(t, g, player_id, me, action)
        if score > best_score:
            best_score = score
            best = 0
        if score == best_score:
            best |= (<uint64_t>1) << action
    return nth_set_bit(best, <int>rng_below(&g.rng, bb_popcount(best)))


cdef inline void opponent_turn(const Tables* t, Game* g, int opponent) noexcept nogil:
    play_turn(t, g, 1, choose_action(t, g, opponent, 1))


cdef void deal(Game* g, int first_id) noexcept nogil:
    """A new game from the generator's current state, up to the first turn: when the opponent starts
    (`first == 1`) the caller plays its opening turn next, then publishes the agent's decision. The
    starter is drawn whatever `first_id` (an index of FIRSTS) says, so a seed deals the same hands."""
    cdef int player, i, j
    cdef int8_t species
    for player in range(2):
        for i in range(NUM_SPECIES):
            g.deck[player][i] = i
        for i in range(NUM_SPECIES - 1, 0, -1):
            j = <int>rng_below(&g.rng, i + 1)
            species = g.deck[player][i]
            g.deck[player][i] = g.deck[player][j]
            g.deck[player][j] = species
        g.hand[player] = 0
        for i in range(HAND_SIZE):
            g.hand[player] |= 1 << g.deck[player][i]
        g.pile_species[player] = 0xFFF & ~g.hand[player]
        g.next_draw[player] = HAND_SIZE
        g.bar_species[player] = 0
        g.thrown_species[player] = 0
        g.bar_points[player] = 0
        g.bar_count[player] = 0
        g.bar_strength[player] = 0
    g.first = <int>rng_below(&g.rng, 2)
    if first_id != FIRST_RANDOM:
        g.first = first_id - 1
    g.queue.length = 0
    g.turns = 0
    g.agent_steps = 0
    g.legal = 0


cdef int winner_of(const Game* g, int scoring) noexcept nogil:
    """0 or 1 for the winning player, -1 for a draw."""
    if scoring == SCORING_POINTS:
        if g.bar_points[0] != g.bar_points[1]:
            return 0 if g.bar_points[0] > g.bar_points[1] else 1
        return -1
    if g.bar_count[0] != g.bar_count[1]:
        return 0 if g.bar_count[0] > g.bar_count[1] else 1
    if g.bar_strength[0] != g.bar_strength[1]:
        return 0 if g.bar_strength[0] < g.bar_strength[1] else 1
    return -1


cdef inline void set_species(float* row, int offset, uint16_t species_bits) noexcept nogil:
    while species_bits:
        row[offset + bb_ctz(species_bits)] = 1.0
        species_bits &= species_bits - 1


cdef void write_observation(const Game* g, float* row, int viewer) noexcept nogil:
    """The observation of `viewer` (0 the agent, 1 the opponent), the rules module's layout."""
    cdef int i, card
    cdef int other = 1 - viewer
    memset(row, 0, OBS_SIZE * sizeof(float))
    for i in range(g.queue.length):
        card = g.queue.cards[i]
        row[i * SLOT_SIZE + card_species(card)] = 1.0
        row[i * SLOT_SIZE + NUM_SPECIES + (0 if card_owner(card) == viewer else 1)] = 1.0
    set_species(row, 70, g.hand[viewer])
    set_species(row, 82, g.pile_species[viewer])
    set_species(row, 94, g.hand[other] | g.pile_species[other])
    set_species(row, 106, g.bar_species[viewer])
    set_species(row, 118, g.bar_species[other])
    set_species(row, 130, g.thrown_species[viewer])
    set_species(row, 142, g.thrown_species[other])
    row[154] = <float>(g.bar_points[viewer] / 20.0)
    row[155] = <float>(g.bar_points[other] / 20.0)
    row[156] = <float>(g.turns / 24.0)
    row[157] = <float>((NUM_SPECIES - g.next_draw[viewer]) / 8.0)
    row[158] = <float>((NUM_SPECIES - g.next_draw[other]) / 8.0)
    row[159] = 1.0 if g.first == viewer else 0.0


# BYTES_OF_BITS[b]: the 8 bits of b spread over 8 bytes (byte k = bit k on a little-endian machine),
# so masks are written 8 actions at a time.
cdef uint64_t BYTES_OF_BITS[256]
for _bits in range(256):
    BYTES_OF_BITS[_bits] = sum(((_bits >> _k) & 1) << (8 * _k) for _k in range(8))
del _bits


cdef inline void write_mask(uint64_t legal, uint8_t* row) noexcept nogil:
    cdef int block
    for block in range(NUM_ACTIONS // 8):
        memcpy(row + 8 * block, &BYTES_OF_BITS[(legal >> (8 * block)) & 0xFF], 8)
    row[NUM_ACTIONS - 1] = (legal >> (NUM_ACTIONS - 1)) & 1


# ---------------------------------------------------------------- the batched core

cdef class BeastyBarCore:
    """N games of Beasty Bar in C arrays, stepped together; see the module docstring for the arguments and
    buffers. Games start seeded 0..N-1; `reset(seeds)` reseeds them.

    Per-game stats of the last finished episode (read them for the games that ended in a step):
    `episode_return` float32[N], `episode_length` int32[N] (agent steps), `winner` int8[N] (0, 1,
    -1 = draw), `points` int16[N, 2], `bar_count` int16[N, 2]. `enemy_turn_ns`: nanoseconds spent in
    the scripted opponents' turns (their openings included) since construction, C monotonic clock.

    External opponents (self-play: the caller plays player 1 with its own policies): each game's opponent
    is fixed when it is dealt, from `set_next_opponents` (an index of OPPONENTS, or -1 = external; all
    the constructor's `opponent` until set). When a step (or a reset) reaches a turn of an external
    opponent, that game waits: `waiting` bool[N] marks it, `opponent_obs` float32[N, 160] holds player 1's
    observation (the same layout, from its side) and `opponent_masks` bool[N, 33] its legal actions.
    `opponent_step(actions)` plays them and carries those games on to the agent's next decision (which
    may reach another external turn: an opening after an end). Rewards, ends and the agent's observation
    of a waiting game are written once it stops waiting; `step` refuses while any game waits. The
    external opponents' time is the caller's, not in `enemy_turn_ns`.
    """

    cdef Game* games
    cdef Tables tables
    cdef readonly int num_games
    cdef readonly str opponent, scoring, first
    cdef readonly bint auto_reset
    cdef readonly object episode_return, episode_length, winner, points, bar_count
    cdef readonly object waiting, opponent_obs, opponent_masks
    cdef int scoring_id
    cdef int first_id
    cdef double outcome_weight, margin_weight
    cdef int num_waiting
    cdef uint64_t enemy_ns
    cdef float[:, ::1] obs
    cdef float[::1] rewards
    cdef uint8_t[::1] terminated
    cdef uint8_t[::1] truncated
    cdef uint8_t[:, ::1] masks
    cdef float[:, ::1] terminal_obs
    cdef float[::1] episode_return_view
    cdef int32_t[::1] episode_length_view
    cdef int8_t[::1] winner_view
    cdef int16_t[:, ::1] points_view
    cdef int16_t[:, ::1] bar_count_view
    cdef uint8_t[::1] waiting_view
    cdef float[:, ::1] opponent_obs_view
    cdef uint8_t[:, ::1] opponent_masks_view
    cdef int8_t[::1] next_opponent

    def __cinit__(self):
        self.games = NULL

    def __init__(self, int num_games, tables, str opponent, options, bint auto_reset, buffers):
        """tables: envs.beastybar.rules.core_tables(); opponent: one of OPPONENTS; options: {"scoring":
        one of SCORINGS, "first": one of FIRSTS, "reward_weights": {part: finite number} over REWARD_PARTS};
        buffers: envs.batched_vec_env.CoreBuffers of num_games
        rows. ValueError naming what is wrong otherwise."""
        self.obs, self.rewards, self.terminated, self.truncated, self.masks, self.terminal_obs = checked_buffers(
            buffers, num_games, OBS_SIZE, NUM_ACTIONS)
        load_tables(tables, &self.tables)
        opponent_id = choice_index("opponent", opponent, OPPONENTS)
        options = checked_dict("options", options, OPTION_KEYS)
        self.scoring_id = choice_index("scoring", options["scoring"], SCORINGS)
        self.first_id = choice_index("first", options["first"], FIRSTS)
        self.outcome_weight, self.margin_weight = checked_weights(options["reward_weights"], REWARD_PARTS)
        self.first = options["first"]
        self.num_games = num_games
        self.opponent = opponent
        self.scoring = options["scoring"]
        self.auto_reset = auto_reset
        self.episode_return = np.zeros(num_games, np.float32)
        self.episode_length = np.zeros(num_games, np.int32)
        self.winner = np.zeros(num_games, np.int8)
        self.points = np.zeros((num_games, 2), np.int16)
        self.bar_count = np.zeros((num_games, 2), np.int16)
        self.waiting = np.zeros(num_games, np.bool_)
        self.opponent_obs = np.zeros((num_games, OBS_SIZE), np.float32)
        self.opponent_masks = np.zeros((num_games, NUM_ACTIONS), np.bool_)
        self.episode_return_view = self.episode_return
        self.episode_length_view = self.episode_length
        self.winner_view = self.winner
        self.points_view = self.points
        self.bar_count_view = self.bar_count
        self.waiting_view = self.waiting.view(np.uint8)
        self.opponent_obs_view = self.opponent_obs
        self.opponent_masks_view = self.opponent_masks.view(np.uint8)
        self.next_opponent = np.full(num_games, opponent_id, np.int8)
        self.games = <Game*>allocated(num_games, sizeof(Game))
        self.reset(np.arange(num_games, dtype=np.uint64))

    def __dealloc__(self):
        free(self.games)

    def set_next_opponents(self, opponents):
        """int[N]: the opponent of each game's next deal (a reset's or an auto-reset's), an index of
        OPPONENTS or -1 for an external one. ValueError for a wrong length or id."""
        ids = np.asarray(opponents)
        if ids.shape != (self.num_games,) or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"expected {self.num_games} integer opponent ids, got shape {ids.shape} {ids.dtype}")
        if ids.size and (ids.min() < EXTERNAL or ids.max() >= len(OPPONENTS)):
            raise ValueError(f"opponent ids must be -1 (external) or 0-{len(OPPONENTS) - 1} (OPPONENTS)")
        cdef const int8_t[::1] source = np.ascontiguousarray(ids, dtype=np.int8)
        self.next_opponent[:] = source

    def opponents(self):
        """int8[N]: each current game's opponent (an index of OPPONENTS, -1 = external)."""
        return np.array([self.games[i].opponent for i in range(self.num_games)], dtype=np.int8)

    def reset(self, seeds=None):
        """Deal a new game everywhere; `seeds` uint64[N] reseeds each game first, None continues its stream."""
        cdef int i
        reseed_games(seeds, &self.games[0].rng, sizeof(Game), self.num_games)
        with nogil:
            self.num_waiting = 0
            for i in range(self.num_games):
                self.waiting_view[i] = 0
                self._deal(i)
                self.rewards[i] = 0.0
                self.terminated[i] = 0
                self.truncated[i] = 0
            self._openings()

    def step(self, actions):
        """Play agent actions int64[N] in every game. Returns -1, or the index of the first game whose
        action is illegal (then no game has moved). ValueError while a game waits for `opponent_step`."""
        cdef const int64_t[::1] action_view = np.ascontiguousarray(actions, dtype=np.int64)
        cdef int bad
        if action_view.shape[0] != self.num_games:
            raise ValueError(f"expected {self.num_games} actions, got {action_view.shape[0]}")
        if self.num_waiting:
            raise ValueError(f"{self.num_waiting} games wait for their external opponent: opponent_step first")
        with nogil:
            bad = self._step(action_view)
        return bad

    def opponent_step(self, actions):
        """Play the external opponents' actions int64[N] in the waiting games (the other entries are
        ignored) and carry those games on. Returns -1, or the index of the first waiting game whose
        action is illegal (then no game has moved). ValueError when no game waits."""
        cdef const int64_t[::1] action_view = np.ascontiguousarray(actions, dtype=np.int64)
        cdef int bad
        if action_view.shape[0] != self.num_games:
            raise ValueError(f"expected {self.num_games} actions, got {action_view.shape[0]}")
        if not self.num_waiting:
            raise ValueError("no game waits for an external opponent")
        with nogil:
            bad = self._opponent_step(action_view)
        return bad

    cdef void _deal(self, int i) noexcept nogil:
        deal(&self.games[i], self.first_id)
        self.games[i].opponent = self.next_opponent[i]
        self.games[i].stage = DEALT

    cdef void _wait(self, int i, int stage) noexcept nogil:
        """Game i waits for its external opponent's action: its observation and legal mask."""
        cdef Game* g = &self.games[i]
        g.stage = stage
        write_observation(g, &self.opponent_obs_view[i, 0], 1)
        write_mask(legal_bits(g.hand[1], &g.queue), &self.opponent_masks_view[i, 0])
        self.waiting_view[i] = 1
        self.num_waiting += 1

    cdef int _step(self, const int64_t[::1] actions) noexcept nogil:
        cdef int i
        cdef int64_t action
        cdef Game* g
        cdef uint64_t started
        for i in range(self.num_games):
            action = actions[i]
            if action < 0 or action >= NUM_ACTIONS or not (self.games[i].legal >> action) & 1:
                return i
        for i in range(self.num_games):
            play_turn(&self.tables, &self.games[i], 0, <int>actions[i])
            self.games[i].agent_steps += 1
            self.games[i].stage = REPLIED
        started = now_ns()
        for i in range(self.num_games):
            g = &self.games[i]
            if g.turns < TURNS_PER_GAME:
                if g.opponent == EXTERNAL:
                    self._wait(i, WAIT_REPLY)
                else:
                    opponent_turn(&self.tables, g, g.opponent)
        self.enemy_ns += now_ns() - started
        if self._results():
            self._openings()
        return -1

    cdef int _opponent_step(self, const int64_t[::1] actions) noexcept nogil:
        cdef int i
        cdef int64_t action
        cdef Game* g
        cdef bint opened = False
        for i in range(self.num_games):
            action = actions[i]
            if self.waiting_view[i] and (action < 0 or action >= NUM_ACTIONS
                                         or not (legal_bits(self.games[i].hand[1], &self.games[i].queue)
                                                 >> action) & 1):
                return i
        for i in range(self.num_games):
            if not self.waiting_view[i]:
                continue
            g = &self.games[i]
            play_turn(&self.tables, g, 1, <int>actions[i])
            opened = opened or g.stage == WAIT_OPENING
            g.stage = REPLIED if g.stage == WAIT_REPLY else OPENED
            self.waiting_view[i] = 0
        self.num_waiting = 0
        if self._results() or opened:
            self._openings()
        return -1

    cdef bint _results(self) noexcept nogil:
        """Every REPLIED game: its reward and end; the agent's next decision, or (with auto-reset) the
        next game, dealt for `_openings`. Whether a game was dealt."""
        cdef int i, winner
        cdef double outcome
        cdef Game* g
        cdef bint dealt = False
        for i in range(self.num_games):
            g = &self.games[i]
            if g.stage != REPLIED:
                continue
            self.truncated[i] = 0
            if g.turns < TURNS_PER_GAME:
                self.rewards[i] = 0.0
                self.terminated[i] = 0
                self._publish(i)
                continue
            winner = winner_of(g, self.scoring_id)
            outcome = 1.0 if winner == 0 else (-1.0 if winner == 1 else 0.0)
            # rules.end_reward's float64 sum, in its order, then stored as float32
            self.rewards[i] = <float>(self.outcome_weight * outcome
                                      + self.margin_weight * ((g.bar_points[0] - g.bar_points[1]) / MARGIN_SCALE))
            self.terminated[i] = 1
            self.episode_return_view[i] = self.rewards[i]
            self.episode_length_view[i] = g.agent_steps
            self.winner_view[i] = winner
            self.points_view[i, 0] = g.bar_points[0]
            self.points_view[i, 1] = g.bar_points[1]
            self.bar_count_view[i, 0] = g.bar_count[0]
            self.bar_count_view[i, 1] = g.bar_count[1]
            if self.auto_reset:
                write_observation(g, &self.terminal_obs[i, 0], 0)
                self._deal(i)  # published by _openings, after the opponent's opening turn
                dealt = True
            else:
                g.legal = 0
                g.stage = AT_DECISION
                write_observation(g, &self.obs[i, 0], 0)
                write_mask(0, &self.masks[i, 0])
        return dealt

    cdef void _openings(self) noexcept nogil:
        """The scripted opponents' opening turns in the DEALT games they start (timed into
        `enemy_turn_ns` as one block), an external one's as a wait; then the agent's first decision in
        every game that is not waiting."""
        cdef uint64_t started = now_ns()
        cdef int i
        cdef Game* g
        for i in range(self.num_games):
            g = &self.games[i]
            if g.stage != DEALT:
                continue
            if g.first == 0:
                g.stage = OPENED
            elif g.opponent == EXTERNAL:
                self._wait(i, WAIT_OPENING)
            else:
                opponent_turn(&self.tables, g, g.opponent)
                g.stage = OPENED
        self.enemy_ns += now_ns() - started
        for i in range(self.num_games):
            if self.games[i].stage == OPENED:
                self._publish(i)

    cdef void _publish(self, int i) noexcept nogil:
        """Game i's legal actions, observation and mask at the agent's decision."""
        cdef Game* g = &self.games[i]
        g.legal = legal_bits(g.hand[0], &g.queue)
        g.stage = AT_DECISION
        write_observation(g, &self.obs[i, 0], 0)
        write_mask(g.legal, &self.masks[i, 0])

    def legal_actions(self, int index):
        """Ascending legal action ids of game `index` at its agent's decision ([] when it is over)."""
        check_index(index, self.num_games)
        return _bits_to_list(self.games[index].legal)

    def end_info(self, int index):
        """The end info of game `index`'s last finished episode: winner, points, bar_count."""
        check_index(index, self.num_games)
        return {
            "winner": int(self.winner_view[index]),
            "points": (int(self.points_view[index, 0]), int(self.points_view[index, 1])),
            "bar_count": (int(self.bar_count_view[index, 0]), int(self.bar_count_view[index, 1])),
        }

    @property
    def enemy_turn_ns(self):
        """Nanoseconds spent in the scripted opponents' turns since construction (C monotonic clock)."""
        return self.enemy_ns


def _bits_to_list(uint64_t bits):
    return [a for a in range(NUM_ACTIONS) if (bits >> a) & 1]


# ---------------------------------------------------------------- one play, for scenarios and tests

def resolve_play(tables, queue, int owner, int action):
    """Apply steps 2-4 of one play to `queue` [(owner, species), ...] front to back (len <= 4), under
    `tables` (envs.beastybar.rules.core_tables()).

    `action` is a 33-way action id, checked legal for this queue with its species assumed in hand
    (ValueError naming it and the legal ones otherwise). Returns (queue_after, bar_entered,
    thrown_out), each a list of (owner, species) in order.
    """
    cdef Tables t
    cdef Queue q
    cdef Outcome out
    cdef int i, card
    cdef uint64_t legal
    load_tables(tables, &t)
    if owner not in (0, 1):
        raise ValueError(f"owner must be 0 or 1, got {owner}")
    if len(queue) > QUEUE_CAPACITY - 1:
        raise ValueError(f"a queue holds at most 4 cards before a play, got {len(queue)}")
    q.length = len(queue)
    for i, (card_owner_id, species) in enumerate(queue):
        if card_owner_id not in (0, 1) or not 0 <= species < NUM_SPECIES:
            raise ValueError(f"bad card {(card_owner_id, species)!r}; expected (0|1, species 0-11)")
        q.cards[i] = card_owner_id * NUM_SPECIES + species
    legal = legal_bits(0xFFF, &q)
    if not 0 <= action < NUM_ACTIONS or not (legal >> action) & 1:
        raise ValueError(f"action {action} is illegal for this queue; legal: {_bits_to_list(legal)}")
    played = owner * NUM_SPECIES + action_hand_species(action)
    if find_card(&q, played) >= 0:
        raise ValueError(f"card {(owner, action_hand_species(action))!r} is already in the queue")
    resolve(&t, &q, owner, action, &out)
    return (
        [(card_owner(q.cards[i]), card_species(q.cards[i])) for i in range(q.length)],
        [(card_owner(out.bar[i]), card_species(out.bar[i])) for i in range(out.bar_length)],
        [(card_owner(out.thrown[i]), card_species(out.thrown[i])) for i in range(out.thrown_length)],
    )


# ---------------------------------------------------------------- scripted player against scripted player

def play_games(tables, players, seeds, options):
    """Whole games between two scripted players, in C: player p plays `players[p]` (names of OPPONENTS),
    game i is dealt from a generator seeded `seeds[i]` (uint64[N]) under `options` (the core's:
    {"scoring", "first"}; "agent" is player 0). The same trajectories as `envs.beastybar.rules.play_game`
    from the same seeds.

    Returns a dict of numpy arrays: `actions` int8[N, 24] (the actions in turn order), `first` int8[N]
    (who started), `winner` int8[N] (0, 1, -1 = draw), `points` int16[N, 2], `bar_count` int16[N, 2].
    ValueError naming a bad player, option or table.
    """
    cdef Tables t
    cdef Game game
    cdef int player_ids[2]
    cdef int scoring_id, first_id, i, player, action
    cdef const uint64_t[::1] seed_view = np.ascontiguousarray(seeds, dtype=np.uint64).reshape(-1)
    load_tables(tables, &t)
    if isinstance(players, str) or len(players) != 2:
        raise ValueError(f"players must be two names of {', '.join(OPPONENTS)}; got {players!r}")
    for player in range(2):
        player_ids[player] = choice_index("player", players[player], OPPONENTS)
    options = checked_dict("options", options, RULE_OPTION_KEYS)
    scoring_id = choice_index("scoring", options["scoring"], SCORINGS)
    first_id = choice_index("first", options["first"], FIRSTS)
    num_games = seed_view.shape[0]
    results = {
        "actions": np.zeros((num_games, TURNS_PER_GAME), np.int8),
        "first": np.zeros(num_games, np.int8),
        "winner": np.zeros(num_games, np.int8),
        "points": np.zeros((num_games, 2), np.int16),
        "bar_count": np.zeros((num_games, 2), np.int16),
    }
    cdef int8_t[:, ::1] actions_view = results["actions"]
    cdef int8_t[::1] first_view = results["first"]
    cdef int8_t[::1] winner_view = results["winner"]
    cdef int16_t[:, ::1] points_view = results["points"]
    cdef int16_t[:, ::1] bar_count_view = results["bar_count"]
    with nogil:
        for i in range(num_games):
            rng_seed(&game.rng, seed_view[i])
            deal(&game, first_id)
            first_view[i] = game.first
            while game.turns < TURNS_PER_GAME:
                player = (game.first + game.turns) % 2
                action = choose_action(&t, &game, player_ids[player], player)
                actions_view[i, game.turns] = action
                play_turn(&t, &game, player, action)
            winner_view[i] = winner_of(&game, scoring_id)
            for player in range(2):
                points_view[i, player] = game.bar_points[player]
                bar_count_view[i, player] = game.bar_count[player]
    return results
