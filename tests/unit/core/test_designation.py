"""MPC packed designations and Rubin's ssObjectId."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssassoc.core.designation import (
    DesignationError,
    packed_to_ss_object_id,
    packed_to_unpacked,
    ss_object_id_to_packed,
    unpacked_to_packed,
)


def test_rubin_known_id():
    assert packed_to_ss_object_id("K15MK4Q") == 21164728253101137
    assert ss_object_id_to_packed(21164728253101137) == "K15MK4Q"


@pytest.mark.parametrize(
    ("unpacked", "packed"),
    [
        ("2015 MQ204", "K15MK4Q"),
        ("1995 XA", "J95X00A"),
        ("2007 TA418", "K07Tf8A"),
        ("(1)", "00001"),
        ("99999", "99999"),
        ("100000", "A0000"),
        ("360017", "a0017"),
        ("620000", "~0000"),
        ("3140113", "~AZaz"),
        ("2040 P-L", "PLS2040"),
        ("3138 T-1", "T1S3138"),
        ("1010 T-2", "T2S1010"),
        ("4101 T-3", "T3S4101"),
        ("1P", "0001P"),
        ("C/1995 O1", "CJ95O010"),
        ("D/1993 F2-B", "DJ93F02b"),
        ("P/2019 LD2", "PK19L02D"),
    ],
)
def test_pack_and_unpack(unpacked, packed):
    assert unpacked_to_packed(unpacked) == packed
    assert packed_to_unpacked(packed) == unpacked.strip("()")


@pytest.mark.parametrize("bad", ["K15MK4", "K15MK4QXY", "", "K15MK4Ω"])
def test_bad_packed_strings_are_errors(bad):
    with pytest.raises(DesignationError):
        packed_to_ss_object_id(bad)


@pytest.mark.parametrize("bad", [-1, 2**64, 65])
def test_bad_ids_are_errors(bad):
    with pytest.raises(DesignationError):
        ss_object_id_to_packed(bad)


@pytest.mark.parametrize("bad", ["hello", "1700 AA", "2015 IA", "0", "2015 AA620", "C/1995 O700"])
def test_unpackable_designations_are_errors(bad):
    with pytest.raises(DesignationError):
        unpacked_to_packed(bad)


def test_latin1_eight_bytes_fits_uint64():
    assert packed_to_ss_object_id("ÿÿÿÿÿÿÿÿ") == 2**64 - 1


@given(st.integers(1, 620_000 + 62**4 - 1))
def test_numbered_round_trip(number):
    assert packed_to_unpacked(unpacked_to_packed(str(number))) == str(number)


@given(
    st.integers(1800, 2199),
    st.sampled_from("ABCDEFGHJKLMNOPQRSTUVWXY"),
    st.sampled_from("ABCDEFGHJKLMNOPQRSTUVWXYZ"),
    st.integers(0, 619),
)
def test_provisional_round_trip(year, half, second, cycle):
    text = f"{year} {half}{second}{cycle if cycle else ''}"
    packed = unpacked_to_packed(text)
    assert len(packed) == 7
    assert packed_to_unpacked(packed) == text
    assert ss_object_id_to_packed(packed_to_ss_object_id(packed)) == packed
