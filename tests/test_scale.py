import json

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from eliq.critic.scale import SCALE_FILE, ScoreScale

finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=300), st.lists(finite, min_size=2, max_size=20))
@example([2.225073858507e-311, -1.1125369292536007e-308], [0.0, 0.0])  # np.interp gave inf
def test_the_scale_is_monotone_and_bounded(anchors, raw):
    scale = ScoreScale.fit(anchors, [], "test")
    scaled = [scale.to_100("quality", r) for r in sorted(raw)]
    assert all(0.0 <= s <= 100.0 for s in scaled)
    assert all(a <= b for a, b in zip(scaled, scaled[1:], strict=False))
    assert scale.to_100("alignment", raw[0]) is None  # no anchor had a prompt


def test_the_scale_is_the_percentile_among_the_anchors():
    scale = ScoreScale.fit(np.arange(1001.0), np.arange(1001.0) / 10, "test")
    assert scale.to_100("quality", 500.0) == pytest.approx(50.0)
    assert scale.to_100("quality", 250.0) == pytest.approx(25.0)
    assert scale.to_100("quality", -1e9) == 0.0 and scale.to_100("quality", 1e9) == 100.0
    assert scale.to_100("alignment", 90.0) == pytest.approx(90.0)


def test_ties_among_the_anchors_keep_the_map_a_function():
    scale = ScoreScale.fit([1.0] * 60 + [2.0] * 40, [], "test")
    assert 0.0 < scale.to_100("quality", 1.0) < scale.to_100("quality", 1.5) < 100.0
    assert ScoreScale.fit([3.0], [], "one").to_100("quality", 3.0) == 50.0


def test_the_scale_round_trips_and_refuses_bad_files(tmp_path):
    scale = ScoreScale.fit(np.linspace(-20, 5, 50), [0.1, 0.5, None], "50 photos")
    scale.save(tmp_path)
    assert ScoreScale.load(tmp_path) == scale
    assert ScoreScale.load(tmp_path / "missing") is None
    payload = json.loads((tmp_path / SCALE_FILE).read_text())
    payload["quality"] = payload["quality"][::-1]
    (tmp_path / SCALE_FILE).write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="must not decrease"):
        ScoreScale.load(tmp_path)
    (tmp_path / SCALE_FILE).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not an eliq-scale-1 file"):
        ScoreScale.load(tmp_path)
    with pytest.raises(ValueError, match="finite quality scores"):
        ScoreScale.fit([float("nan")], [], "none")
