# The Beasty Bar core's C layout: its sizes, species ids, the rules tables and one game's state.
# See beastybar_core.pyx; the layout in words is envs/beastybar/rules.py.
from libc.stdint cimport int8_t, int16_t, uint16_t, uint64_t

from ext.rng cimport Rng


cdef enum:
    NUM_SPECIES = 12
    QUEUE_CAPACITY = 5
    NUM_ACTIONS = 33
    OBS_SIZE = 160
    TURNS_PER_GAME = 24
    HAND_SIZE = 4
    SLOT_SIZE = 14
    MAX_THROWN = 8

# Species ids (the rules' order); a card is the int owner * NUM_SPECIES + species.
cdef enum:
    LION = 0
    HIPPO = 1
    CROCODILE = 2
    SNAKE = 3
    GIRAFFE = 4
    ZEBRA = 5
    SEAL = 6
    MONKEY = 7
    SKUNK = 8
    KANGAROO = 9
    PARROT = 10
    CHAMELEON = 11
    NO_ACTION = -1

# An opponent whose actions come from outside the core (Game.opponent).
cdef enum:
    EXTERNAL = -1

# Game.stage: a step moves each game AT_DECISION -> (WAIT_REPLY ->) REPLIED -> AT_DECISION, or, when the
# game ends and the next is dealt, REPLIED -> DEALT (-> WAIT_OPENING) -> OPENED -> AT_DECISION. The WAIT_
# stages wait for an external opponent's action (`opponent_step`).
cdef enum:
    AT_DECISION = 0             # published: the agent is to move (or the game is over, without auto-reset)
    WAIT_REPLY = 1              # the external opponent is to reply to the agent's turn
    REPLIED = 2                 # the turn's reply is played (or the game ended): results to write
    DEALT = 3                   # a new game: its opening (if the opponent starts) to play
    WAIT_OPENING = 4            # the external opponent is to play the opening turn
    OPENED = 5                  # the agent's first decision to publish


# The rules numbers, copied once from envs.beastybar.rules.core_tables(); shared by every game of a core.
cdef struct Tables:
    int strength[NUM_SPECIES]
    int points[NUM_SPECIES]


cdef struct Queue:
    int8_t cards[6]
    int length


cdef struct Outcome:
    # Cards that entered the bar / were thrown out during one play, in arrival order.
    int8_t bar[2]
    int bar_length
    int8_t thrown[MAX_THROWN]
    int thrown_length


cdef struct Game:
    Rng rng
    Queue queue
    uint16_t hand[2]            # species bitmask
    int8_t deck[2][12]          # shuffled species; deck[p][next_draw[p]:] is the draw pile
    int8_t next_draw[2]
    uint16_t pile_species[2]    # species bitmask of deck[p][next_draw[p]:]
    uint16_t bar_species[2]
    uint16_t thrown_species[2]
    int16_t bar_points[2]
    int16_t bar_count[2]
    int16_t bar_strength[2]
    int8_t turns                # turns played so far, 0..24
    int8_t first                # the player who started
    int8_t agent_steps          # agent decisions in this episode
    uint64_t legal              # the agent's legal actions (bit a = action a); 0 when over
    int8_t opponent             # this game's opponent: an index of OPPONENTS, or EXTERNAL
    int8_t stage                # where the game is in a step: one of the stages below
