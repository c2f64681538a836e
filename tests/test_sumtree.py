"""The C sum-tree against plain numpy: sampling frequencies, exact totals, the descent, bad input."""

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from ext.sumtree import SumTree


def tree_with(leaves: np.ndarray, seed: int = 0) -> SumTree:
    tree = SumTree(len(leaves), seed=seed)
    tree.update(np.arange(len(leaves), dtype=np.int64), np.asarray(leaves, dtype=np.float64))
    return tree


def draw(tree: SumTree, batch_size: int, beta: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    indices = np.empty(batch_size, dtype=np.int64)
    weights = np.empty(batch_size, dtype=np.float32)
    tree.sample(batch_size, beta, indices, weights)
    return indices, weights


def test_sampling_frequencies_match_priorities_chi_square_on_a_million_draws() -> None:
    rng = np.random.default_rng(1)
    priorities = rng.exponential(1.0, 60)
    priorities[[3, 17, 59]] = 0.0  # never to be drawn, the last leaf included
    tree = tree_with(priorities, seed=7)
    counts = np.zeros(len(priorities), dtype=np.int64)
    for _ in range(4000):
        counts += np.bincount(draw(tree, 250)[0], minlength=len(priorities))
    assert counts.sum() == 1_000_000
    assert counts[[3, 17, 59]].sum() == 0
    positive = priorities > 0
    expected = priorities[positive] / priorities.sum() * counts.sum()
    assert chisquare(counts[positive], expected).pvalue > 1e-3


def test_a_shifted_distribution_fails_the_same_check() -> None:
    # The chi-square above can fail: frequencies from other priorities are rejected by it.
    rng = np.random.default_rng(1)
    priorities = rng.exponential(1.0, 60)
    skewed = priorities.copy()
    skewed[0] *= 1.2
    tree = tree_with(skewed, seed=7)
    counts = np.zeros(len(priorities), dtype=np.int64)
    for _ in range(4000):
        counts += np.bincount(draw(tree, 250)[0], minlength=len(priorities))
    expected = priorities / priorities.sum() * counts.sum()
    assert chisquare(counts, expected).pvalue < 1e-6


def test_total_stays_exact_over_a_long_update_sequence() -> None:
    rng = np.random.default_rng(2)
    capacity = 5000
    tree = tree_with(rng.exponential(1.0, capacity))
    for _ in range(400):
        indices = rng.integers(0, capacity, 256)
        values = rng.exponential(1.0, 256) * rng.choice([1e-6, 1.0, 1e6], 256)
        tree.update(indices, values)
    leaves = tree.leaves()
    rebuilt = tree_with(leaves)
    assert tree.total == rebuilt.total  # bit for bit: no drift from 100,000 updates
    assert math.isclose(tree.total, math.fsum(leaves), rel_tol=1e-12)
    assert tree.min_priority == leaves[leaves > 0].min()


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=700),
    batches=st.lists(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=10**6),
                st.one_of(
                    st.just(0.0),
                    st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False),
                ),
            ),
            min_size=1,
            max_size=40,
        ),
        min_size=1,
        max_size=12,
    ),
    fractions=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=20),
)
def test_random_update_sequences_match_a_numpy_model(
    capacity: int, batches: list[list[tuple[int, float]]], fractions: list[float]
) -> None:
    tree = SumTree(capacity, seed=3)
    model = np.zeros(capacity)
    for batch in batches:
        indices = np.array([i % capacity for i, _ in batch], dtype=np.int64)
        values = np.array([v for _, v in batch])
        tree.update(indices, values)
        model[indices] = values  # numpy also keeps the last of repeated indices
        assert np.array_equal(tree.leaves(), model)
        assert tree.total == tree_with(model).total
        assert math.isclose(tree.total, math.fsum(model), rel_tol=1e-12, abs_tol=0.0)
        positive = model[model > 0]
        assert tree.min_priority == (positive.min() if positive.size else math.inf)
    if tree.total == 0:
        return
    cumulative = np.cumsum(model)
    prefixes = np.array(fractions) * tree.total
    found = tree.find(prefixes)
    tolerance = 1e-9 * tree.total
    for prefix, leaf in zip(prefixes, found, strict=True):
        assert model[leaf] > 0
        start = cumulative[leaf] - model[leaf]
        assert start - tolerance <= prefix <= cumulative[leaf] + tolerance
    drawn, weights = draw(tree, 64, beta=0.7)
    assert (model[drawn] > 0).all()
    np.testing.assert_allclose(weights, (positive.min() / model[drawn]) ** 0.7, rtol=1e-6)


