"""The bucket plan: bins of bucket_width steps, merged where the cost model says that is cheaper."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.sequences import plan_buckets


def cost_of(buckets, lengths, per_step, per_cell) -> float:
    return sum(int(lengths[rows].max()) * (per_step + per_cell * len(rows)) for rows in buckets)


def every_plan(lengths, width):
    """Brute force: every way to cut the sorted bins into contiguous buckets."""
    bins: dict[int, list[int]] = {}
    for row, size in enumerate(lengths):
        bins.setdefault((size - 1) // width, []).append(row)
    groups = [bins[key] for key in sorted(bins)]
    for cuts in itertools.product([False, True], repeat=len(groups) - 1):
        plan, current = [], list(groups[0])
        for cut, group in zip(cuts, groups[1:]):
            if cut:
                plan.append(np.array(current))
                current = []
            current += group
        plan.append(np.array(current))
        yield plan


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 60), min_size=1, max_size=12), width=st.integers(1, 8),
       per_step=st.floats(0.0, 100.0), per_cell=st.floats(0.01, 10.0))
def test_the_plan_is_the_cheapest_of_all_contiguous_plans(lengths, width, per_step, per_cell):
    lengths = np.array(lengths)
    plan = plan_buckets(lengths, width, (per_step, per_cell))
    assert sorted(np.concatenate(plan).tolist()) == list(range(len(lengths)))       # every row once
    for rows in plan:     # a bucket spans whole bins of `width`: rows of one bin never split
        bins = {(int(n) - 1) // width for n in lengths[rows]}
        others = [r for r in range(len(lengths)) if r not in set(rows.tolist())]
        assert not bins & {(int(lengths[r]) - 1) // width for r in others}
    best = min(cost_of(p, lengths, per_step, per_cell) for p in every_plan(lengths.tolist(), width))
    assert np.isclose(cost_of(plan, lengths, per_step, per_cell), best, rtol=1e-9, atol=1e-9)


def test_without_a_cost_each_bin_is_a_bucket_and_without_a_step_cost_nothing_merges():
    lengths = np.array([5, 1, 2, 3, 9, 10])
    assert [sorted(b.tolist()) for b in plan_buckets(lengths, 2)] == [[1, 2], [3], [0], [4, 5]]
    assert len(plan_buckets(lengths, 2, (0.0, 1.0))) == 4


def test_a_large_step_cost_pads_everything_into_one_bucket():
    lengths = np.array([5, 1, 2, 3, 9, 10])
    assert [sorted(b.tolist()) for b in plan_buckets(lengths, 2, (1e6, 1.0))] == [[0, 1, 2, 3, 4, 5]]
