"""Input tables as mappings of numpy arrays (the worker's form) give the DataFrame answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ssassoc.core import SsSingleFrameAssociationTask
from ssassoc.core.inputs import DuplicateIdError, InputTableError
from ssassoc.core.sample_data import synthetic_field


def _field(seed: int = 1):
    return synthetic_field(rng=np.random.default_rng(seed), n_sources=300, n_objects=25)


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {}
    for name in frame.columns:
        values = frame[name]
        out[name] = values.to_numpy(dtype=object) if name == "designation" else values.to_numpy()
    return out


def test_mapping_inputs_give_the_dataframe_results():
    field = _field()
    task = SsSingleFrameAssociationTask()
    as_frames = task.run(field.exposure, field.sources, band="r", solarSystemObjectTable=field.objects)
    as_columns = task.run(
        field.exposure, _columns(field.sources), band="r", solarSystemObjectTable=_columns(field.objects)
    )
    assert as_frames.nAssociatedSsObjects > 10
    assert as_columns.nAssociatedSsObjects == as_frames.nAssociatedSsObjects
    for name, values in as_frames.ssSourceColumns.items():
        other = as_columns.ssSourceColumns[name]
        if values.dtype.kind == "f":
            np.testing.assert_array_equal(values, other, err_msg=name)
        else:
            assert list(values) == list(other), name
    # The lazily built frames work for mapping inputs too.
    pd.testing.assert_frame_equal(
        as_columns.ssoAssocDiaSources.reset_index(drop=True), as_frames.ssoAssocDiaSources.reset_index(drop=True),
        check_dtype=False,
    )  # fmt: skip
    assert len(as_columns.unAssocDiaSources) == len(field.sources) - as_frames.nAssociatedSsObjects
    assert list(as_columns.unassociatedSsObjects["ssObjectId"]) == list(as_frames.unassociatedSsObjects["ssObjectId"])


def test_unassociated_columns_match_the_frame():
    field = _field(2)
    result = SsSingleFrameAssociationTask().run(
        field.exposure, field.sources, band="r", solarSystemObjectTable=field.objects
    )
    frame = result.unassociatedSsObjects
    columns = result.unassociatedSsObjectColumns()
    assert result.nTotalSsObjects > result.nAssociatedSsObjects  # some objects are not detected
    assert list(columns["ssObjectId"]) == list(frame["ssObjectId"])
    assert list(columns["designation"]) == list(frame["designation"])
    np.testing.assert_array_equal(columns["x"], frame["x"].to_numpy())
    np.testing.assert_array_equal(columns["ephVmag"], frame["ephVmag"].to_numpy())


def test_mapping_columns_are_coerced_like_dataframe_columns():
    field = _field(3)
    sources = _columns(field.sources)
    sources["diaSourceId"] = sources["diaSourceId"].astype(float)  # integral floats: lossless
    sources["ra"] = [str(v) for v in sources["ra"]]  # numeric strings, as a list
    task = SsSingleFrameAssociationTask()
    expected = task.run(field.exposure, field.sources, solarSystemObjectTable=field.objects)
    got = task.run(field.exposure, sources, solarSystemObjectTable=_columns(field.objects))
    assert list(got.ssSourceColumns["diaSourceId"]) == list(expected.ssSourceColumns["diaSourceId"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(ra=c["ra"][:-1]), "differ in length"),
        (lambda c: c.update(ra=np.stack([c["ra"], c["ra"]])), "1-D"),
        (lambda c: c.update(ra={0: 1.0}), "mapping of column name to 1-D array"),
        (lambda c: c.pop("dec"), "dec"),
        (lambda c: c.update(ra=np.array(["north"] * len(c["ra"]))), "ra"),
    ],
)
def test_bad_mappings_are_rejected_clearly(mutate, message):
    field = _field(4)
    sources = _columns(field.sources)
    mutate(sources)
    with pytest.raises(InputTableError, match=message):
        SsSingleFrameAssociationTask().run(field.exposure, sources, solarSystemObjectTable=field.objects)


def test_duplicate_ids_name_their_column():
    field = _field(5)
    sources = _columns(field.sources)
    sources["diaSourceId"] = sources["diaSourceId"].copy()
    sources["diaSourceId"][1] = sources["diaSourceId"][0]
    with pytest.raises(DuplicateIdError, match="diaSourceId") as info:
        SsSingleFrameAssociationTask().run(field.exposure, sources, solarSystemObjectTable=field.objects)
    assert info.value.column == "diaSourceId"
    assert isinstance(info.value, RuntimeError)  # Rubin's task raises RuntimeError
