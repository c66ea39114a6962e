"""Adversarial inputs: hostile text, files, checkpoints, settings and broken runs.

Each case goes through a public entry point (mostly the `r3lab` command), asserts the exact error class
and that the message names the file, line or sample (or the setting) at fault, and that good state is
left alone. Unit-level tests of each check live in the mirrored test files.
"""

import base64
import contextlib
import json
import os
import pickle
import signal

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from r3lab.cli.app import build_parser
from r3lab.cli.app import main as cli_main
from r3lab.cli.args import dataclass_from_args
from r3lab.core.crop_calls import Verdict, closed_call_since, find_crop_calls
from r3lab.core.regions import Frame
from r3lab.data.dataset import load_dataset, save_dataset
from r3lab.data.formats import import_sft
from r3lab.data.sample import Sample
from r3lab.engine.config import RolloutConfig
from r3lab.engine.rollouts import rollout
from r3lab.model.policy import load_policy
from r3lab.testing import png_header, tiny_policy, toy_image, toy_samples
from r3lab.train.checkpoint import find_checkpoint, load_checkpoint
from r3lab.train.config import RGRPOConfig, SFTConfig
from r3lab.train.metrics import MetricLog
from r3lab.train.sft import train


@contextlib.contextmanager
def refused(cls: type, *names):
    """The block raises exactly `cls` (not a subclass, not a raw error from below) naming every one of `names`."""
    with pytest.raises(Exception) as info:
        yield info
    assert type(info.value) is cls, f"{type(info.value).__name__} instead of {cls.__name__}: {info.value}"
    for name in names:
        assert str(name) in str(info.value), f"{name!r} is not named in: {info.value}"


def _sft(out, steps=2, callbacks=(), policy=None, **kw):
    policy = policy or tiny_policy(fresh=True)
    cfg = SFTConfig(steps=steps, batch_size=2, lr_lm=1e-2, warmup=0, out_dir=str(out), **kw)
    return policy, train(policy, toy_samples(2, policy.view), cfg, callbacks)


def _steps(out):
    return sorted(p.name for p in out.glob("step_*"))


def _poison(policy):
    with torch.no_grad():
        policy.model.lm_head.weight.fill_(float("nan"))


def _dataset(folder, n=4, edit=None):
    """A 4-sample dataset folder; `edit(line_number, record)` changes one line's record in place."""
    out = save_dataset(toy_samples(n, tiny_policy().view), folder, progress=False)
    if edit:
        lines = (out / "samples.jsonl").read_text().splitlines()
        recs = [json.loads(x) for x in lines]
        for k, r in enumerate(recs, 1):
            edit(k, r)
        (out / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return out


# -- crop-call strings: every text that opens a call ends in a verdict or a crop ------------------------------
FRAME = Frame(448, 336, 112, 84)
HOSTILE = st.lists(
    st.sampled_from(
        [
            "{",
            "}",
            '"',
            "\\",
            "\n",
            '{"bbox_2d": [',
            "1",
            "0",
            ", ",
            "]",
            "]}",
            '"note": ',
            "<|im_end|>",
            "<|image_pad|>",
            "<|vision_start|>",
            "bbox",
            ":",
            "x",
        ]
    ),
    max_size=40,
)


@given(HOSTILE)
@settings(max_examples=400, deadline=None)
def test_hostile_crop_call_text_never_raises_and_streams_like_the_whole(parts):
    """Any mix of braces, quotes, backslashes, newlines and special-token text: every call gets a verdict, and a
    rollout that checks after each token holding `}` or a newline and cuts the segment there fires exactly the
    calls the finished text holds, at the same places, with the same verdicts."""
    text = "".join(parts)
    calls = find_crop_calls(text, FRAME)
    assert all(isinstance(c.verdict, Verdict) and text[c.start : c.end] == c.raw for c in calls)
    assert all(c.verdict is not Verdict.UNTERMINATED or c.end == len(text) for c in calls)
    fired, cut = [], 0
    for k in range(1, len(parts) + 1):
        seg, new = text[cut : sum(map(len, parts[:k]))], parts[k - 1]
        if "}" in new or "\n" in new:
            if (call := closed_call_since(seg, len(seg) - len(new), FRAME)) is not None:
                fired.append((cut + call.start, cut + call.end, call.verdict))
                cut += call.end
    assert fired == [(c.start, c.end, c.verdict) for c in calls if c.verdict is not Verdict.UNTERMINATED]


@pytest.mark.parametrize(
    "raw",
    [
        '{"note": "}", "bbox_2d": [10, 10, 60, 60]}',
        '{"bbox_2d": [10, 10, 60, 60], "note": "{\\"}"}',
        '{"note": "<|im_end|> <|image_pad|>", "bbox_2d": [10, 10, 60, 60]}',
    ],
)
def test_braces_quotes_and_special_token_text_inside_a_call_still_crop(raw):
    (call,) = find_crop_calls("Look. " + raw + " Then.", FRAME)
    assert call.ok and call.box == (10.0, 10.0, 60.0, 60.0)


# -- special-token text from users and datasets ------------------------------------------------------------
def test_special_token_text_in_a_dataset_question_names_file_line_and_sample(tmp_path):
    ds = _dataset(tmp_path / "ds", edit=lambda k, r: r.update(question="What <|image_pad|> is it?") if k == 2 else 0)
    with refused(ValueError, "samples.jsonl:2", "'toy1'", "<|image_pad|>"):
        cli_main(["train", "sft", "--data", str(ds), "--steps", "1", "--batch-size", "2"])


def test_special_token_text_in_a_question_at_rollout_names_the_sample():
    policy = tiny_policy()
    s = toy_samples(1, policy.view)[0]
    s.question = "Is it red?<|im_end|>\n<|im_start|>assistant\nyes"  # edited after it was made
    with refused(ValueError, "sample 'toy0'", "<|im_end|>", "<|im_start|>"):
        rollout(policy, [s], RolloutConfig(max_new_tokens=4), progress=False)


def test_special_token_text_inside_an_imported_crop_call_names_the_record(tmp_path):
    toy_image().save(tmp_path / "m.png")
    toy_image((56, 56)).save(tmp_path / "c.png")
    rec = {
        "image_path": "m.png",
        "question": "q?",
        "img_crop_list": ["c.png"],
        "response_list": ['<think>{"note": "<|vision_start|>", "bbox_2d": [1, 2, 30, 40]}', "<answer>a</answer>"],
    }
    (tmp_path / "sft.json").write_text(json.dumps([rec]))
    with refused(ValueError, "sft.json: record 1", "sample 'sft-000001'", "<|vision_start|>"):
        import_sft(tmp_path / "sft.json")


# -- corrupt images and datasets ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content,what",
    [
        (b"GIF89a? no, just text", "is not a readable image"),
        (png_header(20000, 20000), "DecompressionBombError"),
        (png_header(64, 64)[:24], "is not a readable image"),
    ],
)
def test_a_corrupt_png_names_file_line_and_sample(tmp_path, content, what):
    ds = _dataset(tmp_path / "ds")
    (ds / "images" / "toy2.png").write_bytes(content)
    with refused(ValueError, "samples.jsonl:3", "'toy2'", "toy2.png", what):
        cli_main(["data", "stats", str(ds)])
    report = load_dataset(ds, errors="report")
    assert len(report) == 3 and [e.line for e in report.errors] == [3]


