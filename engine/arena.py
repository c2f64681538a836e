"""Evaluation of one player against a list, and round robins among several, as tables and records.

`evaluate_subject(subject, opponents, games, seed)` plays one match per opponent (engine.matches, the
same paired deals for every pairing: each deal with each player moving first) and gives a row per
opponent: win/draw/loss, the win rate with its Wilson 95 % interval, mean point margin, mean game
length in turns, and the subject's raw illegal-move rate (how often its network's unmasked argmax was
illegal: the rate at which it would have needed a fallback; None for a player that is not a network).
`eval_event` is those rows as the run folder's `eval` event (docs/events.md).

`round_robin(players, games, seed)` plays every pairing once, then fits Bradley-Terry ratings
(engine.ratings); `Arena.verdict(candidate, reference)` applies the acceptance rule of
docs/evaluation.md: GO when no pairing is significantly worse for the candidate than for the reference
and its fallback rate did not rise significantly. The text tables are here too; the CLI prints and
saves them. Nothing here writes files or prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.evaluate import Outcomes, wilson_interval
from engine.matches import MatchResult, paired_deals, play_match
from engine.players import Player
from engine.ratings import PairScore, Rating, fit_ratings

Progress = Callable[[str], None]
ARENA_FORMAT = "trainctl.arena/1"
"""The `format` of a saved arena.json (engine.arena_file reads it)."""


def _quiet(_line: str) -> None:
    """The default progress sink: says nothing."""


# -- eval -----------------------------------------------------------------------------------------
def evaluate_subject(subject: Player, opponents: Sequence[Player], games: int, seed: int,
                     progress: Progress = _quiet) -> list[MatchResult]:
    """One match of `games` games against each opponent, from the subject's side, same deals for all."""
    deals = paired_deals(games, seed)
    results = []
    for opponent in opponents:
        results.append(play_match(subject, opponent, deals))
        progress(f"{subject.spec} vs {opponent.spec}: done")
    return results


def eval_row(result: MatchResult) -> dict[str, Any]:
    """A pairing's figures from its first player's side, as plain JSON values."""
    o = result.outcomes
    low, high = o.win_rate_interval()
    return {"opponent": result.second, "games": o.games, "wins": o.wins, "draws": o.draws, "losses": o.losses,
            "win_rate": o.win_rate, "win_low": low, "win_high": high, "margin": result.mean_margin,
            "turns": result.mean_turns, "illegal_rate": result.illegal_rate(0), "stopped": result.stopped}


