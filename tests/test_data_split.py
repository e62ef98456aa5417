"""Stratified split invariants, checked on random label sets (hypothesis).

Run: ``.venv/bin/pytest tests/test_data_split.py``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.data.split import apportion, stratified_split


@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.integers(1, 60), min_size=2, max_size=8),
       val=st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.5]), test=st.sampled_from([0.0, 0.1, 0.2]),
       seed=st.integers(0, 3))
def test_split_is_a_stratified_partition(counts: list[int], val: float, test: float, seed: int) -> None:
    labels = np.repeat(np.arange(len(counts)), counts)
    tr, va, te = stratified_split(labels, val=val, test=test, seed=seed)
    everything = np.concatenate([tr, va, te])
    assert sorted(everything.tolist()) == list(range(len(labels)))  # a partition: disjoint, complete
    for k, n in enumerate(counts):
        n_tr, n_va, n_te = (int(np.sum(labels[s] == k)) for s in (tr, va, te))
        assert n_tr >= 1  # every class keeps a training image
        if val > 0 and n >= 2:
            assert n_va >= 1
        # within one image of the exact share, unless a class was too small to give one
        assert abs(n_va - n * val) <= 1.0 + (n < 4)
        assert abs(n_te - n * test) <= 1.0 + (n < 4)
    again = stratified_split(labels, val=val, test=test, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again, strict=True))  # fixed seed


def test_apportion_hits_the_total_exactly() -> None:
    counts = np.array([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])  # MNIST test set
    got = apportion(counts, 0.1)
    assert got.sum() == 1000 and np.all(np.abs(got - counts * 0.1) < 1)
