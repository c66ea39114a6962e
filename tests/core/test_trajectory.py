import json

import pytest
import torch

from r3lab.core.crop_calls import CropCall, Verdict
from r3lab.core.trajectory import ENV, IMAGE, MODEL, CropEvent, Piece, Trajectory
from r3lab.testing import tiny_policy, toy_image


def make(policy, crops=((10, 10, 40, 40),), note=True):
    t = Trajectory.start(
        toy_image(),
        "What colour is the small mark on the red circle?",
        policy.view,
        policy.prompt,
        answers=["yellow"],
        gt_boxes=[(45, 34, 157, 151)],
        family="read_one",
        sample_id="s0",
    )
    for k, box in enumerate(crops):
        t.pieces.append(
            Piece(
                MODEL,
                f'<think>step {k} {{"bbox_2d": [{box[0]}, {box[1]}, {box[2]}, {box[3]}]}}',
                logprobs=None,
                tag="reasoning",
            )
        )
        t.add_crop(box, policy.view)
    if note:
        t.pieces.append(Piece(MODEL, '{"bbox_2d": [1, 2, 3]}'))
        t.pieces.append(Piece(ENV, "\n(crop refused: bbox_2d needs exactly four numbers)\n", tag="note"))
        t.events.append(CropEvent(CropCall(0, 22, '{"bbox_2d": [1, 2, 3]}', Verdict.WRONG_ARITY), len(t.pieces) - 2))
    t.pieces.append(Piece(MODEL, " It is yellow.</think><answer>yellow</answer><|im_end|>", tag="answer"))
    return t.tokenize(policy)


@pytest.mark.parametrize("crops", [(), ((10, 10, 40, 40),), ((10, 10, 40, 40), (60, 40, 100, 80), (0, 0, 112, 84))])
def test_masks_follow_piece_kinds(crops):
    policy = tiny_policy()
    t = make(policy, crops)
    ids, kinds, mask = t.input_ids(), t.token_kinds(), t.loss_mask()
    assert len(ids) == len(kinds) == len(mask)
    special_img = {policy.image_token_id, policy.vision_start_id, policy.vision_end_id}
    for i, k, m in zip(ids, kinds, mask.tolist()):
        assert m == (k == MODEL)  # every model_text token is in the loss, nothing else is
        if i in special_img:
            assert not m  # image tokens are never in the loss
    note_ids = [p.ids for p in t.pieces if p.kind == ENV and p.tag == "note"][0]
    start = t.input_ids().index(note_ids[0], sum(len(p.ids) for p in t.pieces[:-3]))
    assert not mask[start : start + len(note_ids)].any()  # env_text notes are never in the loss
    labels = t.labels()
    assert torch.equal(labels[mask], torch.tensor(ids)[mask]) and (labels[~mask] == -100).all()
    assert len(t.crops) == len(crops)
    assert sum(i == policy.vision_start_id for i in ids) == 1 + len(crops)


def test_image_pieces_render_their_grids():
    policy = tiny_policy()
    t = make(policy, ((10, 10, 40, 40),))
    main, crop = t.image_pieces
    assert main.info.input_size == t.frame.input_size == (112, 84)
    assert crop.info.grid_thw[1] * policy.patch_size == crop.info.input_size[1]
    assert len(crop.ids) == 2 + policy.image_token_count(crop.info.grid_thw)
    assert [im.size for im in t.model_images()] == [(112, 84), crop.info.input_size]


def test_final_answer_and_completion():
    t = make(tiny_policy())
    assert t.final_answer() == "yellow"
    assert t.completion().startswith("<think>step 0") and "<image>" in t.completion()
    t2 = Trajectory([Piece(MODEL, "<answer> unfinished")])
    assert t2.final_answer() == "unfinished"
    assert Trajectory([Piece(MODEL, "no tags")]).final_answer() is None


@pytest.mark.parametrize("mode", ["embed", "files"])
def test_json_round_trip(tmp_path, mode):
    policy = tiny_policy()
    t = make(policy)
    t.pieces[3].logprobs = [-0.5] * len(t.pieces[3].ids)
    t.meta["reward"] = 1.5
    d = t.to_dict(images=mode, image_dir=tmp_path / "img" if mode == "files" else None)
    text = json.dumps(d)
    back = Trajectory.from_dict(json.loads(text), base=tmp_path)
    assert back.input_ids() == t.input_ids()
    assert back.loss_mask().tolist() == t.loss_mask().tolist()
    assert back.events[0].call.verdict is Verdict.WRONG_ARITY
    assert back.meta == t.meta and back.gt_boxes == t.gt_boxes and back.answers == t.answers
    assert torch.equal(torch.nan_to_num(back.old_logprobs(), 7.0), torch.nan_to_num(t.old_logprobs(), 7.0))
    for a, b in zip(back.image_pieces, t.image_pieces):
        assert a.info == b.info
        assert a.image.tobytes() == b.image.tobytes()


def test_save_load_file(tmp_path):
    t = make(tiny_policy())
    back = Trajectory.load(t.save(tmp_path / "t.json"))
    assert back.input_ids() == t.input_ids()


def test_missing_image_file_is_a_clear_error(tmp_path):
    d = make(tiny_policy()).to_dict(images="files", image_dir=tmp_path / "img")
    for p in (tmp_path / "img").iterdir():
        p.unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        Trajectory.from_dict(d, base=tmp_path)


def test_untokenized_and_bad_pieces_are_errors():
    with pytest.raises(ValueError, match="kind"):
        Piece("assistant", "x")
    with pytest.raises(ValueError, match="ImageInfo"):
        Piece(IMAGE)
    t = Trajectory.start(toy_image(), "q", tiny_policy().view)
    with pytest.raises(ValueError, match="tokenize"):
        t.input_ids()


@pytest.mark.parametrize("token", ["<|image_pad|>", "<|vision_start|>", "<|im_end|>", "<|im_start|>", "<|endoftext|>"])
def test_a_question_with_control_token_text_is_refused_naming_the_sample(token):
    policy = tiny_policy()
    with pytest.raises(ValueError, match=rf"^sample 'q7': its question holds '{token.replace('|', '[|]')}'"):
        Trajectory.start(toy_image(), f"What colour {token} is it?", policy.view, policy.prompt, sample_id="q7")


def test_an_image_of_impossible_aspect_names_the_sample():
    from PIL import Image

    policy = tiny_policy()
    with pytest.raises(
        ValueError, match=r"^sample 'thin': its 1x400 image cannot be shown .*aspect ratio.*crop or pad"
    ):
        Trajectory.start(Image.new("RGB", (1, 400)), "q?", policy.view, policy.prompt, sample_id="thin")