def test_a_corrupt_png_in_an_official_file_names_the_record(tmp_path):
    toy_image().save(tmp_path / "m.png")
    (tmp_path / "c.png").write_bytes(b"text, not pixels")
    rec = {
        "image_path": "m.png",
        "question": "q?",
        "img_crop_list": ["c.png"],
        "response_list": ['<think>{"bbox_2d": [1, 2, 30, 40]}', "<answer>a</answer>"],
    }
    (tmp_path / "sft.json").write_text(json.dumps([rec]))
    with refused(ValueError, "sft.json: record 1", "c.png", "is not a readable image"):
        cli_main(["data", "import", "--format", "vlm-r3-sft", str(tmp_path / "sft.json"), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_an_image_of_impossible_aspect_names_the_sample(tmp_path):
    policy = tiny_policy()
    with refused(ValueError, "sample 'thin'", "1x400"):
        rollout(policy, [Sample(Image.new("RGB", (1, 400)), "q?", ["a"], sample_id="thin")], progress=False)
    ds = _dataset(tmp_path / "ds")
    Image.new("RGB", (400, 1)).save(ds / "images" / "toy3.png")
    with refused(ValueError, "samples.jsonl:4", "'toy3'", "400x1"):  # when the dataset loads, before training
        cli_main(["train", "sft", "--data", str(ds), "--steps", "1"])


def test_broken_dataset_lines_and_foreign_files_name_the_fix(tmp_path):
    ds = _dataset(tmp_path / "ds")
    lines = (ds / "samples.jsonl").read_text().splitlines()
    (ds / "samples.jsonl").write_text("\n".join(lines[:2] + [lines[2][:40]] + lines[3:]) + "\n")
    with refused(ValueError, "samples.jsonl:3", "errors='report'"):
        cli_main(["train", "sft", "--data", str(ds), "--steps", "1"])
    (tmp_path / "sft.json").write_text(json.dumps([{"image_path": "m.png", "response_list": ["x"]}]))
    with refused(ValueError, "sft.json", "r3lab data import --format vlm-r3-sft"):
        cli_main(["train", "sft", "--data", str(tmp_path / "sft.json")])
    (tmp_path / "empty.json").write_text("[]")
    with refused(ValueError, "empty.json holds no records"):
        import_sft(tmp_path / "empty.json")


def test_a_dataset_destination_is_checked_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with refused(NotADirectoryError, tmp_path / "file"):
        cli_main(["data", "build", "--out", str(tmp_path / "file"), "--n", "400000"])
    ds = _dataset(tmp_path / "ds")
    with refused(FileExistsError, tmp_path / "ds", "--overwrite true"):
        cli_main(["data", "build", "--out", str(ds), "--n", "400000"])
    assert len(load_dataset(ds)) == 4


# -- crafted checkpoints ---------------------------------------------------------------------------------------
class Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_crafted_state_json_is_refused_without_running_its_pickle(tmp_path):
    out, marker = tmp_path / "run", tmp_path / "pwned"
    _sft(out, steps=1)
    state_file = find_checkpoint(out) / "state.json"
    state = json.loads(state_file.read_text())
    plain = isinstance(state["rng"]["torch"], list) and isinstance(state["rng"]["python"][1], list)
    state["rng"] = {k: base64.b64encode(pickle.dumps(Payload(marker))).decode() for k in ("python", "numpy", "torch")}
    state_file.write_text(json.dumps(state))
    with refused(ValueError, state_file, "afresh", "load_policy"):
        _sft(out, steps=2, resume=True)
    with refused(ValueError, state_file):
        load_checkpoint(out, tiny_policy(fresh=True))
    assert not marker.exists()
    assert plain  # what r3lab writes is plain JSON (lists of ints), nothing to unpickle


def test_pickled_weights_are_refused(tmp_path):
    policy = tiny_policy(fresh=True)
    folder = policy.save(tmp_path / "p")
    for f in folder.glob("*.safetensors"):
        f.unlink()
    torch.save({}, folder / "pytorch_model.bin")
    with refused(ValueError, folder, "safetensors only"):
        load_policy(folder)


def _truncate(f):
    with open(f, "r+b") as fh:
        fh.truncate(f.stat().st_size // 2)


def test_a_truncated_or_broken_checkpoint_names_its_file(tmp_path):
    folder = tiny_policy().save(tmp_path / "p")
    _truncate(folder / "model.safetensors")
    with refused(ValueError, folder / "model.safetensors", "truncated", "copy the checkpoint folder again"):
        cli_main(["eval", "--policy", str(folder), "--data", str(tmp_path)])
    folder = tiny_policy().save(tmp_path / "q")
    (folder / "config.json").write_text('{"model_type": "qwen2_5_vl", "vision_config": {')
    with refused(ValueError, folder / "config.json", "not valid JSON"):
        cli_main(["train", "sft", "--policy", str(folder), "--data", str(tmp_path)])
    out = tmp_path / "run"
    _sft(out, steps=1)
    _truncate(find_checkpoint(out) / "optimizer.safetensors")
    with refused(ValueError, find_checkpoint(out) / "optimizer.safetensors", "truncated"):
        _sft(out, steps=2, resume=True)


def test_a_hostile_crop_call_style_in_r3lab_json_is_refused_naming_the_file(tmp_path):
    folder = tiny_policy().save(tmp_path / "p")
    extra = json.loads((folder / "r3lab.json").read_text())
    for calls in ({"coords": "pixels", "grammar": "json"}, {"coords": "absolute", "grammar": "xml"}, {"frame": 1}, [1]):
        (folder / "r3lab.json").write_text(json.dumps({**extra, "prompt": {**extra["prompt"], "calls": calls}}))
        with refused(ValueError, folder / "r3lab.json", "fix or delete that file"):
            load_policy(folder)


def test_a_checkpoint_of_the_wrong_model_type_is_refused_naming_it(tmp_path):
    folder = tiny_policy().save(tmp_path / "llama")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "model_type": "llama"}))
    with refused(ValueError, folder, "'llama'", "qwen2_5_vl"):
        load_policy(folder)
    out = tmp_path / "run"
    _sft(out, steps=1)
    ckpt = find_checkpoint(out)
    (ckpt / "config.json").write_text(
        json.dumps({**json.loads((ckpt / "config.json").read_text()), "model_type": "qwen3_vl"})
    )
    with refused(ValueError, ckpt / "config.json", "'qwen3_vl'", "'qwen2_5_vl'"):
        _sft(out, steps=2, resume=True)


