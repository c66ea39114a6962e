import json
import math
import statistics

import pytest
from PIL import Image

from r3lab.core.trajectory import Trajectory
from r3lab.evaluation.behaviour import load_run
from r3lab.evaluation.box_report import box_errors, crop_records, format_box_errors
from r3lab.testing import tiny_policy

VIEW = tiny_policy().view  # an 840 x 840 image is shown at 112 x 112: 7.5 original pixels per input pixel


def _traj(gt_orig, written, family="read_one", sample_id="s"):
    t = Trajectory.start(
        Image.new("RGB", (840, 840), "white"),
        "Where?",
        VIEW,
        gt_boxes=list(gt_orig),
        family=family,
        sample_id=sample_id,
    )
    for box in written:
        t.add_crop(box, VIEW)
    return t


def test_errors_sizes_and_misses_in_the_input_frame():
    trajs = [
        _traj([(150, 150, 300, 300)], [(21, 20, 41, 40), (22, 22, 46, 46), (80, 80, 100, 100)], sample_id="a"),
        _traj([(300, 300, 525, 525)], [(40, 40, 70, 70)], family="compare_two", sample_id="b"),
        _traj([], [(10, 10, 30, 30)], family="control", sample_id="c"),
    ]  # no region: not scored
    recs = crop_records(trajs)
    assert [r["sample_id"] for r in recs] == ["a", "a", "a", "b"]
    assert recs[0]["true"] == (20.0, 20.0, 40.0, 40.0) and recs[0]["px_per_input"] == 7.5
    rows = box_errors(trajs)
    assert set(rows) == {"read_one", "compare_two", "all"}
    r = rows["read_one"]
    assert r["crops"] == 3 and r["miss_rate"] == pytest.approx(1 / 3)  # the third crop is elsewhere
    assert (r["err_x1"], r["err_y1"], r["err_x2"], r["err_y2"]) == (1.5, 1.0, 3.5, 3.0)
    assert r["abs_err"] == pytest.approx((1.5 + 1 + 3.5 + 3) / 4)
    assert r["size_written"] == 22.0 and r["size_true"] == 20.0
    assert math.isnan(r["size_corr"])  # every true size is 20: nothing to correlate with
    assert r["grid_iou"] == pytest.approx(1.0, abs=0.02)  # whole input pixels land on this region exactly
    assert 0 < r["hit_iou"] < 1 and r["crop_iou"] < r["hit_iou"]
    a = rows["all"]
    written, true = [20, 20, 24, 24, 30, 30], [20, 20, 20, 20, 30, 30]
    assert a["crops"] == 4 and a["size_corr"] == pytest.approx(statistics.correlation(written, true), abs=0.01)
    assert rows["compare_two"]["abs_err"] == pytest.approx(0.0, abs=0.01) and rows["compare_two"]["miss_rate"] == 0
    table = format_box_errors(rows)
    assert table.splitlines()[0].startswith("family") and len(table.splitlines()) == 4 and " - " not in table[:20]


def test_bad_input_and_nothing_to_score():
    with pytest.raises(TypeError, match="item 0 is a dict"):
        box_errors([{"family": "read_one"}])
    with pytest.raises(ValueError, match="min_iou"):
        box_errors([], min_iou=1.5)
    assert box_errors([]) == {} and "no crops" in format_box_errors({})


def test_saved_trajectories_give_the_same_errors(tmp_path):
    trajs = [_traj([(150, 150, 300, 300)], [(22, 21, 43, 40)]), _traj([(300, 300, 525, 525)], [(39, 41, 69, 72)])]
    path = tmp_path / "trajectories.jsonl"
    path.write_text("".join(json.dumps(t.to_dict("none")) + "\n" for t in trajs))
    assert box_errors(load_run(path)) == box_errors(trajs)