def eval_event(step: int, checkpoint: str, games: int, seed: int, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The `eval` event of docs/events.md: a checkpoint's table against its opponents."""
    return {"t": time.time(), "step": int(step), "kind": "eval", "checkpoint": checkpoint, "games": int(games),
            "seed": int(seed), "rows": [dict(row) for row in rows]}


def _percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def format_eval_table(subject: str, rows: Sequence[dict[str, Any]]) -> str:
    """The eval rows as a fixed-width table under a title line naming the subject."""
    goals = any("goals_for" in row for row in rows)  # soccer's rows: goals instead of illegal moves
    header = ("OPPONENT", "GAMES", "W", "D", "L", "WIN", "95% CI", "MARGIN", "TURNS", "GOALS" if goals else "ILLEGAL")
    table: list[tuple[str, ...]] = [header]
    notes = []
    for row in rows:
        interval = f"{100 * row['win_low']:.1f}-{100 * row['win_high']:.1f}%"
        last = (f"{row['goals_for']:.2f}:{row['goals_against']:.2f}" if goals else _percent(row["illegal_rate"], 2))
        table.append((row["opponent"], str(row["games"]), str(row["wins"]), str(row["draws"]), str(row["losses"]),
                      _percent(row["win_rate"]), interval, f"{row['margin']:+.2f}", f"{row['turns']:.1f}", last))
        if row.get("stopped"):
            notes.append(f"stopped  {row['opponent']}: {row['stopped']}")
    return "\n".join([f"eval of {subject}", _columns(table), *notes])


def _columns(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


# -- arena ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arena:
    """A round robin's results: `players` (specs, in the order given), `results[(i, j)]` for i < j from
    i's side, each player's Bradley-Terry `ratings` (anchored on `anchor`) and raw illegal-move counts."""

    players: tuple[str, ...]
    games: int
    seed: int
    results: dict[tuple[int, int], MatchResult]
    ratings: tuple[Rating, ...]
    anchor: int
    illegal: tuple[tuple[int, int], ...]  # per player: (raw illegal argmaxes, decisions); (0, 0) if not neural

    def result(self, i: int, j: int) -> MatchResult:
        """The games between i and j from i's side."""
        return self.results[(i, j)] if i < j else self.results[(j, i)].turned()

    def fallback(self, k: int) -> tuple[float, float, float] | None:
        """Player k's raw illegal-move rate over all its games and its Wilson interval; None if not neural."""
        bad, decisions = self.illegal[k]
        if not decisions:
            return None
        low, high = wilson_interval(bad, decisions)
        return bad / decisions, low, high

    def verdict(self, candidate: int, reference: int) -> tuple[bool, list[str]]:
        """(GO?, reasons against): a pairing is significantly worse when, against the same opponent, the
        reference's win-rate interval lies wholly above the candidate's (head to head: the reference's
        wins above the candidate's); the fallback rate rose when the candidate's interval lies wholly
        above the reference's (only between two networks)."""
        reasons = []
        for k in range(len(self.players)):
            if k in (candidate, reference):
                continue
            mine, theirs = self.result(candidate, k), self.result(reference, k)
            if _complete(mine, theirs) and theirs.outcomes.beats(mine.outcomes):
                reasons.append(f"vs {self.players[k]}: {_percent(mine.outcomes.win_rate)} < "
                               f"{_percent(theirs.outcomes.win_rate)} for the reference")
        head = self.result(candidate, reference)
        flipped = Outcomes(head.outcomes.losses, head.outcomes.draws, head.outcomes.wins)
        if _complete(head) and flipped.beats(head.outcomes):
            reasons.append(f"head to head: wins {head.outcomes.wins} vs {head.outcomes.losses} of {head.games}")
        mine_f, theirs_f = self.fallback(candidate), self.fallback(reference)
        if mine_f is not None and theirs_f is not None and mine_f[1] > theirs_f[2]:
            reasons.append(f"fallback rate rose: {_percent(mine_f[0], 2)} vs {_percent(theirs_f[0], 2)}")
        return not reasons, reasons

    def to_json(self, reference: int | None = None) -> dict[str, Any]:
        """Everything the tables show, as plain JSON values (the arena.json of docs/evaluation.md):
        `matrix[i][j]` is player i's win rate against j (None on the diagonal and for a pairing that
        played no game); with a reference, one verdict per other player."""
        verdicts = []
        for k in range(len(self.players)):
            if reference is not None and k != reference:
                go, reasons = self.verdict(k, reference)
                verdicts.append({"player": self.players[k], "go": go, "reasons": reasons})
        return {
            "format": ARENA_FORMAT, "players": list(self.players), "games": self.games, "seed": self.seed,
            "anchor": self.players[self.anchor], "reference": None if reference is None else self.players[reference],
            "ratings": [{"player": p, "rating": r.rating, "error": r.error, "fallback": self.fallback(k)}
                        for k, (p, r) in enumerate(zip(self.players, self.ratings, strict=True))],
            "matrix": [[None if i == j or not self.result(i, j).games else self.result(i, j).outcomes.win_rate
                        for j in range(len(self.players))] for i in range(len(self.players))],
            "pairings": [{"player": self.players[i], **eval_row(result)} for (i, _j), result in
                         sorted(self.results.items())],
            "verdicts": verdicts,
        }


def _complete(*results: MatchResult) -> bool:
    return all(r.stopped is None and r.games for r in results)


def round_robin(players: Sequence[Player], games: int, seed: int, anchor: int = 0,
                progress: Progress = _quiet) -> Arena:
    """Every pairing of `players` plays `games` games on the same paired deals; ratings anchored on
    player `anchor` (1500), from the pairings that were not stopped."""
    deals = paired_deals(games, seed)
    results: dict[tuple[int, int], MatchResult] = {}
    bad = [0] * len(players)
    decisions = [0] * len(players)
    for i in range(len(players)):
        for j in range(i + 1, len(players)):
            result = play_match(players[i], players[j], deals)
            results[(i, j)] = result
            for side, k in enumerate((i, j)):
                if result.neural[side]:
                    bad[k] += result.raw_illegal[side]
                    decisions[k] += result.decisions[side]
            progress(f"{players[i].spec} vs {players[j].spec}: {result.outcomes.wins}-{result.outcomes.draws}-"
                     f"{result.outcomes.losses}" + (" (stopped)" if result.stopped else ""))
    scores = [PairScore(i, j, r.outcomes.wins, r.outcomes.draws, r.outcomes.losses) for (i, j), r in results.items()
              if r.stopped is None]  # a stopped pairing is no evidence either way (its prior draw neither)
    ratings = fit_ratings(len(players), scores, anchor)
    return Arena(tuple(p.spec for p in players), games, seed, results, tuple(ratings), anchor,
                 tuple(zip(bad, decisions, strict=True)))


def format_arena(arena: Arena, reference: int | None) -> str:
    """The rating table (best first), the head-to-head matrix of win rates (row player's), stopped
    pairings, and with a reference one verdict line per other player."""
    names = arena.players
    order = sorted(range(len(names)), key=lambda k: -arena.ratings[k].rating)
    ratings = [("#", "PLAYER", "ELO", "+-95%", "FALLBACK")]
    for rank, k in enumerate(order, 1):
        r, fallback = arena.ratings[k], arena.fallback(k)
        ratings.append((str(rank), names[k], f"{r.rating:.0f}", "anchor" if k == arena.anchor else
                        f"{1.96 * r.error:.0f}", "-" if fallback is None else _percent(fallback[0], 2)))
    short = [f"P{k + 1}" for k in range(len(names))]
    matrix = [("", *short)]
    for i in range(len(names)):
        matrix.append((short[i], *("" if i == j else _percent(arena.result(i, j).outcomes.win_rate, 0)
                                   for j in range(len(names)))))
    lines = [f"arena: {len(names)} players, {arena.games} games a pairing, seed {arena.seed}",
             _columns(ratings), "", "head to head (row player's win rate):", _columns(matrix),
             *(f"  {s} = {n}" for s, n in zip(short, names, strict=True))]
    lines += [f"stopped  {r.first} vs {r.second}: {r.stopped}" for r in arena.results.values() if r.stopped]
    if reference is not None:
        for k in range(len(names)):
            if k != reference:
                go, reasons = arena.verdict(k, reference)
                lines.append(f"verdict  {names[k]} vs reference {names[reference]}: "
                             + ("GO" if go else "NO-GO (" + "; ".join(reasons) + ")"))
    return "\n".join(lines)