def test_nan_weights_are_refused_wherever_they_are_loaded(tmp_path):
    policy = tiny_policy(fresh=True)
    _poison(policy)
    folder = policy.save(tmp_path / "diverged")
    ds = _dataset(tmp_path / "ds")
    with refused(ValueError, folder, "NaN"):
        cli_main(["eval", "--policy", str(folder), "--data", str(ds)])
    with refused(ValueError, folder, "NaN", "before training starts"):
        cli_main(["train", "sft", "--policy", str(folder), "--data", str(ds), "--steps", "1", "--batch-size", "2"])
    out = tmp_path / "run"  # a NaN checkpoint in a run folder (r3lab never writes one: it was crafted)
    _sft(out, steps=1)
    from safetensors.torch import load_file, save_file

    f = find_checkpoint(out) / "model.safetensors"
    w = load_file(str(f))
    w[next(iter(w))].fill_(float("nan"))
    save_file(w, str(f), metadata={"format": "pt"})
    with refused(ValueError, find_checkpoint(out), "NaN", "cannot be resumed"):
        _sft(out, steps=2, resume=True)


# -- CLI settings out of range -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flag,value",
    [
        ("--lr-lm", "nan"),
        ("--lr-lm", "inf"),
        ("--lr-lm", "1e30"),
        ("--lr-lm", "-1"),
        ("--warmup", "-5"),
        ("--grad-clip", "-1"),
        ("--save-every", "-3"),
    ],
)
def test_bad_numbers_fail_when_the_config_is_built(tmp_path, flag, value):
    field = flag[2:].replace("-", "_")
    for cmd in ("sft", "rgrpo"):
        with refused(ValueError, f"Config.{field} = ", "is not allowed: expected"):
            cli_main(["train", cmd, "--data", str(tmp_path), flag, value])
    with pytest.raises(ValueError, match=r"SFTConfig\.lr_merger = nan .* \[0\.0, 1\.0\]"):
        SFTConfig(lr_merger=float("nan"))
    with pytest.raises(ValueError, match=r"RGRPOConfig\.rollout\.top_p = 0\.0 .* \(0\.0, 1\.0\]"):
        RGRPOConfig(rollout={"top_p": 0.0})


@pytest.mark.parametrize(
    "argv,names",
    [
        (["eval", "--temperature", "nan"], ["EvalConfig.rollout.temperature = nan"]),
        (["eval", "--max-new-tokens", "0"], ["EvalConfig.rollout.max_new_tokens = 0"]),
        (["eval", "--reward-region", "dice"], ["EvalConfig.reward.region = 'dice'", "'iou', 'giou'"]),
        (["eval", "--batch-rows", "1000000"], ["EvalConfig.batch_rows = 1000000", "4096"]),
        (["train", "rgrpo", "--top-p", "0"], ["RGRPOConfig.rollout.top_p = 0.0"]),
        (["train", "rgrpo", "--temperature", "inf"], ["RGRPOConfig.rollout.temperature = inf"]),
        (["train", "rgrpo", "--reward-region-weight", "-1"], ["RGRPOConfig.reward.region_weight = -1.0"]),
        (["train", "rgrpo", "--group-size", "1"], ["group_size must be >= 2"]),
        (["train", "sft", "--batch-size", "100000"], ["asks for 100000 samples per step", "only 4 samples"]),
        (["data", "build", "--max-pixels", "0"], ["ViewConfig.min_pixels = 3136, max_pixels = 0"]),
        (["data", "build", "--factor", "0"], ["ViewConfig.factor = 0"]),
    ],
)
def test_settings_out_of_range_are_refused_naming_the_setting(tmp_path, argv, names):
    ds = _dataset(tmp_path / "ds")
    where = ["--out", str(tmp_path / "new")] if argv[0] == "data" else ["--data", str(ds)]
    with refused(ValueError, *names):
        cli_main(argv + where)
    assert not (tmp_path / "new").exists() and not (ds / "log.jsonl").exists()


@pytest.mark.parametrize(
    "argv,names",
    [
        (["--train-max-crops", "-1"], ["RecipeConfig.train_rollout.max_crops = -1", "[0, 256]"]),
        (["--eval-max-new-tokens", "0"], ["RecipeConfig.eval_rollout.max_new_tokens = 0", "[1, 1048576]"]),
        (["--eval-temperature", "nan"], ["RecipeConfig.eval_rollout.temperature = nan"]),
        (["--train-temperature", "0"], ["RecipeConfig.train_rollout.temperature = 0.0", "R-GRPO samples"]),
        (["--reward-preset", "vibes"], ["RecipeConfig.reward.preset = 'vibes'", "'code', 'paper', 'accuracy'"]),
        (["--sft-steps", "-5"], ["sft.steps = -5", "[0, 1000000]"]),
        (["--rgrpo-lr", "inf"], ["RecipeConfig.rgrpo.lr = inf", "[0.0, 1.0]"]),
        (["--group-size", "3"], ["rgrpo.batch = 32 (--rgrpo-batch) must be a multiple of rgrpo.group_size = 3"]),
        (["--tiny", '{"hidden_size": 64}'], ["unknown TinyConfig fields ['hidden_size'] in tiny"]),
    ],
)
def test_a_bad_recipe_setting_fails_before_any_training(tmp_path, argv, names, monkeypatch):
    import r3lab.recipe.recipe as recipe

    monkeypatch.setattr(recipe.Recipe, "run", lambda self: pytest.fail("the recipe started"))
    with refused(ValueError, *names):
        cli_main(["recipe", "--out", str(tmp_path / "run")] + argv)
    assert not (tmp_path / "run").exists()


def test_a_count_out_of_range_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["data", "build", "--out", str(tmp_path / "new"), "--n", "-5"])
    assert e.value.code == 2 and "argument --n: expected at least 1 sample, got -5" in capsys.readouterr().err


# -- broken runs: divergence, out dirs, killed saves, Ctrl-C ----------------------------------------------
def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    _sft(out, steps=1)

    def poison_after_two(state, row):
        if state.step == 2:
            _poison(state.policy)

    with pytest.raises(FloatingPointError, match=r"step 3: .*loss.*step_000001"):
        _sft(out, steps=4, resume=True, callbacks=[poison_after_two])
    assert _steps(out) == ["step_000001"]
    live = MetricLog.load_jsonl(out / "log.jsonl").rows  # the live log shows where it diverged: loss null at 3
    assert [r["step"] for r in live] == [1, 2, 3] and live[-1]["loss"] is None
    with pytest.raises(FloatingPointError, match="not saving step 2"):  # a NaN model is never written
        _sft(tmp_path / "b", steps=3, save_every=2, callbacks=[poison_after_two])
    assert not (tmp_path / "b" / "latest").exists()


