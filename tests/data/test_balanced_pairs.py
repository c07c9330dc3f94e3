"""Validation and evaluation pairs are balanced on any set: as many 'same' as 'different' pairs.

On a small set all the same pairs may be fewer than half of n_pairs while different pairs are
plentiful; unbalanced, a model answering always "different" would score well above 50%.
"""

from __future__ import annotations

import numpy as np

from siamese_core.data.sources import evaluation_pairs


def assert_pairs_are_right(labels, a, b, same):
    """Each unordered pair once, two distinct images, and 'same' true exactly for one class."""
    unordered = {(min(i, j), max(i, j)) for i, j in zip(a.tolist(), b.tolist())}
    assert len(unordered) == len(a)
    assert (a != b).all()
    assert np.array_equal(labels[a] == labels[b], same == 1)


def test_a_small_set_gives_every_same_pair_and_as_many_different_ones():
    labels = np.repeat(np.arange(3), 10)  # 3 x C(10, 2) = 135 same pairs; 300 different pairs exist
    a, b, same = evaluation_pairs(labels, 1000, seed=0)
    assert_pairs_are_right(labels, a, b, same)
    assert (same == 1).sum() == 135 and (same == 0).sum() == 135
    # Always answering "different" is now a coin toss, not the 69% it scored before.
    assert (same == 0).mean() == 0.5
    # The different pairs kept are a random share of the 300: every pair of classes is among them.
    assert {(labels[i], labels[j]) for i, j in zip(a[same == 0], b[same == 0])} >= {(0, 1), (0, 2), (1, 2)}


def test_the_cut_is_fixed_by_the_seed_and_changes_with_it():
    labels = np.repeat(np.arange(3), 10)
    first, again, other = (evaluation_pairs(labels, 1000, seed=s) for s in (4, 4, 5))
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_a_large_set_gives_exactly_half_of_each_in_shuffled_order():
    labels = np.repeat(np.arange(10), 50)  # ample pairs of both kinds
    a, b, same = evaluation_pairs(labels, 600, seed=1)
    assert_pairs_are_right(labels, a, b, same)
    assert (same == 1).sum() == 300 and (same == 0).sum() == 300
    assert 0 < same[:100].sum() < 100  # shuffled, not all same pairs first
    _, _, odd = evaluation_pairs(labels, 101, seed=1)
    assert (odd == 1).sum() == (odd == 0).sum() == 50  # an odd count cannot split evenly: one fewer
