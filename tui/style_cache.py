"""Lets widgets that left the screen be collected, despite Textual's StylesCache leak.

Textual 8 caches `StylesCache.get_inner_outer` with an `lru_cache(1024)` on the instance method, so up to
1,024 widgets' style caches (each with its rendered lines) outlive their widgets (Textualize/textual#6665,
open). trainctl drops widgets as it goes (the metric plots of each newly selected run, every screen popped),
and the dead ones made every garbage collection longer: the slow keys of the latency bench were full
collections. Emptying the cache costs the live widgets one recomputation of two styles each.
"""

from __future__ import annotations

from textual._styles_cache import StylesCache

# Entries kept before emptying: a screen holds about a hundred widgets, so most of these are live ones.
RETAINED_MAX = 256


def release_dropped_widgets() -> None:
    """Empty the leaking cache once it holds more than RETAINED_MAX widgets' entries."""
    cache = StylesCache.get_inner_outer
    if cache.cache_info().currsize > RETAINED_MAX:
        cache.cache_clear()