def test_a_new_run_never_mixes_with_an_old_one(tmp_path):
    out = tmp_path / "run"
    _sft(out, steps=2, save_every=1)
    with pytest.raises(FileExistsError, match=r"already holds a training run.*overwrite"):
        _sft(out, steps=1)
    assert len(MetricLog.load_jsonl(out / "log.jsonl")) == 2  # the old log is untouched
    _sft(out, steps=1, overwrite=True)
    assert _steps(out) == ["step_000001"] and len(MetricLog.load_jsonl(out / "log.jsonl")) == 1
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        _sft(tmp_path / "empty", steps=1, resume=True)
    assert not (tmp_path / "empty" / "latest").exists()
    with pytest.raises(ValueError, match="set only one"):
        SFTConfig(out_dir=str(out), resume=True, overwrite=True)
    (tmp_path / "fresh").mkdir()  # notebooks train into a new, empty temporary folder
    _sft(tmp_path / "fresh", steps=1)
    # resume="auto" (the recipe): start when there is nothing, continue when there is
    _, log = _sft(tmp_path / "auto", steps=1, resume="auto")
    _, log = _sft(tmp_path / "auto", steps=2, resume="auto")
    assert [r["step"] for r in log] == [1, 2]
    args = build_parser().parse_args(["train", "sft", "--resume", "auto", "--overwrite", "false"])
    assert dataclass_from_args(SFTConfig, args).resume == "auto"


def test_partial_saves_are_cleaned_on_the_next_start(tmp_path):
    out = tmp_path / "run"
    _sft(out, steps=1)
    (out / ".step_000002.k1ll3d").mkdir()  # a save killed before its rename
    (out / ".step_000002.k1ll3d" / "model.safetensors").write_bytes(b"half")
    (out / ".latest.abc.tmp").write_text("step_0")
    _sft(out, steps=2, resume=True)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    assert find_checkpoint(out).name == "step_000002"


def test_ctrl_c_during_the_update_keeps_that_steps_row(tmp_path, monkeypatch):
    import r3lab.train.sft as sft

    real, calls = sft.clip_and_step, []

    def ctrl_c_in_step_two(optimizer, grad_clip):
        calls.append(1)
        if len(calls) == 2:  # during the update of step 2
            os.kill(os.getpid(), signal.SIGINT)  # held by defer_interrupt until the step is complete
        return real(optimizer, grad_clip)

    monkeypatch.setattr(sft, "clip_and_step", ctrl_c_in_step_two)
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="interrupted after step 2"):
        _, log = _sft(out, steps=4)
    assert [r["step"] for r in log] == [1, 2] and "loss" in log.last
    assert [r["step"] for r in MetricLog.load_jsonl(out / "log.jsonl")] == [1, 2]
    assert find_checkpoint(out).name == "step_000002"


# -- checkpoints that do not cover their model (issue 40, item 1) ----------------------------------------------
def _drop_tensors(f, pred):
    from safetensors.torch import load_file, save_file

    w = load_file(str(f))
    save_file({k: v for k, v in w.items() if not pred(k)}, str(f), metadata={"format": "pt"})


def _edit_config(folder, **text):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["text_config"].update(text)
    cfg["text_config"].pop("layer_types", None)  # transformers derives it from num_hidden_layers
    (folder / "config.json").write_text(json.dumps(cfg))


def test_a_checkpoint_missing_a_layer_is_refused_naming_folder_and_keys(tmp_path):
    ds = _dataset(tmp_path / "ds")
    folder = tiny_policy().save(tmp_path / "p")
    _drop_tensors(folder / "model.safetensors", lambda k: "layers.1." in k)
    with refused(ValueError, folder, "model.layers.1.*", "num_hidden_layers = 2"):
        cli_main(["eval", "--policy", str(folder), "--data", str(ds)])
    folder = tiny_policy().save(tmp_path / "q")  # one tensor gone, one foreign: named one by one
    _drop_tensors(folder / "model.safetensors", lambda k: k == "model.layers.0.mlp.up_proj.weight")
    with refused(ValueError, folder, "1 missing", "up_proj"):
        load_policy(folder)
    out = tmp_path / "run"  # --resume from a checkpoint missing a layer
    _sft(out, steps=1)
    _drop_tensors(find_checkpoint(out) / "model.safetensors", lambda k: "layers.1." in k)
    with refused(ValueError, find_checkpoint(out), "layers.1.*"):
        _sft(out, steps=2, resume=True)


def test_a_config_asking_for_more_or_bigger_layers_is_refused_before_the_model_is_built(tmp_path, monkeypatch):
    import transformers

    folder = tiny_policy().save(tmp_path / "p")
    _edit_config(folder, num_hidden_layers=1000)  # sizes past any real model's: test_a_config_claiming_absurd_...
    monkeypatch.setattr(
        transformers.AutoModelForImageTextToText, "from_pretrained", lambda *a, **k: pytest.fail("the model was built")
    )
    with refused(ValueError, folder, "num_hidden_layers = 1000", "998 missing"):
        load_policy(folder)
    folder = tiny_policy().save(tmp_path / "q")
    _edit_config(folder, num_hidden_layers=3)
    with refused(ValueError, folder, "model.layers.2.*"):
        load_policy(folder)
    folder = tiny_policy().save(tmp_path / "r")
    _edit_config(folder, intermediate_size=99999)
    with refused(ValueError, folder, "mis-shaped", "mlp.up_proj.weight [256, 128] (the model's [99999, 128])"):
        load_policy(folder)


