"""The envelope's fast path accepts only what OpIn accepts, and the handheld's ordinary ops take it."""
import uuid

import marshmallow as ma
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.limits import MAX_INT64
from schemas.sync import OpIn
from sync.push import _plainly_valid

_SCHEMA = OpIn()
_KEYS = ["op_id", "seq", "type", "entity_id", "base_version", "device_time", "payload", "surprise"]
_TEXTS = st.one_of(st.text(max_size=70), st.text(st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=70),
                   st.sampled_from(["", " ", "a", " a", "a ", "a\tb", "a\nb", "a" * 64, "a" * 65, "\u200b", "ａ"]))
_INTS = st.one_of(st.integers(), st.sampled_from([0, 1, -1, MAX_INT64, MAX_INT64 + 1, True, False]))
_VALUES = st.one_of(st.none(), _TEXTS, _INTS, st.floats(allow_nan=False), st.dictionaries(st.text(max_size=3), st.integers()),
                    st.lists(st.integers(), max_size=2))


def _ordinary(**changes) -> dict:
    op = {"op_id": str(uuid.uuid4()), "seq": 7, "type": "pod.sign", "entity_id": "t-1", "base_version": 3,
          "device_time": "2026-11-24T09:00:00+08:00", "payload": {"x": 1}}
    return {k: v for k, v in {**op, **changes}.items() if v is not ...}


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUES), st.booleans())
def test_whatever_the_fast_path_takes_opin_takes(fields, start_ordinary):
    """Random envelopes (often an ordinary op with some fields replaced): fast-path valid implies OpIn valid."""
    raw = {**_ordinary(), **fields} if start_ordinary else fields
    if _plainly_valid(raw):
        _SCHEMA.load(raw)  # raises if the fast path took something OpIn refuses


@pytest.mark.parametrize("changes", [
    {}, {"entity_id": None}, {"entity_id": ...}, {"payload": ...}, {"seq": MAX_INT64}, {"base_version": 0},
    {"type": "appointment.late_notice"}, {"op_id": "x" * 64}])
def test_ordinary_ops_take_the_fast_path(changes):
    """What a handheld sends every time is decided without marshmallow (and OpIn agrees)."""
    raw = _ordinary(**changes)
    assert _plainly_valid(raw)
    _SCHEMA.load(raw)


@pytest.mark.parametrize("changes", [
    {"seq": 0}, {"seq": True}, {"seq": MAX_INT64 + 1}, {"seq": 1.0}, {"base_version": -1}, {"base_version": ...},
    {"base_version": "3"}, {"device_time": None}, {"payload": None}, {"device_time": ...}, {"op_id": ""}, {"op_id": " x"},
    {"op_id": "x" * 65}, {"op_id": "ｘ"}, {"type": None}, {"type": "a\tb"}, {"entity_id": 7}, {"entity_id": "e" * 65},
    {"surprise": 1}])
def test_anything_unusual_goes_to_opin(changes):
    """Off the beaten path the fast path declines, and OpIn decides (here it refuses most)."""
    raw = _ordinary(**changes)
    assert not _plainly_valid(raw)
    if changes not in ({"op_id": "ｘ"}, {"op_id": " x"}):  # valid text (OpIn strips it), just not plain ASCII
        with pytest.raises(ma.ValidationError):
            _SCHEMA.load(raw)
