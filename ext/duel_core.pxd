# The Duel core's C layout: its sizes, the rules tables and one game's state. See duel_core.pyx; the
# layout in words is envs/duel/rules.py.
from libc.stdint cimport int8_t, int16_t, int32_t, uint8_t

from ext.rng cimport Rng


cdef enum:
    NUM_TYPES = 4
    NUM_MOVES = 8
    NUM_SPECIES = 6
    TEAM_SIZE = 3
    MOVES_PER_CREATURE = 3
    NUM_ACTIONS = 7
    PASS = 3
    SWITCH = 4
    SLOT_SIZE = 9
    OBS_SIZE = 62
    OBS_TURN = 54
    OBS_LAST_ACTION = 55
    NUM_DRAWS = 5               # envs.duel.rules.DRAWS: accuracy draw a side, roll a side, the speed tie
    DRAW_ROLL = 2               # draws[DRAW_ROLL + side]
    DRAW_FIRST = 4
    NO_DRAW = -1


# The rules numbers, copied once from envs.duel.rules.core_tables(); shared by every game of a core.
cdef struct Tables:
    int species_type[NUM_SPECIES]
    int species_hp[NUM_SPECIES]
    int species_attack[NUM_SPECIES]
    int species_defence[NUM_SPECIES]
    int species_speed[NUM_SPECIES]
    int species_moves[NUM_SPECIES][MOVES_PER_CREATURE]
    int move_type[NUM_MOVES]
    int move_power[NUM_MOVES]
    int move_accuracy[NUM_MOVES]
    int effect[NUM_TYPES][NUM_TYPES]
    int max_turns
    int pass_heal_divisor
    int roll_min
    int roll_range
    int damage_divisor
    int shaping_divisor
    int hp_scale


cdef struct Side:
    int8_t species[TEAM_SIZE]
    int16_t hp[TEAM_SIZE]
    int8_t active
    int8_t last_action          # -1 before the first turn


cdef struct Game:
    Rng rng
    Side sides[2]
    int16_t turn                # turns played in this game
    int8_t over
    int8_t winner               # 0, 1, -1 = draw (valid once over)
    uint8_t legal               # side 0's legal actions (bit a = action a); 0 when over
    int8_t draws[NUM_DRAWS]     # the last turn's random draws (rules.DRAWS), NO_DRAW where none was made
    double episode_return