# -- one writer per folder (item 2) ------------------------------------------------------------------------------
@contextlib.contextmanager
def _held_by_another_process(folder):
    import subprocess
    import sys

    code = (
        "import sys, time\nfrom r3lab.core.files import FolderLock\nlock = FolderLock(sys.argv[1])\n"
        "print('held', flush=True)\ntime.sleep(60)\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert p.stdout.readline().strip() == "held"
        yield p.pid
    finally:
        p.kill()
        p.wait()


def test_a_second_writer_into_one_folder_is_refused(tmp_path):
    from r3lab.core.files import FolderInUse

    out = tmp_path / "run"
    _sft(out, steps=1)
    ds = tmp_path / "ds"
    with _held_by_another_process(out) as pid:
        with refused(FolderInUse, out, f"pid {pid}", "another folder"):
            _sft(out, steps=1, overwrite=True)
        assert _steps(out) == ["step_000001"]  # the first run's files are untouched
        with _held_by_another_process(ds):
            with refused(FolderInUse, ds):
                cli_main(["data", "build", "--out", str(ds), "--n", "2", "--filter", "false"])
    _sft(out, steps=2, resume=True)  # the holder is gone: the folder is free, and no lock file is left behind
    assert not (out / ".r3lab.lock").exists() and _steps(out)[-1] == "step_000002"


# -- partial results never look whole; destinations checked first (items 7, 9) ---------------------------------
def _ctrl_c_on_call(monkeypatch, module, n):
    """`module.rollout` raises KeyboardInterrupt on its n-th call (as Ctrl-C between two chunks)."""
    real, calls = module.rollout, []

    def rollout(*a, **k):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(module, "rollout", rollout)


def test_ctrl_c_during_eval_keeps_the_finished_rollouts_marked_partial(tmp_path, monkeypatch):
    import r3lab.evaluation.evaluation as evaluation

    ds, out = _dataset(tmp_path / "ds"), tmp_path / "ev"
    argv = [
        "eval",
        "--policy",
        str(tiny_policy().save(tmp_path / "p")),
        "--data",
        str(ds),
        "--out",
        str(out),
        "--batch-rows",
        "2",
        "--max-new-tokens",
        "4",
    ]
    _ctrl_c_on_call(monkeypatch, evaluation, 2)
    with pytest.warns(UserWarning, match="interrupted after 2 of 4 samples"):
        assert cli_main(argv) == 130
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] is False and res["rows"]["all"]["n"] == 2
    assert len((out / "trajectories.jsonl").read_text().splitlines()) == 2
    with refused(FileExistsError, out, "--overwrite true"):  # an existing --out is refused before any rollout
        cli_main(argv)
    monkeypatch.undo()
    assert cli_main(argv + ["--overwrite", "true"]) == 0
    assert json.loads((out / "results.json").read_text())["complete"] is True


def test_eval_out_is_checked_before_the_model_loads(tmp_path, monkeypatch):
    import r3lab.cli.evaluate as cli_eval

    ds = _dataset(tmp_path / "ds")
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(cli_eval, "load_start_policy", lambda *a: pytest.fail("the model loaded"))
    with refused(NotADirectoryError, tmp_path / "file"):
        cli_main(["eval", "--data", str(ds), "--out", str(tmp_path / "file")])
    with refused(ValueError, "folder for the evaluation is empty"):
        cli_main(["eval", "--data", str(ds), "--out", " "])


def test_ctrl_c_during_bench_marks_the_run_partial_and_the_dashboard_says_so(tmp_path, monkeypatch):
    import r3lab.bench.run as bench_run
    from r3lab.bench.run import load_bench_run
    from r3lab.testing.mini_benchmarks import write_benchmark

    data, out = write_benchmark("vstar", tmp_path), tmp_path / "run"
    argv = [
        "bench",
        "vstar",
        "--data",
        str(data),
        "--policy",
        str(tiny_policy().save(tmp_path / "p")),
        "--out",
        str(out),
        "--batch",
        "2",
        "--max-new-tokens",
        "2",
    ]
    _ctrl_c_on_call(monkeypatch, bench_run, 2)
    with pytest.warns(UserWarning, match="interrupted after 2 of 5 questions"):
        assert cli_main(argv) == 130
    assert json.loads((out / "results.json").read_text())["complete"] is False
    assert "partial run: 2 of 5" in (out / "table.md").read_text()
    with pytest.warns(UserWarning, match="partial run"):
        assert len(load_bench_run(out, images=False)[0]) == 2
    with refused(FileExistsError, out, "--overwrite true"):
        cli_main(argv)


# -- types and boxes in data (items 3, 8) ------------------------------------------------------------------------
def _crop(edit):
    def on_line_2(k, r):
        if k == 2:
            for p in r["rationale"]:
                if p["kind"] == "image":
                    edit(p)

    return on_line_2


@pytest.mark.parametrize(
    "edit,names",
    [
        (lambda k, r: k == 2 and r.update(answers="yes"), ["answers must be a", "list of strings", "'yes'"]),
        (lambda k, r: k == 2 and r.update(answers=[]), ["answers must be a non-empty list"]),
        (lambda k, r: k == 2 and r.update(question=7), ["question must be a string"]),
        (_crop(lambda p: p.update(box_input=[float("nan"), 1, 5, 5])), ["crop box", "finite"]),
        (_crop(lambda p: p.update(box_input=[50, 50, 10, 10])), ["crop box", "inverted"]),
        (_crop(lambda p: p.update(box_input=[-50, -50, 10, 10])), ["crop box", "outside"]),
        (_crop(lambda p: p.update(box_input=[0, 0, 9999, 9999])), ["crop box", "outside its"]),
        (lambda k, r: k == 2 and r.update(regions=[[-5, 0, 10, 10]]), ["region 0", "outside its 448x336 image"]),
        (lambda k, r: k == 2 and r.update(size=[-1, 0]), ["size must be [width, height]"]),
    ],
)
def test_a_mistyped_field_or_a_box_outside_its_image_names_file_line_and_sample(tmp_path, edit, names):
    ds = _dataset(tmp_path / "ds", edit=edit)
    meta = json.loads((ds / "meta.json").read_text())  # the view its crop boxes are in, as data build writes it
    (ds / "meta.json").write_text(json.dumps({**meta, "view": dict(vars(tiny_policy().view))}))
    with refused(ValueError, f"{ds / 'samples.jsonl'}:2", "toy1", *names):
        load_dataset(ds)


def test_a_line_that_is_not_utf8_is_named(tmp_path):
    ds = _dataset(tmp_path / "ds")
    raw = (ds / "samples.jsonl").read_bytes().split(b"\n")
    raw[2] = raw[2].replace(b'"question": "', b'"question": "\xff', 1)
    (ds / "samples.jsonl").write_bytes(b"\n".join(raw))
    with refused(ValueError, f"{ds / 'samples.jsonl'}:3", "not UTF-8", "0xff"):
        load_dataset(ds)


def test_an_imported_box_outside_its_image_is_reported_by_record(tmp_path):
    from r3lab.data.grounded_vqa import import_grounded_vqa

    Image.new("RGB", (448, 336)).save(tmp_path / "a.png")
    recs = [
        {"image": "a.png", "question": "q", "answer": "x", "box": b}
        for b in ([-500, -300, 20, 30], [500, 300, 99999, 99999], [10, 10, 40, 40])
    ]
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    ok, rep = import_grounded_vqa(tmp_path / "g.jsonl", errors="report")
    assert len(ok) == 1 and [n for n, _ in rep.errors] == [1, 2]
    assert all("outside its 448x336 image" in m for _, m in rep.errors)


