"""Other systems' evaluation outputs as Trajectories: VLM-R3's and DeepEyes', read from files in their formats."""

import json

import pytest

from r3lab.core.regions import Frame, box_iou
from r3lab.explain.crops import explain_crops
from r3lab.importers.traces import OFFICIAL_EVAL_VIEW, import_deepeyes_eval, import_vlmr3_eval
from r3lab.testing import tiny_policy
from r3lab.testing.mini_runs import write_deepeyes_eval, write_vlmr3_eval
from r3lab.viz import export_html, figure_trajectory, plot_trajectory, step_player
from r3lab.viz.steps import crop_boxes


def _check_views(traj, policy, tmp_path):
    traj.tokenize(policy)
    plot_trajectory(traj)
    figure_trajectory(traj)
    step_player(traj)
    assert export_html(traj, tmp_path / f"{traj.sample_id}.html").stat().st_size > 1000


def test_vlmr3_eval_records_become_trajectories_with_their_crops(tmp_path):
    path = write_vlmr3_eval(tmp_path)  # q0 crops (file kept), q1 crops (file gone), q2 "Invalid operation!"
    trajs, rep = import_vlmr3_eval(path)
    assert rep.kept == 3 and not rep.errors
    q0, q1, q2 = trajs
    rec = json.loads(path.read_text())[0]
    written = json.loads(rec["response_list"][0].split("crop it. ")[1])["bbox_2d"]
    assert q0.events[0].ok and q0.events[0].call.box == tuple(float(v) for v in written)  # as the model wrote it
    assert q0.crops[0].image is not None and q1.crops[0].image is None  # q1: cut again when tokenized
    frame = Frame.of((320, 240), OFFICIAL_EVAL_VIEW)
    assert q0.crops[0].info.box_orig == frame.to_orig(tuple(written))  # the official bbox_transform + crop
    assert q0.pieces[-1].text.endswith("</answer><|im_end|>") and q0.final_answer() == "red"
    assert not q2.events[0].ok and q2.events[0].note == "Invalid operation!" and not q2.crops
    assert q2.pieces[4].kind == "env_text" and q2.pieces[4].text == "Invalid operation!"
    assert q0.answers == ["red"] and q0.meta["format"] == "vlm-r3-eval"


def test_imported_vlmr3_runs_are_drawn_and_explained(tmp_path):
    policy = tiny_policy()
    trajs, _ = import_vlmr3_eval(write_vlmr3_eval(tmp_path), view=policy.view)  # in the explaining model's frame
    for t in trajs:
        _check_views(t, policy, tmp_path)
    ex = explain_crops(policy, trajs[0])
    assert len(ex) == 1 and ex[0].ok and 0 <= ex[0].attention.mass_in_box <= 1
    assert set(ex[0].importance.effect) == {"blank", "coarse", "other"}
    assert explain_crops(policy, trajs[2])[0].ok is False  # the refused call is explained (attention only)
    assert crop_boxes(trajs[0])[0]["box"] == tuple(v + d for v, d in zip(trajs[0].crops[0].info.box_orig, (0, 0, 1, 1)))


def test_deepeyes_eval_tool_calls_become_crops_inside_tool_responses(tmp_path):
    path = write_deepeyes_eval(tmp_path)
    trajs, rep = import_deepeyes_eval(path, image_root=tmp_path / "images")
    assert rep.kept == 3
    t = trajs[0]
    kinds = [(p.kind, p.tag) for p in t.pieces[3:]]
    assert kinds == [
        ("model_text", "reasoning"),
        ("env_text", "tool"),
        ("image", "crop"),
        ("env_text", "tool"),
        ("model_text", "answer"),
    ]
    assert t.pieces[0].text.startswith("<|im_start|>system\nYou are a helpful assistant.\n\n# Tools")
    assert t.pieces[4].text == "\n<|im_start|>user\n<tool_response>"
    assert t.pieces[6].text.endswith("<|im_start|>assistant\n")
    line = json.loads(path.read_text().splitlines()[0])
    call = json.loads(line["pred_output"][2]["content"].split("<tool_call>\n")[1].split("\n</tool_call>")[0])
    x1, y1, x2, y2 = call["arguments"]["bbox_2d"]
    assert t.crops[0].info.box_orig == (x1, y1, x2 - 1, y2 - 1)  # DeepEyes crops the original, half-open
    assert t.crops[0].image.size[0] % 28 == 0 and t.crops[0].image.size[1] % 28 == 0  # its smart_resize
    assert t.answers == ["A", line["answer"]] and t.gt_boxes  # the V* annotation beside the image
    assert box_iou(t.frame.to_orig(t.events[0].call.box), t.gt_boxes[0]) > 0.6
    assert not trajs[2].events and trajs[2].final_answer().startswith("A.")
    policy = tiny_policy()
    t2, _ = import_deepeyes_eval(path, image_root=tmp_path / "images", view=policy.view)
    _check_views(t2[0], policy, tmp_path)
    assert explain_crops(policy, t2[0])[0].gt_iou > 0.6


def test_metrics_need_no_pixels(tmp_path):
    trajs, _ = import_deepeyes_eval(write_deepeyes_eval(tmp_path), image_root=tmp_path / "images", load_images=False)
    assert trajs[0].main.image is None and trajs[0].main.info.orig_size == (320, 240)
    assert trajs[0].crops[0].info.box_orig is not None


def test_bad_records_are_named_with_their_line_or_record(tmp_path):
    path = write_deepeyes_eval(tmp_path)
    lines = path.read_text().splitlines()
    bad = json.loads(lines[1])
    bad["pred_output"] = "not a chat"
    path.write_text("\n".join([lines[0], json.dumps(bad), lines[2], "{oops"]) + "\n")
    with pytest.raises(ValueError, match="line 2: 'pred_output' must be the chat"):
        import_deepeyes_eval(path, image_root=tmp_path / "images")
    trajs, rep = import_deepeyes_eval(path, image_root=tmp_path / "images", errors="report")
    assert len(trajs) == 2 and [n for n, _ in rep.errors] == [2, 4]
    with pytest.raises(FileNotFoundError, match="image_root"):
        import_deepeyes_eval(path, image_root=tmp_path)
    vpath = write_vlmr3_eval(tmp_path / "v")
    recs = json.loads(vpath.read_text())
    recs[1]["response_list"] = "one string"
    vpath.write_text(json.dumps(recs))
    with pytest.raises(ValueError, match="record 2: field 'response_list' must be a list"):
        import_vlmr3_eval(vpath)


def test_a_vstar_annotation_is_read_bounded_and_named(tmp_path):
    """A V* image's JSON beside it goes through the one bounded reader: a non-UTF-8 byte names the file and line."""
    from r3lab.importers.traces import _vstar_boxes

    good = tmp_path / "a.json"
    good.write_text('{"bbox": [[1, 2, 3, 4]]}')
    assert _vstar_boxes(good) == [(1.0, 2.0, 4.0, 6.0)]
    bad = tmp_path / "b.json"
    bad.write_bytes(b'{"bbox": [[1, 2, 3, 4]]}\n\xc2')
    with pytest.raises(ValueError, match=r"b\.json.*line 2"):
        _vstar_boxes(bad)
