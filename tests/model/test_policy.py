import json
import os
import subprocess
import sys

import pytest
import torch

from r3lab.core.batch import collate, model_inputs
from r3lab.core.trajectory import MODEL, Piece, Trajectory
from r3lab.model.policy import R3Processor, load_policy
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import tiny_policy, toy_image

from .. import HANG_S


def _forward(policy, traj):
    with torch.no_grad():
        return policy.model(**model_inputs(collate([traj], policy))).logits


def _traj(policy):
    t = Trajectory.start(toy_image(), "What colour is the small mark on the red circle?", policy.view, policy.prompt)
    t.pieces.append(Piece(MODEL, '<think>{"bbox_2d": [10, 10, 40, 40]}'))
    t.add_crop((10, 10, 40, 40), policy.view)
    t.pieces.append(Piece(MODEL, "<answer>yellow</answer><|im_end|>"))
    return t


def test_offline_round_trip_identical_logits(tmp_path):
    policy = tiny_policy()
    policy.save(tmp_path / "ckpt")
    before = _forward(policy, _traj(policy))
    again = load_policy(tmp_path / "ckpt")
    assert again.view == policy.view and again.prompt == policy.prompt
    after = _forward(again, _traj(again))
    assert torch.equal(before, after)


def test_fresh_process_loads_through_auto_classes_offline(tmp_path):
    policy = tiny_policy()
    policy.save(tmp_path / "ckpt")
    code = (
        "import sys, torch\n"
        "from transformers import AutoModelForImageTextToText, AutoTokenizer, AutoImageProcessor\n"
        f"d = {str(tmp_path / 'ckpt')!r}\n"
        "m = AutoModelForImageTextToText.from_pretrained(d, local_files_only=True)\n"
        "t = AutoTokenizer.from_pretrained(d, local_files_only=True)\n"
        "p = AutoImageProcessor.from_pretrained(d, local_files_only=True)\n"
        "print(type(m).__name__, t.convert_tokens_to_ids('<|image_pad|>') == m.config.image_token_id, p.merge_size)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=HANG_S)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Qwen2_5_VLForConditionalGeneration", "True", "2"]


def test_load_policy_errors_say_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected a local folder"):
        load_policy(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_policy(tmp_path / "empty")
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="qwen2_5_vl"):
        load_policy(tmp_path / "llama")
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    with pytest.raises(FileNotFoundError, match="no weights"):
        load_policy(tmp_path / "noweights")


def test_processor_subclass_matches_our_rendering():
    policy = tiny_policy()
    proc = policy.processor()
    assert isinstance(proc, R3Processor)
    im = toy_image()
    q = "What colour is the small mark on the red circle?"
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q + "\n" + policy.prompt.instruction}]}
    ]
    text = proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    frame_size = Trajectory.start(im, q, policy.view, policy.prompt).main.info.input_size
    out = proc(
        images=[im.resize(frame_size)],
        text=[text],
        return_tensors="pt",
        images_kwargs={
            "size": {"shortest_edge": frame_size[0] * frame_size[1], "longest_edge": frame_size[0] * frame_size[1]}
        },
    )
    ours = Trajectory.start(im, q, policy.view, policy.prompt).tokenize(policy)
    assert out["input_ids"][0].tolist() == ours.input_ids()


def test_encode_images_refuses_unresized_images():
    from PIL import Image

    with pytest.raises(ValueError, match="smart_resize"):
        tiny_policy().encode_images([Image.new("RGB", (100, 100))])


def test_load_policy_accepts_a_training_out_dir(tmp_path):
    from r3lab.train.checkpoint import save_checkpoint

    p = tiny_policy(fresh=True)
    save_checkpoint(tmp_path / "run", p, None, 7)
    q = load_policy(tmp_path / "run")  # resolved through run/latest -> step_000007
    assert q.meta["path"].endswith("step_000007")
    assert torch.equal(q.model.lm_head.weight, p.model.lm_head.weight)
    (tmp_path / "run" / "latest").write_text("step_000099\n")
    with pytest.raises(FileNotFoundError, match="step_000099"):
        load_policy(tmp_path / "run")


def test_qwen3_vl_round_trip_keeps_the_family_and_the_question_first_layout(tmp_path):
    from r3lab.core.prompt import PromptConfig

    p = build_tiny(
        TinyConfig(family="qwen3_vl", patch_size=7, deepstack=(0, 1)), prompt=PromptConfig(question_first=True)
    )
    t = _traj(p).tokenize(p)
    ids = t.input_ids()
    q = p.tokenizer.encode("What colour", add_special_tokens=False)
    first_image = ids.index(p.image_token_id)
    at = next(i for i in range(len(ids)) if ids[i : i + len(q)] == q)
    assert at < first_image  # the question comes before the image tokens
    p.save(tmp_path / "q3")
    again = load_policy(tmp_path / "q3")
    assert type(again.model).__name__ == "Qwen3VLForConditionalGeneration"
    assert again.prompt.question_first and again.model.config.vision_config.deepstack_visual_indexes == [0, 1]
    assert torch.equal(_forward(p, _traj(p)), _forward(again, _traj(again)))
    with pytest.raises(ValueError, match="deepstack"):
        build_tiny(TinyConfig(family="qwen3_vl", deepstack=(5,)))


