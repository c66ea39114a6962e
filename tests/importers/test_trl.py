"""TRL's logged completions (and one completion given directly) as Trajectories."""

import json

import pytest

from r3lab.core.crop_calls import format_crop_call
from r3lab.core.regions import Frame, ViewConfig
from r3lab.importers.trl import import_trl_completions, trl_trajectory
from r3lab.testing import tiny_policy
from r3lab.testing.mini_benchmarks import scene
from r3lab.testing.mini_runs import write_trl_completions
from r3lab.viz import figure_trajectory, plot_trajectory

PROMPT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "<|vision_start|><|image_pad|><|vision_end|>What colour is the disc?<|im_end|>\n<|im_start|>assistant\n"
)


def test_a_completion_is_split_at_each_valid_crop_call_and_the_crop_inserted():
    view = ViewConfig()
    image = scene(0)[0]
    good, outside = format_crop_call([10, 10, 40, 40]), format_crop_call([500, 500, 600, 600])
    comp = f"<think>look {good} and {outside} then</think><answer>red</answer>"
    t = trl_trajectory(PROMPT, comp, image, view, answers=["red"])
    assert t.pieces[0].text.endswith("user\n") and t.pieces[2].text.startswith("What colour")
    assert [p.kind for p in t.pieces[3:]] == ["model_text", "image", "model_text"]
    assert t.pieces[3].text.endswith(good) and t.model_text() == comp  # nothing the model wrote is lost
    assert [e.ok for e in t.events] == [True, False] and t.events[1].call.verdict.value == "outside_image"
    assert t.crops[0].info.box_input == (10.0, 10.0, 40.0, 40.0) and t.final_answer() == "red"
    conv = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is the disc?"}]}]
    completion = [{"role": "assistant", "content": comp}]
    assert trl_trajectory(conv, completion, image, view).pieces[0].text == t.pieces[0].text


def test_logged_completions_keep_steps_rewards_and_advantages(tmp_path):
    policy = tiny_policy()
    path = write_trl_completions(tmp_path, steps=2, per_step=2, view=policy.view)
    trajs, rep = import_trl_completions(path, view=policy.view)
    assert rep.kept == 4 and [t.meta["step"] for t in trajs] == [0, 0, 1, 1]
    assert trajs[0].meta["system_rewards"] == {"accuracy": 1.0, "format": 1.0} and trajs[0].meta["advantage"] == 0.0
    t = trajs[0].tokenize(policy)
    plot_trajectory(t)
    figure_trajectory(t)
    rows = [json.loads(x) for x in path.read_text().splitlines()]  # the same table, exported as {"columns", "data"}
    cols = list(rows[0])
    (tmp_path / "table.json").write_text(json.dumps({"columns": cols, "data": [[r[c] for c in cols] for r in rows]}))
    again, rep2 = import_trl_completions(tmp_path / "table.json", view=policy.view)
    assert rep2.unit == "record" and [a.model_text() for a in again] == [t.model_text() for t in trajs]


def test_a_row_without_an_image_column_is_named(tmp_path):
    (tmp_path / "c.jsonl").write_text(json.dumps({"step": "1", "prompt": PROMPT, "completion": "x"}) + "\n")
    with pytest.raises(ValueError, match="line 1: a row needs 'image'"):
        import_trl_completions(tmp_path / "c.jsonl")


def _tool_turn(box, name="image_zoom_in_tool"):
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"type": "function", "function": {"name": name, "arguments": {"bbox_2d": box}}}],
    }


def test_a_logged_tool_calling_completion_becomes_crops_and_refusals_in_either_frame(tmp_path):
    """TRL logs tool runs as messages with images stripped to {"type": "image"}: crops are cut again."""
    policy = tiny_policy()
    image, colour, disc = scene(0)
    image.save(tmp_path / "a.png")
    frame = Frame.of(image.size, policy.view)
    good = [int(v) for v in frame.to_input(disc)]
    rel = [round(v * 1000 / s) for v, s in zip(good, (frame.input_w, frame.input_h) * 2)]
    conv = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is the disc?"}]}]
    rows = []
    for _coords, box in (("absolute", good), ("relative", rel)):
        comp = [
            _tool_turn([9, 9, 1, 1]),
            {"role": "tool", "name": "image_zoom_in_tool", "content": "crop refused: no"},
            _tool_turn(box),
            {"role": "tool", "name": "image_zoom_in_tool", "content": [{"type": "image"}]},
            {"role": "assistant", "content": f"<answer>{colour}</answer>"},
        ]
        rows.append({"step": "3", "prompt": conv, "completion": comp, "image": "a.png", "answer": colour})
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    a, _ = import_trl_completions(tmp_path / "c.jsonl", view=policy.view)
    b, _ = import_trl_completions(tmp_path / "c.jsonl", view=policy.view, coords="relative")
    for t in (a[0], b[1]):  # each row read in the frame its boxes were written in
        assert [(e.call.verdict.value, e.ok) for e in t.events] == [("inverted", False), ("ok", True)]
        assert t.final_answer() == colour and t.model_text().endswith("<|im_end|>")
        t.tokenize(policy)
        assert t.crops[0].image is not None
        assert t.crops[0].info.box_orig[:2] == tuple(int(v) for v in frame.to_orig(good)[:2])
    assert '"bbox_2d": [9, 9, 1, 1]' in a[0].pieces[a[0].events[0].piece].text
    assert [p.kind for p in a[0].pieces[3:6]] == ["model_text", "env_text", "env_text"]  # call, refusal, next turn
