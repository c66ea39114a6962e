"""SmolVLM (transformers' Idefics3 classes) in the one code path: the tiny build, its chat, image splitting as
Idefics3's processor writes it, 1-D positions, saving and loading, and the per-family crop-call defaults."""

import torch
from PIL import Image

from r3lab.core.prompt import PromptConfig
from r3lab.core.trajectory import Trajectory
from r3lab.model.policy import load_policy
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_image


def test_tiny_smolvlm_is_transformers_idefics3_with_the_family_rules():
    p = build_tiny(TinyConfig(seed=0), family="smolvlm")
    assert type(p.model).__name__ == "Idefics3ForConditionalGeneration"
    assert p.patch_size == 56 and p.merge_size == 1 and p.view.factor == 56 and p.position_dims == 1
    assert p.prompt.chat == "smolvlm" and p.prompt.calls.coords == "absolute"
    assert p.decode([p.eos_id]) == "<|im_end|>" and p.encode("<|im_end|>") == [p.eos_id]
    assert p.tokenizer.convert_ids_to_tokens(p.eos_id) == "<end_of_utterance>"
    head, tail = p.prompt.head_tail("What colour?")
    assert head.endswith("User:") and tail.endswith("<end_of_utterance>\nAssistant:")


def test_image_tokens_are_what_idefics3s_processor_writes():
    p = build_tiny(TinyConfig(seed=0), family="smolvlm")
    proc = p.processor()
    for size in ((112, 56), (56, 56), (168, 112)):
        im = Image.new("RGB", size, (200, 30, 30))
        pv, grid = p.encode_images([im])
        rows, cols = size[1] // 56, size[0] // 56
        assert tuple(grid[0].tolist()) == (1, rows, cols)
        assert pv.shape[0] == (1 if rows * cols == 1 else rows * cols + 1)
        info = {"rows": [[0 if rows * cols == 1 else rows]], "cols": [[0 if rows * cols == 1 else cols]]}
        want = p.tokenizer.encode(proc.replace_image_token(info, 0), add_special_tokens=False)
        assert p.image_ids(grid[0]) == want


def test_positions_are_one_dimensional_and_continue_across_chunks():
    p = build_tiny(TinyConfig(seed=0), family="smolvlm")
    traj = Trajectory.start(toy_image((448, 336)), "What colour is the disc?", p.view, p.prompt).tokenize(p)
    pos = traj.positions(p)
    assert pos.shape == (1, len(traj.input_ids())) and pos[0].tolist() == list(range(pos.shape[1]))
    chunk, nxt = p.positions([5, 6, 7], [], start=40)
    assert chunk.tolist() == [[40, 41, 42]] and nxt == 43


def test_saved_tiny_smolvlm_loads_offline_with_the_same_logits(tmp_path):
    p = build_tiny(TinyConfig(seed=2), family="smolvlm")
    p.save(tmp_path / "smol")
    q = load_policy(tmp_path / "smol")
    assert type(q.model).__name__ == "Idefics3ForConditionalGeneration" and q.prompt.chat == "smolvlm"
    assert q.view == p.view
    traj = Trajectory.start(toy_image((448, 336)), "What colour is the disc?", p.view, p.prompt).tokenize(p)
    from r3lab.core.batch import collate, model_inputs

    with torch.no_grad():
        a = p.model(**model_inputs(collate([traj], p))).logits
        b = q.model(**model_inputs(collate([traj.copy()], q))).logits
    assert torch.equal(a, b)


def test_a_chatml_prompt_on_smolvlm_is_refused_and_tool_calls_too():
    import pytest

    from r3lab.core.crop_calls import CallStyle
    from r3lab.model.policy import Policy

    p = build_tiny(TinyConfig(seed=0), family="smolvlm")
    with pytest.raises(ValueError, match="speaks 'smolvlm'"):
        Policy(p.model, p.tokenizer, p.image_processor, p.view, PromptConfig())
    with pytest.raises(ValueError, match="SmolVLM's chat has no tool-response turn"):
        PromptConfig(chat="smolvlm", calls=CallStyle("relative", "tool"))
