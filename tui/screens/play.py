"""Play Beasty Bar against an agent with the keyboard (engine.play.HumanGame on the rules reference).

The board: the queue (front first), heaven (the bar: cards that score) and hell (the alley: cards
thrown out), each card with its owner (you are A, the agent B), both players' bar points, your hand
and the agent's hand as a count only. Your legal plays are listed below it: a number key plays one
(1-9), or the arrows and enter. After each of the agent's turns its move is shown with its top-3
actions by the masked softmax of its policy (a scripted agent has none). `n` deals the next game (the
next seed), `esc` goes back. Opened by `trainctl play CKPT|RUN` and by `p` on a Beasty Bar run of the
runs screen; the agent is loaded before the screen opens (engine.players, as `trainctl eval` loads it).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from engine.play import AGENT, HUMAN, HumanGame, Move
from engine.players import NeuralPlayer, Player
from envs.beastybar import rules
from tui.format import short_name

NUMBER_KEYS = 9


def _owner(seat: int) -> str:
    return "you" if seat == HUMAN else "agent"


def pile_text(cards: list[rules.Card]) -> str:
    """Cards grouped by owner: `you: lion zebra · agent: seal`, or `-` for none."""
    groups = [f"{_owner(seat)}: {' '.join(rules.SPECIES[s] for o, s in cards if o == seat)}"
              for seat in (HUMAN, AGENT) if any(o == seat for o, _ in cards)]
    return " · ".join(groups) or "-"


def move_text(move: Move, q_values: bool = False) -> Text:
    """`Agent played lion` and, for a network, its top actions with their probabilities."""
    text = Text(f"{'You' if move.seat == HUMAN else 'Agent'} played ")
    text.append(rules.action_name(move.action), style="bold")
    if move.top:
        kind = "softmax of Q" if q_values else "top-3"
        text.append(f"   {kind}: " + " · ".join(f"{rules.action_name(a)} {100 * p:.0f}%" for a, p in move.top),
                    style="dim")
    return text


class PlayScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", key_display="esc"),
        *(Binding(str(k), f"play({k - 1})", "Play", show=k == 1, key_display=f"1-{NUMBER_KEYS}")
          for k in range(1, NUMBER_KEYS + 1)),
        Binding("n", "new_game", "New game"),
    ]

    def __init__(self, agent: Player, first: str = "random", seed: int = 0) -> None:
        """`first`: rules.FIRSTS from your side ("agent": you move first); `seed`: the first game's deal."""
        super().__init__()
        self.agent, self.first, self.seed = agent, first, seed
        self.games_played = 0
        self.game = HumanGame(agent, seed, first)
        self.last_agent_move: Move | None = None
        self.score = [0, 0, 0]  # your wins, draws, the agent's wins over the games of this screen
        self.counted = False  # whether the finished game is in `score` yet

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="play-board")
        yield Static(id="play-agent-move")
        yield OptionList(id="play-moves")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"you (A) vs {short_name(self.agent.spec, 32)} (B)"
        self._agent_turns()
        self.query_one(OptionList).focus()

    # -- the game -----------------------------------------------------------------------------------
    def _agent_turns(self) -> None:
        """The agent plays while it is its turn (once: the players alternate), then the screen is drawn."""
        while not self.game.over and not self.game.human_to_move:
            self.last_agent_move = self.game.play_agent()
        if self.game.over and not self.counted:
            self.counted = True
            self.score[1 - self.game.result()] += 1
        self._show()

    def action_play(self, index: int) -> None:
        legal = self.game.legal_actions()
        if not self.game.human_to_move or not 0 <= index < len(legal):
            return
        self.game.play_human(legal[index])
        self._agent_turns()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_play(event.option_index)

    def action_new_game(self) -> None:
        self.games_played += 1
        self.game = HumanGame(self.agent, self.seed + self.games_played, self.first)
        self.last_agent_move = None
        self.counted = False
        self._agent_turns()

    def action_back(self) -> None:
        self.dismiss(None)

    # -- drawing ------------------------------------------------------------------------------------
    def _show(self) -> None:
        game, state = self.game, self.game.state
        mine, theirs = game.points()
        won, drawn, lost = self.score
        starter = "you" if state.first == HUMAN else "the agent"
        board = Text()
        board.append(f"game {self.games_played + 1} · seed {game.seed} · {starter} started · "
                     f"turn {min(state.turn + 1, 2 * rules.CARDS_PER_PLAYER)}/{2 * rules.CARDS_PER_PLAYER}"
                     f" · you won {won}, drew {drawn}, lost {lost}\n", style="dim")
        board.append("queue  ", style="bold")
        board.append(f"{rules.format_cards(state.queue) or '-'}   (front first, next to heaven; you are A)\n")
        board.append("heaven ", style="bold green")
        board.append(f"{pile_text(state.bar)}   points: you {mine} · agent {theirs}\n")
        board.append("hell   ", style="bold red")
        board.append(f"{pile_text(state.thrown_out)}\n")
        board.append("you    ", style="bold")
        board.append(f"{' '.join(rules.SPECIES[s] for s in sorted(state.hands[HUMAN])) or '-'}"
                     f"   ({len(state.piles[HUMAN])} in your pile)\n")
        board.append("agent  ", style="bold")
        board.append(f"{len(state.hands[AGENT])} cards in hand, {len(state.piles[AGENT])} in its pile")
        self.query_one("#play-board", Static).update(board)
        q_values = isinstance(self.agent, NeuralPlayer) and self.agent.q_values
        move = self.last_agent_move
        self.query_one("#play-agent-move", Static).update(
            move_text(move, q_values) if move is not None else Text("the agent has not played yet", style="dim"))
        moves = self.query_one(OptionList)
        moves.clear_options()
        if game.over:
            result = game.result()
            verdict = {1: "You win", -1: "The agent wins", 0: "A draw"}[result]
            moves.add_option(Option(Text(f"{verdict}, {mine}-{theirs}. n: another game, esc: back", style="bold"),
                                    disabled=True))
            return
        for k, action in enumerate(game.legal_actions()):
            key = str(k + 1) if k < NUMBER_KEYS else " "
            moves.add_option(Option(f"{key}  {rules.action_name(action)}"))
        moves.highlighted = 0
