"""Several images associated at once give exactly what associating each alone gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssassoc.core import SsSingleFrameAssociationTask
from ssassoc.core.inputs import DuplicateIdError
from ssassoc.core.sample_data import synthetic_field


def _field(seed: int, *, n_objects: int = 20, ra: float = 186.0, dec: float = 7.0, same_ids: bool = False):
    kwargs = {"first_object_id": 10**15, "first_source_id": 10**12} if same_ids else {}
    return synthetic_field(
        rng=np.random.default_rng(seed), n_sources=200, n_objects=n_objects, ra_deg=ra, dec_deg=dec, **kwargs
    )


def _assert_same(single, batched) -> None:
    assert batched.nTotalSsObjects == single.nTotalSsObjects
    assert batched.nAssociatedSsObjects == single.nAssociatedSsObjects
    assert batched.metadata == single.metadata
    for name, values in single.ssSourceColumns.items():
        other = np.asarray(batched.ssSourceColumns[name])
        if np.asarray(values).dtype.kind == "f":
            np.testing.assert_array_equal(np.asarray(values), other, err_msg=name)
        else:
            assert list(values) == list(other), name
    assert list(batched.unassociatedSsObjectColumns()["ssObjectId"]) == list(
        single.unassociatedSsObjectColumns()["ssObjectId"]
    )


@settings(max_examples=15, deadline=None)
@given(
    seeds=st.lists(st.integers(0, 10_000), min_size=1, max_size=6),
    same_ids=st.booleans(),
    adjacent=st.booleans(),
    matching=st.sampled_from(["optimal", "greedy"]),
)
def test_batch_equals_one_by_one(seeds, same_ids, adjacent, matching):
    # adjacent: every image at the same pointing, so objects of one image lie near sources
    # of another (only pairs within an image may match); same_ids: ids repeat across images.
    fields = [
        _field(seed, ra=186.0 if adjacent else 10.0 + 3 * k, same_ids=same_ids, n_objects=5 + seed % 20)
        for k, seed in enumerate(seeds)
    ]
    task = SsSingleFrameAssociationTask()
    task.config.matching = matching
    singles = [task.run(f.exposure, f.sources, band="g", solarSystemObjectTable=f.objects) for f in fields]
    batch = task.run_batch([(f.exposure, f.sources, f.objects) for f in fields], band="g")
    assert len(batch.results) == len(fields)
    for k, (single, batched) in enumerate(zip(singles, batch.results, strict=True)):
        _assert_same(single, batched)
        lo, hi = batch.row_bounds[k], batch.row_bounds[k + 1]
        assert list(batch.ssSourceColumns["diaSourceId"][lo:hi]) == list(single.ssSourceColumns["diaSourceId"])
    md = task.metadata
    assert md["nEvents"] == len(fields) and md["nFailedEvents"] == 0
    assert md["nAssociatedSsObjects"] == sum(s.nAssociatedSsObjects for s in singles)


def test_a_bad_image_does_not_spoil_the_batch():
    good, bad, empty = _field(1), _field(2), _field(3, n_objects=0)
    dupes = bad.sources.copy()
    dupes.loc[1, "diaSourceId"] = dupes.loc[0, "diaSourceId"]
    task = SsSingleFrameAssociationTask()
    batch = task.run_batch(
        [(good.exposure, good.sources, good.objects), (bad.exposure, dupes, bad.objects),
         (empty.exposure, empty.sources, empty.objects), ("not an exposure", good.sources, good.objects)]
    )  # fmt: skip
    assert task.metadata["nFailedEvents"] == 2
    assert isinstance(batch.results[1], DuplicateIdError)
    assert isinstance(batch.results[3], TypeError)
    _assert_same(task.run(good.exposure, good.sources, solarSystemObjectTable=good.objects), batch.results[0])
    assert batch.results[2].nAssociatedSsObjects == 0


def test_empty_batch():
    batch = SsSingleFrameAssociationTask().run_batch([])
    assert batch.results == [] and len(batch.ssSourceColumns["diaSourceId"]) == 0


@pytest.mark.parametrize("n", [1, 3])
def test_batch_of_bad_images_only(n):
    field = _field(4)
    batch = SsSingleFrameAssociationTask().run_batch([(None, field.sources, field.objects)] * n)
    assert all(isinstance(r, TypeError) for r in batch.results)
