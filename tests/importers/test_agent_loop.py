"""verl agent-loop outputs (token ids, response_mask, tool images) as Trajectories."""

import json

import pytest

from r3lab.explain.crops import explain_crops
from r3lab.importers.agent_loop import import_agent_loop
from r3lab.testing import tiny_policy
from r3lab.testing.mini_runs import write_agent_loop
from r3lab.viz import export_html, figure_trajectory, plot_trajectory


def test_model_tokens_tool_responses_and_crops_come_apart_by_the_mask(tmp_path):
    policy = tiny_policy()
    path = write_agent_loop(tmp_path, policy, steps=2, per_step=2)
    trajs, rep = import_agent_loop(path, policy)
    assert rep.kept == 4
    rec = json.loads(path.read_text().splitlines()[0])
    t = trajs[0]  # step 0, rollout 0: a zoom-in, then the answer
    kinds = [(p.kind, p.tag) for p in t.pieces]
    assert kinds == [
        ("env_text", "prompt"),
        ("image", "main"),
        ("env_text", "prompt"),
        ("model_text", "reasoning"),
        ("env_text", "tool"),
        ("image", "crop"),
        ("env_text", "tool"),
        ("model_text", "answer"),
    ]
    model_ids = [i for p in t.pieces if p.kind == "model_text" for i in p.ids]
    assert model_ids == [i for i, m in zip(rec["response_ids"], rec["response_mask"]) if m == 1]  # verbatim
    prompt_text = [i for p in t.pieces[:3] if p.kind == "env_text" for i in p.ids]
    assert len(prompt_text) == len(rec["prompt_ids"]) - 6  # all but the image run (start, 4 pads, end)
    body = t.pieces[3].text.split("<tool_call>\n")[1].split("\n</tool_call>")[0]
    x1, y1, x2, y2 = json.loads(body)["arguments"]["bbox_2d"]
    assert t.crops[0].info.box_orig == (x1, y1, x2 - 1, y2 - 1) and t.crops[0].image.size == (x2 - x1, y2 - y1)
    assert t.events[0].ok and t.events[0].image_piece == 5 and t.answers == [rec["ground_truth"]]
    assert t.meta["step"] == 0 and t.meta["system_rewards"] == {"score": 1.1, "acc": 1.0, "tool": 0.1}
    t.tokenize(policy)
    assert t.loss_mask().sum() == len(model_ids)  # the same tokens carry the loss as in verl's response_mask
    plot_trajectory(t)
    figure_trajectory(t)
    export_html(t, tmp_path / "t.html")
    assert explain_crops(policy, t)[0].ok


def test_a_tool_call_without_an_image_back_is_refused_and_ids_can_be_dropped(tmp_path):
    policy = tiny_policy()
    path = write_agent_loop(tmp_path, policy, steps=1, per_step=2)
    rec = json.loads(path.read_text().splitlines()[0])
    enc = lambda s: policy.tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    call = enc('<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2]}}\n</tool_call><|im_end|>')
    err = enc(
        "\n<|im_start|>user\n<tool_response>Error: bbox_2d needs 4 numbers</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    end = enc("<answer>red</answer><|im_end|>")
    rec.update(
        response_ids=call + err + end,
        response_mask=[1] * len(call) + [0] * len(err) + [1] * len(end),
        multi_modal_data={"image": rec["multi_modal_data"]["image"][:1]},
    )
    path.write_text(json.dumps(rec) + "\n")
    (t,), _ = import_agent_loop(path, policy, keep_ids=False)
    assert not t.crops and len(t.events) == 1 and not t.events[0].ok
    assert t.events[0].note.startswith("\n<|im_start|>user\n<tool_response>Error")
    assert all(p.ids is None for p in t.pieces)  # re-tokenised by whichever model explains it
    t.tokenize(policy)


def test_bad_agent_loop_records_are_named(tmp_path):
    policy = tiny_policy()
    path = write_agent_loop(tmp_path, policy, steps=1, per_step=1)
    good = json.loads(path.read_text().splitlines()[0])
    cases = [
        ({"response_mask": [1]}, "response_mask must hold one 0/1 per response token"),
        ({"prompt_ids": "abc"}, "field 'prompt_ids' must be a list of integers"),
        ({"multi_modal_data": {}}, "multi_modal_data.image must list"),
        ({"response_logprobs": [0.0]}, "response_logprobs has 1 values"),
    ]
    for change, what in cases:
        path.write_text(json.dumps(good) + "\n" + json.dumps({**good, **change}) + "\n")
        with pytest.raises(ValueError, match="rollouts.jsonl: line 2: " + what):
            import_agent_loop(path, policy)


def test_box_formats(tmp_path):
    with pytest.raises(ValueError, match="box_format"):
        import_agent_loop(tmp_path / "x.jsonl", tiny_policy(), box_format="cxcywh")


def test_two_zoom_ins_in_one_turn_are_two_crops_of_that_turn(tmp_path):
    policy = tiny_policy()
    path = write_agent_loop(tmp_path, policy, steps=1, per_step=1)
    rec = json.loads(path.read_text().splitlines()[0])
    enc = lambda s: policy.tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    vision = enc("<|vision_start|>") + enc("<|image_pad|>") * 2 + enc("<|vision_end|>")
    calls = "".join(
        '<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": %s}}\n</tool_call>' % b
        for b in ("[0, 0, 100, 100]", "[100, 100, 200, 200]")
    )
    turn = enc(calls + "<|im_end|>")
    obs = enc("\n<|im_start|>user\n<tool_response>") + vision + enc("one") + vision + enc("two</tool_response>")
    end = enc("<answer>red</answer><|im_end|>")
    main = rec["multi_modal_data"]["image"][0]
    rec.update(
        response_ids=turn + obs + end,
        response_mask=[1] * len(turn) + [0] * len(obs) + [1] * len(end),
        multi_modal_data={"image": [main, main, main]},
    )
    path.write_text(json.dumps(rec) + "\n")
    (t,), _ = import_agent_loop(path, policy)
    assert [e.piece for e in t.events] == [3, 3] and [e.ok for e in t.events] == [True, True]
    assert [p.info.box_orig for p in t.crops] == [(0, 0, 99, 99), (100, 100, 199, 199)]
    assert [t.pieces[3].text[e.call.start : e.call.end].startswith("<tool_call>") for e in t.events] == [True, True]