# -- size bounds (item 5) ----------------------------------------------------------------------------------------
def test_counts_and_texts_beyond_their_bounds_are_refused_up_front(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["data", "build", "--out", str(tmp_path / "new"), "--n", "99999999999"])
    assert e.value.code == 2 and "at most 1,000,000 samples" in capsys.readouterr().err
    ds = _dataset(tmp_path / "ds", edit=lambda k, r: k == 3 and r.update(question="why? " * 300_000))
    with refused(ValueError, f"{ds / 'samples.jsonl'}:3", "toy2", "1,500,000 characters"):
        load_dataset(ds)
    policy = tiny_policy(fresh=True)  # a sample longer than the model's context: named before any forward
    policy.model.config.text_config.max_position_embeddings = 64
    sample = toy_samples(1, policy.view)[0]
    with refused(ValueError, sample.sample_id, "context of 64"):
        sample.reference(policy.view).tokenize(policy)


# -- --overwrite never follows a link out of the folder (item 6) ------------------------------------------------
def test_overwrite_with_linked_members_keeps_their_targets_and_ends_whole(tmp_path):
    import shutil

    ds = _dataset(tmp_path / "ds")
    store = tmp_path / "store"
    shutil.move(ds / "images", store)  # images -> ../store, as a user sharing one image store does
    (ds / "images").symlink_to(store, target_is_directory=True)
    kept = sorted(p.name for p in store.iterdir())
    assert cli_main(["data", "build", "--out", str(ds), "--n", "2", "--filter", "false", "--overwrite", "true"]) == 0
    assert len(load_dataset(ds)) == 2 and not (ds / "images").is_symlink()
    assert sorted(p.name for p in store.iterdir()) == kept  # the link's target is untouched
    out, other = tmp_path / "run", tmp_path / "other"
    _sft(other, steps=1)
    out.mkdir()
    (out / "step_000001").symlink_to(find_checkpoint(other), target_is_directory=True)
    (out / "log.jsonl").write_text("")
    _sft(out, steps=1, overwrite=True)
    assert not (out / "step_000001").is_symlink() and (find_checkpoint(other) / "model.safetensors").is_file()


# -- R-GRPO at temperature 0, Ctrl-C in train sft (items 13, 14) -------------------------------------------------
def test_rgrpo_at_temperature_zero_is_refused_naming_why(tmp_path):
    with refused(ValueError, "RGRPOConfig.rollout.temperature = 0.0", "nothing is learned"):
        cli_main(["train", "rgrpo", "--data", str(_dataset(tmp_path / "ds")), "--temperature", "0"])


def test_ctrl_c_during_train_sft_saves_and_exits_130(tmp_path, monkeypatch):
    import r3lab.train.sft as sft

    real, calls = sft.clip_and_step, []

    def ctrl_c_in_step_two(optimizer, grad_clip):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(optimizer, grad_clip)

    monkeypatch.setattr(sft, "clip_and_step", ctrl_c_in_step_two)
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="interrupted after step 2"):
        rc = cli_main(
            [
                "train",
                "sft",
                "--data",
                str(_dataset(tmp_path / "ds")),
                "--steps",
                "4",
                "--batch-size",
                "2",
                "--out-dir",
                str(out),
            ]
        )
    assert rc == 130 and find_checkpoint(out).name == "step_000002"


# -- a tampered state.json (item 10) -----------------------------------------------------------------------------
def _tamper(st, path, value):
    *keys, last = path
    for k in keys:
        st = st[k]
    st[last] = value


@pytest.mark.parametrize(
    "path,value,names",
    [
        (("rng", "python", 1), [1, 2, 3], ["RNG state"]),  # a short Mersenne Twister state
        (("rng", "python", 1), [2**80] * 625, ["RNG state"]),  # ints too large
        (("rng", "numpy", "name"), "PCG64", ["RNG state"]),
        (("rng", "torch"), [1, 2, 3], ["RNG state"]),  # a short torch state
        (("step",), "abc", ["step = 'abc'"]),
        (("step",), -5, ["step = -5"]),
        (("step",), 10**30, ["step = 10000000000000000000000000000"]),
        (("step",), 500, ["at step 500, beyond the 2 steps"]),
        (("optimizer", "param_groups"), [], ["optimizer state"]),
        (("log",), "rows", ["log is not a list"]),
    ],
)
def test_a_tampered_state_json_is_refused_naming_it_before_anything_changes(tmp_path, path, value, names):
    out = tmp_path / "run"
    _sft(out, steps=1)
    f = find_checkpoint(out) / "state.json"
    st = json.loads(f.read_text())
    _tamper(st, path, value)
    f.write_text(json.dumps(st))
    with refused(ValueError, f, *names):
        _sft(out, steps=2, resume=True)


# -- paths in data stay inside its folder (item 11) --------------------------------------------------------------
@pytest.mark.parametrize("path", ["../../../../etc/passwd", "/etc/hostname", "images/../../x.png"])
def test_an_image_path_leaving_the_dataset_is_refused(tmp_path, monkeypatch, path):
    from r3lab.bench.readers import read_benchmark
    from r3lab.testing.mini_benchmarks import write_benchmark

    ds = _dataset(tmp_path / "ds", edit=lambda k, r: k == 2 and r.update(image=path))
    with refused(ValueError, f"{ds / 'samples.jsonl'}:2", repr(path), "leaves the folder"):
        load_dataset(ds)
    data = write_benchmark("vstar", tmp_path / "b")
    qfile = data / "test_questions.jsonl" if data.is_dir() else data
    lines = qfile.read_text().splitlines()
    lines[0] = json.dumps({**json.loads(lines[0]), "image": path})
    qfile.write_text("\n".join(lines) + "\n")
    with refused(ValueError, "line 1", "leaves the folder"):
        read_benchmark("vstar", data)
    monkeypatch.setenv("R3LAB_ALLOW_OUTSIDE_PATHS", "1")  # the user's opt-in: then only "not an image" remains
    with pytest.raises((ValueError, FileNotFoundError)) as e:
        load_dataset(ds)
    assert "leaves the folder" not in str(e.value)


# -- empty paths, empty files, cut-off images, non-UTF-8 logs (items 4, 18) --------------------------------------
def test_an_empty_path_is_refused_not_read_as_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with refused(ValueError, "is empty"):
        cli_main(["data", "build", "--out", "", "--n", "2"])
    with refused(ValueError, "dataset path is empty"):
        cli_main(["data", "stats", ""])
    assert list(tmp_path.iterdir()) == []


def test_data_stats_refuses_what_training_refuses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.jsonl").write_text("")
    with refused(ValueError, "empty.jsonl holds no samples"):
        cli_main(["data", "stats", "empty.jsonl"])
    assert not (tmp_path / "stats.png").exists()
    ds = _dataset(tmp_path / "ds")
    png = sorted((ds / "images").iterdir())[1]
    png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])  # the header survives, the pixels do not
    with refused(ValueError, png.name, "not a readable image"):
        cli_main(["data", "stats", str(ds)])