def _damage(folder, name, how):
    f = folder / name
    if how == "truncate":
        with open(f, "r+b") as fh:
            fh.truncate(f.stat().st_size // 2)
    else:
        f.write_text(how)


@pytest.mark.parametrize(
    "name,how,expected",
    [
        ("model.safetensors", "truncate", r"model\.safetensors is damaged or truncated \(.*\); copy the checkpoint"),
        ("config.json", '{"model_type": "qwen2_5_vl", ', r"config\.json is damaged: not valid JSON \(.*\); copy"),
        ("config.json", "[1, 2]", r"config\.json is damaged: it holds a JSON list, not an object"),
        ("tokenizer.json", '{"version', r"tokenizer\.json is damaged: not valid JSON"),
        ("preprocessor_config.json", "", r"preprocessor_config\.json is damaged: not valid JSON"),
        (
            "r3lab.json",
            '{"view": {"max_pixels": "big"}, "prompt": {"colour": 1}}',
            r"r3lab\.json: its view or prompt cannot be used .*fix or delete that file",
        ),
    ],
)
def test_a_damaged_checkpoint_file_is_named_with_what_to_do(tmp_path, name, how, expected):
    folder = tiny_policy().save(tmp_path / "ckpt")
    _damage(folder, name, how)
    with pytest.raises(ValueError, match=expected) as e:
        load_policy(folder)
    assert str(folder / name) in str(e.value)


def test_read_view_matches_load_policy_without_loading_weights(tmp_path):
    from r3lab.core.regions import ViewConfig
    from r3lab.model.folder import read_view

    for view in (ViewConfig(), ViewConfig(max_pixels=224 * 224, crop_max_pixels=196 * 196)):
        folder = tiny_policy(view=view).save(tmp_path / str(view.max_pixels))
        assert read_view(folder) == load_policy(folder).view
        (folder / "r3lab.json").unlink()  # a plain Qwen folder: the image processor's bounds
        assert read_view(folder) == load_policy(folder).view
    (folder / "model.safetensors").write_bytes(b"not read at all")  # no weights are touched
    assert read_view(folder).max_pixels == 224 * 224


def test_the_crop_call_frame_is_saved_and_defaults_per_family(tmp_path):
    """r3-tiny (any family) writes absolute pixels, saved explicitly; a checkpoint saved before frames were a
    setting loads as absolute; a released Qwen3-VL / Qwen3.5 folder (no r3lab.json) writes relative 0-1000."""
    from r3lab.core.crop_calls import CallStyle
    from r3lab.core.env import REPO_ROOT
    from r3lab.core.prompt import TINY_INSTRUCTION

    shipped = load_policy(REPO_ROOT / "assets" / "checkpoints" / "r3-tiny-sft")
    assert shipped.prompt.calls == CallStyle("absolute", "json")
    assert shipped.prompt.instruction == TINY_INSTRUCTION  # the recipe's prompt travels with the checkpoint
    assert build_tiny(TinyConfig(patch_size=7)).prompt.instruction.endswith(
        "in image pixels; answer in <answer> </answer>."
    )  # the default instruction names the frame
    shipped.save(tmp_path / "old")  # as saved before frames were a setting: no "calls" in r3lab.json
    extra = json.loads((tmp_path / "old" / "r3lab.json").read_text())
    assert extra["format_version"] == 2  # r3lab.json says its format; a file without one is format 1
    del extra["prompt"]["calls"], extra["format_version"]
    (tmp_path / "old" / "r3lab.json").write_text(json.dumps(extra))
    assert load_policy(tmp_path / "old").prompt.calls == CallStyle("absolute", "json")
    (tmp_path / "old" / "r3lab.json").write_text(json.dumps({**extra, "format_version": 3}))
    with pytest.raises(ValueError, match=r"r3lab\.json has format_version 3; this r3lab reads formats 1 to 2"):
        load_policy(tmp_path / "old")
    for family in ("qwen2_5_vl", "qwen3_vl", "qwen3_5"):
        p = build_tiny(TinyConfig(patch_size=7, layers=4), family=family)
        assert p.prompt.calls == CallStyle()
        p.save(tmp_path / family)
        saved = json.loads((tmp_path / family / "r3lab.json").read_text())["prompt"]["calls"]
        assert saved == {"coords": "absolute", "grammar": "json"}
        assert load_policy(tmp_path / family).prompt.calls == CallStyle()
        (tmp_path / family / "r3lab.json").unlink()  # now it looks like a released checkpoint
        pre = tmp_path / family / "preprocessor_config.json"  # released Qwen3-VL folders name the fast processor
        pre.write_text(json.dumps({**json.loads(pre.read_text()), "image_processor_type": "Qwen2VLImageProcessorFast"}))
        released = load_policy(tmp_path / family)
        want = "absolute" if family == "qwen2_5_vl" else "relative"
        assert released.prompt.calls == CallStyle(want, "json"), family
        assert ("0 to 1000" in released.prompt.instruction) == (want == "relative")
        assert type(released.image_processor).__name__ == "Qwen2VLImageProcessorPil"  # no torchvision needed
    q35 = load_policy(tmp_path / "qwen3_5")
    assert type(q35.model).__name__ == "Qwen3_5ForConditionalGeneration"
    assert q35.model.config.text_config.layer_types[-1] == "full_attention"