def test_a_draw_past_the_end_lands_on_the_last_positive_leaf() -> None:
    leaves = np.zeros(1000)
    leaves[[10, 500]] = [1.0, 2.0]
    tree = tree_with(leaves)
    past = np.array([tree.total, tree.total * (1 + 1e-12), tree.total * 2])
    assert tree.find(past).tolist() == [500, 500, 500]
    assert tree.find(np.array([0.0, 0.999, 1.0, 2.999])).tolist() == [10, 10, 500, 500]
    with pytest.raises(ValueError, match=r"prefix -0\.5"):
        tree.find(np.array([1.0, -0.5]))


def test_sampling_is_stratified_and_seeded() -> None:
    rng = np.random.default_rng(4)
    leaves = rng.exponential(1.0, 3000)
    first, _ = draw(tree_with(leaves, seed=11), 128)
    again, _ = draw(tree_with(leaves, seed=11), 128)
    other, _ = draw(tree_with(leaves, seed=12), 128)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    # Draw i comes from stratum i: its leaf's cumulative range meets [i, i + 1) * total / 128.
    cumulative = np.cumsum(leaves)
    stratum = cumulative[-1] / 128
    for i, leaf in enumerate(first):
        assert cumulative[leaf] - leaves[leaf] <= (i + 1) * stratum * (1 + 1e-12)
        assert cumulative[leaf] >= i * stratum * (1 - 1e-12)


@pytest.mark.parametrize("bad", [math.nan, -1.0, math.inf, -math.inf])
def test_a_bad_priority_is_refused_by_index_and_the_tree_is_untouched(bad: float) -> None:
    tree = tree_with(np.arange(1.0, 11.0))
    before, total = tree.leaves(), tree.total
    with pytest.raises(ValueError, match=r"index 7 \(batch position 2\)"):
        tree.update(np.array([1, 2, 7, 3]), np.array([5.0, 5.0, bad, 5.0]))
    assert np.array_equal(tree.leaves(), before)
    assert tree.total == total


def test_out_of_range_indices_and_empty_trees_are_refused() -> None:
    tree = SumTree(10)
    with pytest.raises(IndexError, match="index 10"):
        tree.update(np.array([10]), np.array([1.0]))
    with pytest.raises(IndexError, match="index -1"):
        tree.get(np.array([-1]))
    with pytest.raises(ValueError, match="total is 0"):
        draw(tree, 4)
    with pytest.raises(IndexError):
        tree.fill(8, 3, 1.0)
    with pytest.raises(ValueError):
        SumTree(0)


def test_fill_and_get() -> None:
    tree = SumTree(100)
    tree.fill(20, 30, 2.5)
    assert tree.total == 75.0
    assert tree.get(np.array([19, 20, 49, 50])).tolist() == [0.0, 2.5, 2.5, 0.0]
    tree.fill(0, 100, 0.0)
    assert tree.total == 0.0
    assert tree.min_priority == math.inf


def test_pickle_keeps_leaves_and_the_sample_stream() -> None:
    tree = tree_with(np.random.default_rng(5).exponential(1.0, 777), seed=9)
    draw(tree, 16)
    copy = pickle.loads(pickle.dumps(tree))
    assert np.array_equal(copy.leaves(), tree.leaves())
    assert copy.total == tree.total
    assert np.array_equal(draw(copy, 32)[0], draw(tree, 32)[0])