def test_a_log_that_is_not_utf8_is_named_by_the_dashboard(tmp_path):
    out = tmp_path / "run"
    _sft(out, steps=1)
    (out / "log.jsonl").write_bytes((out / "log.jsonl").read_bytes() + b'{"step": 2, "loss": "\xff"}\n')
    with refused(ValueError, out / "log.jsonl", "not a UTF-8 text file", "line 2", "0xff"):
        cli_main(["dashboard", str(out)])


# -- files respect the umask (item 12) ---------------------------------------------------------------------------
def test_checkpoints_datasets_and_results_respect_the_umask(tmp_path):
    old = os.umask(0o022)  # a shared box: the group may read
    try:
        out, ds = tmp_path / "run", _dataset(tmp_path / "ds")
        _sft(out, steps=1)
        ckpt = find_checkpoint(out)
        modes = {
            p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777
            for p in (
                ckpt,
                ckpt / "state.json",
                ckpt / "model.safetensors",
                ckpt / "optimizer.safetensors",
                out / "latest",
                out / "log.jsonl",
                ds,
                ds / "images",
                ds / "samples.jsonl",
                ds / "meta.json",
            )
        }
    finally:
        os.umask(old)
    assert {k: oct(v) for k, v in modes.items() if v not in (0o755, 0o644)} == {}


# -- duplicates (item 16), hostile short images in a TSV (item 20) -----------------------------------------------
def test_duplicates_are_refused_naming_both_places(tmp_path):
    from r3lab.bench.readers import read_benchmark
    from r3lab.data.formats import export_rl, import_rl
    from r3lab.testing.mini_benchmarks import write_benchmark

    ds = _dataset(tmp_path / "ds", edit=lambda k, r: k == 3 and r.update(sample_id="toy0"))
    with refused(ValueError, f"{ds / 'samples.jsonl'}:3", "sample_id 'toy0' repeats line 1"):
        load_dataset(ds)
    data = write_benchmark("vstar", tmp_path / "v")
    qfile = data / "test_questions.jsonl" if data.is_dir() else data
    lines = qfile.read_text().splitlines()
    qfile.write_text("\n".join(lines + lines[:1]) + "\n")
    with refused(ValueError, f"line {len(lines) + 1}", "repeats line 1"):
        read_benchmark("vstar", data)
    tsv = write_benchmark("hrbench4k", tmp_path / "h")
    rows = tsv.read_text().splitlines()
    tsv.write_text("\n".join(rows + rows[1:2]) + "\n")
    with refused(ValueError, "index", "repeats row 1"):
        read_benchmark("hrbench4k", tsv)
    f = export_rl(toy_samples(2, tiny_policy().view), tmp_path / "rl" / "rl.json")
    recs = json.loads(f.read_text())
    f.write_text(json.dumps(recs + recs[:1]))
    with refused(ValueError, "record 3", "repeats record 1"):
        import_rl(f)


def test_a_decompression_bomb_in_a_tsv_row_is_named_as_an_image(tmp_path):
    from r3lab.bench.readers import read_benchmark
    from r3lab.testing.mini_benchmarks import write_benchmark

    tsv = write_benchmark("hrbench4k", tmp_path / "h")
    rows = [r.split("\t") for r in tsv.read_text().splitlines()]
    col = rows[0].index("image")
    rows[1][col] = base64.b64encode(png_header(200000, 200000)).decode()
    tsv.write_text("\n".join("\t".join(r) for r in rows) + "\n")
    with refused(ValueError, "row 1", "DecompressionBombError"):  # not "neither a base64 image nor an index"
        read_benchmark("hrbench4k", tsv)


# -- a full disk during training (item 17) -----------------------------------------------------------------------
def test_a_full_disk_names_the_last_good_checkpoint(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    import r3lab.train.checkpoint as ck

    out = tmp_path / "run"
    _sft(out, steps=1)

    def full(*a, **k):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")

    monkeypatch.setattr(ck, "save_file", full)
    with refused(OSError, "could not write step 2", "StorageFull", "step_000001", "--resume true"):
        _sft(out, steps=2, resume=True)
    assert _steps(out) == ["step_000001"] and sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


# -- flags and a run that would delete its own start (item 20) --------------------------------------------------
def test_bad_dtype_attn_and_seed_flags_are_refused_naming_the_choices(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds")
    with pytest.raises(SystemExit) as e:
        cli_main(["eval", "--data", str(ds), "--dtype", "int8"])
    assert e.value.code == 2 and "'float32', 'bfloat16', 'float16'" in capsys.readouterr().err
    with refused(ValueError, "--attn 'bogus'", "sdpa", "eager"):
        cli_main(["eval", "--data", str(ds), "--attn", "bogus"])
    with pytest.raises(SystemExit) as e:
        cli_main(["data", "build", "--out", str(tmp_path / "new"), "--seed", "-1"])
    assert e.value.code == 2 and "expected an integer in [0, 4294967295]" in capsys.readouterr().err


def test_overwrite_never_deletes_the_checkpoint_the_run_starts_from(tmp_path):
    out = tmp_path / "run"
    _sft(out, steps=1)
    with refused(ValueError, "delete its own starting checkpoint", "--resume true"):
        _sft(out, steps=1, overwrite=True, policy=load_policy(out))
    assert _steps(out) == ["step_000001"]


# -- hardening 3: sizes before anything is built, images against their lines, links, API types ------------------
@pytest.mark.parametrize(
    "where,field",
    [
        ("text_config", "num_hidden_layers"),
        ("vision_config", "depth"),
        ("text_config", "hidden_size"),
        ("text_config", "vocab_size"),
    ],
)
def test_a_config_claiming_absurd_sizes_is_refused_before_anything_is_built(tmp_path, monkeypatch, where, field):
    import r3lab.model.real as real

    folder = tiny_policy().save(tmp_path / "p")
    cfg = json.loads((folder / "config.json").read_text())
    cfg[where][field] = 10**9
    (folder / "config.json").write_text(json.dumps(cfg))
    monkeypatch.setattr(real, "build_real", lambda *a, **k: pytest.fail("the model was built"))
    with refused(ValueError, folder / "config.json", f"{where}.{field} = 1000000000", "from 1 to"):
        cli_main(["plan", "--policy", str(folder)])
    with refused(ValueError, folder / "config.json", f"{where}.{field} = 1000000000"):  # not a 10^9-element set
        load_policy(folder)


def _swap_image(ds, name, make):
    """Replace the dataset's image `name` with what `make(path)` writes there."""
    (ds / "images" / name).unlink()
    make(ds / "images" / name)


def test_an_image_that_does_not_match_its_line_is_refused_at_load(tmp_path):
    ds = _dataset(tmp_path / "ds")
    _swap_image(ds, "toy2.png", lambda p: Image.new("RGB", (1, 1)).save(p))  # thumbnailed after the line was written
    with refused(ValueError, "samples.jsonl:3", "'toy2'", "says size 448x336", "is 1x1"):
        cli_main(["eval", "--data", str(ds), "--n", "0", "--out", str(tmp_path / "ev")])
    assert not (tmp_path / "ev").exists()
    report = load_dataset(ds, errors="report")
    assert len(report) == 3 and [e.line for e in report.errors] == [3] and "is 1x1" in report.errors[0].message
    ds = _dataset(tmp_path / "ds2", edit=lambda k, r: k == 2 and r.pop("size"))  # no size: the boxes still must fit
    _swap_image(ds, "toy1.png", lambda p: Image.new("RGB", (40, 40)).save(p))
    with refused(ValueError, "samples.jsonl:2", "'toy1'"):
        load_dataset(ds)


def test_a_cut_off_image_is_named_by_file_and_line_when_the_dataset_loads(tmp_path):
    ds = _dataset(tmp_path / "ds")
    png = ds / "images" / "toy1.png"
    png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])  # the header survives, the pixels do not
    report = load_dataset(ds, errors="report")
    assert [e.line for e in report.errors] == [2] and "samples.jsonl:2" in report.errors[0].message
    assert "toy1.png is not a readable image" in report.errors[0].message
    jpg = _dataset(tmp_path / "jpg", edit=lambda k, r: r.update(image=r["image"].replace(".png", ".jpg")))
    for p in sorted((jpg / "images").glob("*.png")):
        Image.open(p).convert("RGB").save(p.with_suffix(".jpg"), quality=90)
    cut = jpg / "images" / "toy3.jpg"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    with refused(ValueError, "samples.jsonl:4", "toy3.jpg is not a readable image", "truncated"):
        load_dataset(jpg)


