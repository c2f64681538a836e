# The soccer core's C layout: the rules tables and one game's state. See soccer_core.pyx.
from ext.rng cimport Rng


cdef enum:
    OBS_SIZE = 18
    ACTION_SIZE = 2
    NUM_PARTS = 4
    STATE_SIZE = 12


# The rules numbers, copied once from envs.soccer.rules.core_tables(), with the options the core was built
# with; shared by every game of a core.
cdef struct Tables:
    double dt, half_length, half_width, goal_half_width
    double car_radius, car_accel, car_drag, car_max_speed, car_max_reverse, car_turn_rate
    double ball_radius, ball_friction, wall_restitution, car_restitution, ball_max_speed
    double kickoff_x, kickoff_step
    int kickoff_positions
    double steer_gain, aim_offset, goalie_depth, goalie_reach, goalie_slow
    double distance_scale, goal_diff_cap
    double weights[NUM_PARTS]
    int max_steps
    int side                        # index in SIDES (2: random, drawn per episode)
    int opponent                    # index in OPPONENTS


cdef struct Car:
    double x, y, heading, speed
    double cos_h, sin_h             # cos and sin of heading, kept with it (the same bits as computing them anew)


cdef struct Ball:
    double x, y, vx, vy


cdef struct Game:
    Rng rng
    Car cars[2]                     # 0: the left car (attacks +x), 1: the right car
    Ball ball
    int agent                       # the car the agent drives
    int goals[2]                    # per car
    int steps
    bint over
    double parts[NUM_PARTS]         # this step's weighted reward parts
    double ep_parts[NUM_PARTS]      # their sums over the running episode
    double ep_return                # running return (of the float32 rewards) and length
    int ep_length
    # The last finished episode, for end_info (auto_reset overwrites the rest).
    int end_goals_for, end_goals_against, end_agent
    double end_parts[NUM_PARTS]
