# Types of the compiled module built from _query_kernel.pyx (see there for the contracts).
from typing import Any

import numpy as np
import numpy.typing as npt

N_FLOAT_COLUMNS: int

def gather_cone(
    offsets: npt.NDArray[np.int64],
    objects: npt.NDArray[np.int32],
    cells: npt.NDArray[np.uint64],
    shift: int,
    key_base: int,
) -> npt.NDArray[np.int32]: ...
def evaluate_cone(
    rows: npt.NDArray[Any],
    records: npt.NDArray[np.float64],
    level_first: npt.NDArray[np.int64],
    row_mult: npt.NDArray[np.int64],
    row_add: npt.NDArray[np.int64],
    basis: npt.NDArray[np.float64],
    observer: npt.NDArray[np.float64],
    cx: float,
    cy: float,
    cz: float,
    cos_radius: float,
    km_s_c: float,
    c_au_per_day: float,
    au_per_day_to_km_s: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
def time_plan(
    dt: float,
    span_days: float,
    observer_coeffs: npt.NDArray[np.float64],
    level_nseg: npt.NDArray[np.int64],
    row_shift: npt.NDArray[np.int64],
    degree: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
