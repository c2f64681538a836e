"""The training engine: trainers, perf timing, the run store, profiles, evaluation, export, bench.

Importable without the TUI: nothing under engine/ imports Textual.
"""