def test_a_link_inside_a_dataset_that_points_outside_is_refused_like_a_path(tmp_path, monkeypatch):
    ds = _dataset(tmp_path / "ds")
    toy_image().save(tmp_path / "outside.png")
    _swap_image(ds, "toy2.png", lambda p: p.symlink_to(tmp_path / "outside.png"))
    with refused(ValueError, f"{ds / 'samples.jsonl'}:3", "'images/toy2.png'", "is a link to", "outside.png"):
        load_dataset(ds)
    assert [e.line for e in load_dataset(ds, errors="report").errors] == [3]
    _swap_image(ds, "toy2.png", lambda p: p.symlink_to("toy1.png"))  # a link that stays inside is the user's own
    assert len(load_dataset(ds)) == 4
    _swap_image(ds, "toy2.png", lambda p: p.symlink_to(tmp_path / "outside.png"))
    monkeypatch.setenv("R3LAB_ALLOW_OUTSIDE_PATHS", "1")  # the opt-in for trusted data
    assert len(load_dataset(ds)) == 4


@pytest.mark.parametrize("path", ["/abs", "../outside.png", "link.png"])
def test_an_imported_record_cannot_name_an_image_outside_its_root(tmp_path, monkeypatch, path):
    src = tmp_path / "src"
    src.mkdir()
    toy_image().save(tmp_path / "outside.png")
    (src / "link.png").symlink_to(tmp_path / "outside.png")
    path = str(tmp_path / "outside.png") if path == "/abs" else path
    (src / "rl.json").write_text(json.dumps([{"image_path": path, "question": "q?", "answer": "a", "source": "x"}]))
    argv = ["data", "import", "--format", "vlm-r3-rl", str(src / "rl.json"), "--out", str(tmp_path / "o")]
    with refused(ValueError, "rl.json: record 1", path):
        cli_main(argv)
    assert not (tmp_path / "o").exists()
    if os.path.isabs(path):  # the official files' absolute paths: the user names the folder the images are in
        assert cli_main(argv + ["--image-root", str(tmp_path)]) == 0
    monkeypatch.setenv("R3LAB_ALLOW_OUTSIDE_PATHS", "1")  # or trusts the file
    assert cli_main(argv[:-1] + [str(tmp_path / "o2")]) == 0


def test_wrong_types_and_empty_values_at_the_python_api_are_refused(tmp_path, monkeypatch):
    from r3lab import evaluate
    from r3lab.data.vlir import build_samples

    policy = tiny_policy()
    with refused(TypeError, "list of r3lab Samples", "got str"):
        evaluate(policy, "notalist")
    with refused(TypeError, "list of r3lab Samples", "holding int"):
        evaluate(policy, [1, 2])
    with refused(ValueError, "n = -1"):
        build_samples(-1)
    assert build_samples(0) == []
    monkeypatch.chdir(tiny_policy().save(tmp_path / "p"))  # a policy folder right here is still not read
    with refused(ValueError, "policy folder is empty"):
        load_policy("")
    (tmp_path / "notes").mkdir()
    with refused(
        FileNotFoundError, "has no config.json", "Qwen2.5-VL", "Qwen3-VL", "Qwen3.5", "SmolVLM", "training run"
    ):
        load_policy(tmp_path / "notes")


def test_explain_with_no_methods_is_refused_before_the_model_loads(tmp_path, monkeypatch):
    import r3lab.cli.explain as cli_explain

    ds = _dataset(tmp_path / "ds")
    monkeypatch.setattr(cli_explain, "load_start_policy", lambda *a, **k: pytest.fail("the model was loaded"))
    with refused(ValueError, "--methods is empty", "attention"):
        cli_main(["explain", "--data", str(ds), "--methods", "", "--out", str(tmp_path / "ex")])
    assert not (tmp_path / "ex").exists()


@pytest.mark.parametrize("name", ["A" * 70_000, "a/" * 3000 + "x.png", "é" * 200 + ".png"])
def test_an_image_name_no_file_system_allows_is_refused_in_a_line(tmp_path, name):
    """A crop name of 70,000 characters (the fuzzer's find) is a ValueError naming the record, never an OSError
    echoing the name whole."""
    from r3lab.audit.imported import load_trajectories
    from r3lab.testing.mini_runs import write_vlmr3_eval

    run = write_vlmr3_eval(tmp_path / "v")
    rec = json.loads(run.read_text())[0]
    rec["img_crop_list"] = [name]
    bad = run.with_name("bad.json")
    bad.write_text(json.dumps([rec]))
    with pytest.raises(ValueError, match="not a file name any file system allows") as e:
        load_trajectories(bad, "vlm-r3", image_root=tmp_path / "v", load_images=False)
    assert len(str(e.value)) < 600
