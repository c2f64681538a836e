# The Skirmish core's C layout: the shared rules tables and one game's state. See skirmish_core.pyx.
from libc.stdint cimport uint64_t

from ext.rng cimport Rng


cdef enum:
    BOARD_W = 24
    BOARD_H = 16
    CELLS = 384
    NUM_UNITS = 8
    PER_SIDE = 4
    MAX_OBJECTIVES = 5
    MAX_MISSIONS = 8
    NUM_ACTIONS = 14
    OBS_SIZE = 103
    PROFILE_FIELDS = 16
    INFO_FIELDS = 9


# The rules numbers, copied once from envs.skirmish.rules.core_tables(); shared by every game of a core.
cdef struct Tables:
    int profile[PER_SIDE][PROFILE_FIELDS]
    signed char blocked[MAX_MISSIONS][CELLS]
    int obj_x[MAX_MISSIONS][MAX_OBJECTIVES]
    int obj_y[MAX_MISSIONS][MAX_OBJECTIVES]
    int n_objectives[MAX_MISSIONS]
    int deploy_x[NUM_UNITS]
    int deploy_y[NUM_UNITS]
    int n_missions
    int rounds
    int vp_per_objective
    int control_range
    int charge_range
    int max_steps


cdef struct Game:
    Rng rng
    int mission
    int x[NUM_UNITS]
    int y[NUM_UNITS]
    int wounds[NUM_UNITS]
    signed char occupant[CELLS]     # unit index + 1, 0 when empty
    int vp[2]
    int vp_gained[2]                # this step's tallies, for the reward
    int dealt
    int taken
    int outcome
    int round
    int phase
    int unit
    int steps
    int end_reason
    int winner
    uint64_t enemy_turn_ns          # time spent in the player's turns, C monotonic clock
    double ep_return                # running return and length of the current episode
    int ep_length
    # Per-phase caches, rebuilt lazily; invalidated by every move, charge and casualty.
    int dist_valid
    int dist[NUM_UNITS][NUM_UNITS]
    signed char engaged[NUM_UNITS]
    signed char los[NUM_UNITS][NUM_UNITS]   # -1 unknown, 0 blocked, 1 clear
