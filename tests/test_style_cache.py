"""tui.style_cache: the widgets Textual's leaking StylesCache cache keeps alive are let go past a size."""

from __future__ import annotations

import gc
import weakref

from textual._styles_cache import StylesCache
from textual.color import Color

from tui.style_cache import RETAINED_MAX, release_dropped_widgets


def _fill(count: int) -> list[weakref.ref[StylesCache]]:
    """`count` style caches of widgets that no longer exist, each with its entry in the leaking cache."""
    refs = []
    for _ in range(count):
        cache = StylesCache()
        cache.get_inner_outer(Color(0, 0, 0), Color(10, 20, 30))
        refs.append(weakref.ref(cache))
    return refs


def test_dropped_widgets_stay_alive_up_to_the_bound_and_are_collected_past_it() -> None:
    StylesCache.get_inner_outer.cache_clear()
    kept = _fill(RETAINED_MAX)
    release_dropped_widgets()
    gc.collect()
    assert all(ref() is not None for ref in kept)  # within the bound: the cache is left as it is

    past = _fill(1)
    release_dropped_widgets()
    gc.collect()
    assert all(ref() is None for ref in kept + past)  # the leak held them; emptied, nothing does
