"""The QA pass of hardening 4, defect by defect (its numbers), each through its public door: every size bounded
before work, hostile values never expanded, imported runs held to their root, NaN / inf refused where a number is
read, and the students' doors (`check`, `answer`) answering with a line. The fuzzed version: tests/test_fuzz.py."""

import contextlib
import json
import math
import os

import pytest
from PIL import Image

from r3lab.cli.app import main as cli_main
from r3lab.testing import tiny_policy, toy_image, toy_samples


@contextlib.contextmanager
def refused(cls: type, *names):
    """The block raises exactly `cls` naming every one of `names`, in a message of bounded length."""
    with pytest.raises(Exception) as info:
        yield info
    assert type(info.value) is cls, f"{type(info.value).__name__} instead of {cls.__name__}: {info.value}"
    for name in names:
        assert str(name) in str(info.value), f"{name!r} is not named in: {info.value}"
    assert len(str(info.value)) < 2000, f"a message of {len(str(info.value))} characters"


@pytest.fixture
def no_recipe(monkeypatch):
    """`r3lab recipe` up to its settings: the run itself would fail the test."""
    import r3lab.recipe.recipe as recipe

    monkeypatch.setattr(recipe.Recipe, "run", lambda self: pytest.fail("the recipe started"))


def _recipe(tmp_path, *argv):
    return cli_main(["recipe", "--out", str(tmp_path / "run"), *argv])


def _config(tmp_path, text: str, name: str = "c.yaml"):
    (tmp_path / name).write_text(text)
    return ["--config", str(tmp_path / name)]


# -- 1 (High): a question whose tokens outgrow the machine, refused before any rollout ---------------------------
def test_01_a_20000_character_question_is_refused_with_the_memory_it_would_take(tmp_path, monkeypatch):
    from r3lab.data.dataset import save_dataset
    from r3lab.engine import budget

    policy = tiny_policy()
    samples = toy_samples(6, policy.view)  # as the QA's dataset: a prefill of 6 prompts padded to 20,000 tokens
    samples[2].question = "What ...? " + "Z" * 20000
    data = save_dataset(samples, tmp_path / "d", progress=False)
    monkeypatch.setattr(budget, "free_memory", lambda: 20 << 30)  # the QA machine's 21 GiB free, whatever this one has
    with refused(ValueError, "sample 'toy2'", "its prompt is 20,", "GiB", "batch_rows"):
        cli_main(["eval", "--data", str(data), "--necessity", "false", "--out", str(tmp_path / "e")])
    assert not (tmp_path / "e").exists()


# -- 2 (High): --audit-k bounded ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["bench", "eval"])
def test_02_audit_k_has_an_upper_bound_checked_before_the_model_loads(tmp_path, command, monkeypatch):
    from r3lab.testing.mini_benchmarks import write_benchmark

    monkeypatch.setattr(
        f"r3lab.cli.{'bench' if command == 'bench' else 'evaluate'}.load_start_policy",
        lambda *a, **k: pytest.fail("the policy was loaded first"),
    )
    data = write_benchmark("vstar", tmp_path / "b")
    argv = (
        ["bench", "vstar", "--data", str(data), "--n", "2"] if command == "bench" else ["eval", "--data", str(tmp_path)]
    )
    with refused(ValueError, "k = 100000", "[1, 64]", "one batch"):
        cli_main(argv + ["--audit", "true", "--audit-k", "100000", "--out", str(tmp_path / "o")])


# -- 3 (Medium): imported runs held to their image root ----------------------------------------------------------
@pytest.mark.parametrize("how", ["dotdot", "absolute", "link"])
def test_03_report_audit_reads_no_image_outside_the_runs_root(tmp_path, how, monkeypatch):
    from r3lab.testing.mini_runs import write_deepeyes_eval

    run = write_deepeyes_eval(tmp_path / "de")
    toy_image().save(tmp_path / "outside.jpg")
    recs = [json.loads(x) for x in run.read_text().splitlines()]
    if how == "link":
        (tmp_path / "de" / "images" / recs[0]["image"]).unlink()
        (tmp_path / "de" / "images" / recs[0]["image"]).symlink_to(tmp_path / "outside.jpg")
    else:
        recs[0]["image"] = "../../outside.jpg" if how == "dotdot" else str(tmp_path / "outside.jpg")
    run.write_text("".join(json.dumps(r) + "\n" for r in recs))
    argv = [
        "report",
        "audit",
        str(run),
        "--format",
        "deepeyes",
        "--image-root",
        str(tmp_path / "de" / "images"),
        "--out",
        str(tmp_path / "ra"),
    ]
    with refused(ValueError, "line 1", "the image root", "R3LAB_ALLOW_OUTSIDE_PATHS=1"):
        cli_main(argv)
    assert not (tmp_path / "ra" / "report.html").exists()
    monkeypatch.setenv("R3LAB_ALLOW_OUTSIDE_PATHS", "1")  # the one opt-out, for a run you trust
    assert cli_main(argv) == 0 and (tmp_path / "ra" / "report.html").is_file()


def test_03_the_vlm_r3_and_trl_importers_share_the_rule(tmp_path):
    from r3lab.importers.traces import import_vlmr3_eval
    from r3lab.importers.trl import import_trl_completions

    toy_image().save(tmp_path / "outside.png")
    (tmp_path / "run").mkdir()
    rec = {"image_path": str(tmp_path / "outside.png"), "question": "q?", "response_list": ["<answer>a</answer>"]}
    (tmp_path / "run" / "sft.json").write_text(json.dumps([rec]))
    with refused(ValueError, "record 1", "leaves the image root"):
        import_vlmr3_eval(tmp_path / "run" / "sft.json")
    (tmp_path / "run" / "c.jsonl").write_text(
        json.dumps({"prompt": "q?", "completion": "<answer>a</answer>", "image": "../../../etc/passwd"}) + "\n"
    )
    with refused(ValueError, "line 1", "leaves the image root"):
        import_trl_completions(tmp_path / "run" / "c.jsonl")


# -- 4 (Medium): NaN / inf mix weights refused with the settings -------------------------------------------------
@pytest.mark.parametrize(
    "kw",
    [
        {"rgrpo": {"mix": {"read_one": math.nan, "compare_two": 1}}},
        {"rgrpo": {"mix": {"read_one": math.inf}}},
        {"sft.mix.weights": {"read_one": math.nan}},
        {"sft_mix": {"compare_two": math.inf}},
    ],
)
def test_04_nan_and_inf_mix_weights_are_refused_before_any_stage(kw):
    from r3lab.recipe.recipe_config import RecipeConfig

    with refused(ValueError, "finite weights"):
        RecipeConfig.from_settings(**kw)


@pytest.mark.parametrize(
    "argv",
    [
        ["--rgrpo-mix", '{"read_one": NaN, "compare_two": 1}'],
        ["--sft-mix", '{"weights": {"read_one": Infinity}}'],
        ["--set", 'sft.mix.weights={"read_one":NaN}'],
        ["--set", 'rgrpo.mix={"read_one":1e999}'],
    ],
)
def test_04_nan_from_the_command_line_is_an_argument_error(tmp_path, argv, no_recipe, capsys):
    with pytest.raises(SystemExit) as e:
        _recipe(tmp_path, *argv)
    assert e.value.code == 2 and "must be finite" in capsys.readouterr().err


# -- 6 (Medium): a YAML alias bomb is refused before anything is built --------------------------------------------
BOMB = (
    "a: &a ["
    + ",".join(['"lol"'] * 9)
    + "]\n"
    + "".join(f"{k}: &{k} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, k in zip("abcdefgh", "bcdefghi"))
    + "seed: *i\n"
)


def test_06_a_yaml_alias_bomb_is_refused_unexpanded(tmp_path, no_recipe):
    assert len(BOMB) < 600  # 9^9 strings once expanded
    with refused(ValueError, "c.yaml", "line 1", "anchors and aliases"):
        _recipe(tmp_path, *_config(tmp_path, BOMB))
    with refused(ValueError, "anchors and aliases"):  # the bomb as a key of rgrpo.mix, the same
        _recipe(tmp_path, *_config(tmp_path, BOMB.replace("seed: *i", "rgrpo: {mix: {*i : 1}}")))


def test_06_a_huge_value_from_python_is_shown_short():
    from r3lab.recipe.recipe_config import RecipeConfig

    nest = ["lol"] * 9
    for _ in range(8):  # the bomb's shape built in Python: shared lists, 9^9 leaves
        nest = [nest] * 9
    with refused(ValueError, "RecipeConfig.seed = [[[", "...", "is not allowed"):
        RecipeConfig(seed=nest)


# -- 7 (Low): wrong types give one line, not a traceback ---------------------------------------------------------
def test_07_wrong_types_in_a_config_are_one_line(tmp_path, no_recipe):
    with refused(ValueError, "RecipeConfig.rows = 5", "text"):
        _recipe(tmp_path, *_config(tmp_path, "rows: 5\n"))
    with refused(ValueError, "read.check", "a Check needs measure"):
        _recipe(tmp_path, "--set", 'read.check={"n":5}')
    from r3lab.recipe.recipe_config import RecipeConfig

    assert RecipeConfig(families=["read_one", "compare_two"]).families == "read_one,compare_two"  # a YAML list reads


# -- 8, 9 (Low): counts, steps, seeds and tiny sizes bounded -----------------------------------------------------
@pytest.mark.parametrize(
    "text,names",
    [
        ("n_train: 100000000000000000000000000000000\n", ["RecipeConfig.n_train", "[1, 200000]", "held in memory"]),
        ("seed: 100000000000000000000000000000000\n", ["RecipeConfig.seed", "[0, 4294967295]", "32-bit"]),
        ("tiny: {hidden: 1000000000000}\n", ["tiny.hidden", "[8, 8192]", "built from scratch in float32"]),
        ("tiny: {layers: 100000}\n", ["tiny.layers", "[1, 128]"]),
        ("tiny: {hidden: 8192, intermediate: 65536, layers: 128}\n", ["parameters", "tiny model"]),
        ("view: {min_pixels: 1000000000000, max_pixels: 1000000000000}\n", ["view.min_pixels", "67,108,864"]),
        ("world: {canvas_sizes: [[1000000, 1000000]]}\n", ["world.canvas_sizes", "[64, 4096]"]),
    ],
)
def test_08_sizes_a_config_sets_are_bounded_naming_the_limit(tmp_path, text, names, no_recipe):
    with refused(ValueError, *names):
        _recipe(tmp_path, *_config(tmp_path, text))


def test_08_phase_steps_from_set_are_bounded(tmp_path, no_recipe):
    with refused(ValueError, "read.steps = 99999999999999999999", "[0, 1000000]", "weeks"):
        _recipe(tmp_path, "--set", "read.steps=99999999999999999999")


# -- 10 (Low): a key given twice is refused ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,name,line",
    [
        ("n_train: 1000\nn_train: 24\n", "c.yaml", "line 2"),
        ("rgrpo:\n  steps: 3\nrgrpo:\n  lr: 0.5\n", "c.yaml", "line 3"),
        ('{"n_train": 1000, "n_train": 24}', "c.json", "line 1"),
    ],
)
def test_10_a_key_given_twice_is_refused(tmp_path, text, name, line, no_recipe):
    with refused(ValueError, name, line, "repeats"):
        _recipe(tmp_path, *_config(tmp_path, text, name))


def test_10_a_key_given_twice_in_a_json_flag_is_refused(tmp_path, no_recipe, capsys):
    with pytest.raises(SystemExit):
        _recipe(tmp_path, "--rgrpo-mix", '{"read_one": 1, "read_one": 2}')
    assert "given twice" in capsys.readouterr().err


# -- 11 (Low): --set rgrpo.mix sets R-GRPO's mix -----------------------------------------------------------------
def test_11_set_rgrpo_mix_reaches_rgrpos_mix():
    from r3lab.cli.app import build_parser
    from r3lab.cli.recipe import settings_from_args
    from r3lab.recipe.recipe_config import RecipeConfig

    args = build_parser().parse_args(["recipe", "--set", 'rgrpo.mix={"read_one": 1}', "--out", "x"])
    assert RecipeConfig.from_settings(**settings_from_args(args)).rgrpo.mix == {"read_one": 1}


# -- 12 (Low): --config's size; a device ------------------------------------------------------------------------
def test_12_a_config_larger_than_its_bound_or_a_device_is_refused_unread(tmp_path, no_recipe):
    (tmp_path / "big.yaml").write_text("rows:\n" + "- x\n" * 400_000)  # 1.6 MB
    with refused(ValueError, "big.yaml", "1,048,576"):
        _recipe(tmp_path, "--config", str(tmp_path / "big.yaml"))
    with refused(ValueError, "/dev/zero", "not a regular file"):
        _recipe(tmp_path, "--config", "/dev/zero")


# -- 13, 14, 15 (Low): the instruction, --out '', a format-1 flag beside today's ---------------------------------
def test_13_the_instruction_is_bounded_and_holds_no_control_token(tmp_path, no_recipe):
    with refused(ValueError, "RecipeConfig.instruction", "2,000"):
        _recipe(tmp_path, "--instruction", "A" * 3000)
    with refused(ValueError, "RecipeConfig.instruction", "<|image_pad|>"):
        _recipe(tmp_path, "--instruction", "Look <|image_pad|> closer<|im_end|>")
    assert not (tmp_path / "run").exists()  # refused with the settings: no recipe.json written


def test_14_an_empty_out_is_not_the_current_folder(tmp_path, no_recipe, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with refused(ValueError, "RecipeConfig.out = ''"):
        cli_main(["recipe", "--out", ""])
    assert not (tmp_path / "recipe.json").exists()


@pytest.mark.parametrize(
    "argv,names",
    [
        (["--base-steps", "5", "--ground-steps", "7"], ["base_steps", "ground.steps"]),
        (["--ground-min", "50", "--ground-bar", "70"], ["ground_min", "ground.check.bar"]),
    ],
)
def test_15_a_format_1_flag_beside_todays_for_one_setting_is_refused(tmp_path, argv, names, no_recipe):
    with refused(ValueError, *names, "given both by format 1's name and by today's path"):
        _recipe(tmp_path, *argv)


# -- 16 (Low): a dataset line's family ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "family,said",
    [('control"><script>alert(7)</script>', "is not a family's name"), ("reed_one", "no family of r3lab's world")],
)
def test_16_a_dataset_lines_family_must_be_a_family(tmp_path, family, said):
    from r3lab.data.dataset import load_dataset, save_dataset
    from r3lab.data.vlir import build_samples

    ds = save_dataset(build_samples(2, 1, ["read_one"], progress=False), tmp_path / "d", progress=False)
    lines = [json.loads(x) for x in (ds / "samples.jsonl").read_text().splitlines()]
    lines[1]["family"] = family
    (ds / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with refused(ValueError, "samples.jsonl:2", said):
        load_dataset(ds)


# -- 17 (Low): report diff has the --format its advice names ------------------------------------------------------
def test_17_report_diff_takes_the_format_its_advice_names(tmp_path):
    from r3lab.testing.mini_runs import write_deepeyes_eval

    run = write_deepeyes_eval(tmp_path / "de")
    with refused(ValueError, "pass --format"):
        cli_main(["report", "diff", "/etc/hostname", str(run), "--out", str(tmp_path / "d0")])
    argv = [
        "report",
        "diff",
        str(run),
        str(run),
        "--format",
        "deepeyes",
        "--image-root",
        str(tmp_path / "de" / "images"),
    ]
    assert cli_main(argv + ["--out", str(tmp_path / "d1")]) == 0


# -- 18, 20 (Low): an imported question's size; a log that is not UTF-8 -------------------------------------------
def test_18_an_imported_question_larger_than_a_question_is_refused(tmp_path):
    from r3lab.importers.traces import import_deepeyes_eval
    from r3lab.testing.mini_runs import write_deepeyes_eval

    run = write_deepeyes_eval(tmp_path / "de")
    recs = [json.loads(x) for x in run.read_text().splitlines()]
    recs[0]["question"] = "Q" * 70_000
    run.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with refused(ValueError, "line 1", "70,000 characters", "65,536"):
        import_deepeyes_eval(run, image_root=tmp_path / "de" / "images", load_images=False)


def test_20_a_trl_log_that_is_not_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"prompt": "q", "completion": "a", "image": "x.png"}\n' + bytes(range(128, 256)))
    with refused(ValueError, str(path), "line 2", "UTF-8"):
        cli_main(["report", "audit", str(path), "--format", "trl", "--out", str(tmp_path / "ra")])


# -- 19, 26 (Low, Cosmetic): report audit of an eval folder: a string box, NUL and U+202E ---------------------------
def _eval_folder(tmp_path, question="What is it?", box=(1, 2, 30, 40)):
    own = {"answer": "a", "correct": True, "crops": [{"box_input": list(box), "image": "data:image/png;base64,"}]}
    rec = {"sample_id": "s1", "family": "read_one", "question": question, "answers": ["a"], "own": own, "settings": {}}
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "questions.jsonl").write_text(json.dumps(rec) + "\n")
    (tmp_path / "ev" / "results.json").write_text(json.dumps({"rows": {"all": {"n": 1, "accuracy": 1.0}}}))
    return tmp_path / "ev"


def test_19_a_string_box_in_questions_jsonl_names_file_line_and_field(tmp_path):
    ev = _eval_folder(tmp_path, box=("<b>x</b>", 1, 2, 3))
    with refused(ValueError, "questions.jsonl, line 1", "box_input"):
        cli_main(["report", "audit", str(ev)])


def test_26_report_html_writes_nul_and_bidi_controls_as_code_points(tmp_path):
    ev = _eval_folder(tmp_path, question="\u202eWhat\x00 is <b>it</b>?")
    assert cli_main(["report", "audit", str(ev)]) == 0
    page = (ev / "report.html").read_bytes()
    assert b"\x00" not in page and "\u202e".encode() not in page
    assert b"[U+202E]What[U+0000] is &lt;b&gt;it&lt;/b&gt;?" in page


# -- 21 (Low): a bool setting is a bool ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_21_rollout_configs_bools_are_bools(value):
    from r3lab.engine.config import RolloutConfig

    with refused(ValueError, "RolloutConfig.timing", "true or false"):
        RolloutConfig(timing=value)


# -- 22 (Low): a notebook parameter given twice ------------------------------------------------------------------
def test_22_a_notebook_parameter_given_twice_is_refused(tmp_path):
    with refused(ValueError, "'steps' given more than once"):
        cli_main(["notebooks", "run", "20", "-p", "steps", "5", "-p", "steps", "7", "--out", str(tmp_path / "nb")])
    assert not (tmp_path / "nb").exists()


# -- 23, 27 (Low, Cosmetic): the students' doors answer with a line -------------------------------------------------
def test_23_every_check_given_wrong_types_answers_with_a_cross_and_what_it_takes(capsys):
    import inspect

    from r3lab.course import check
    from r3lab.course.checks import CHECKS

    check("00.4", [], 0.0)  # registers every check
    for key, fn in sorted(CHECKS.items()):
        n = len([p for p in inspect.signature(fn).parameters.values() if p.default is inspect.Parameter.empty])
        for wrong in (None, "x", math.nan, 10**30, {}):
            capsys.readouterr()
            assert check(key, *[wrong] * n) is False, (key, wrong)
            out = capsys.readouterr().out
            assert out.startswith("✗ exercise") and f"check({key!r}" in out or "not yet" in out, (key, wrong, out)


@pytest.mark.parametrize("args", [("20", 1, None), ("20", "1", "A"), ("20", 1.5, "a"), (20, 1, "a")])
def test_27_answer_given_wrong_types_answers_with_a_cross(args, capsys):
    from r3lab.course.quizzes import answer

    ok = answer(*args)
    out = capsys.readouterr().out
    assert ok is (args == (20, 1, "a") and out.startswith("✓")) or (ok is False and out.startswith("✗"))


# -- 24, 25 (Cosmetic): format_version's own reason ----------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", '"2"', "2.0", "true"])
def test_24_25_a_format_version_that_is_no_format_says_so(tmp_path, value, no_recipe):
    with refused(ValueError, "format_version", "a format is a whole number from 1 to 2"):
        _recipe(tmp_path, *_config(tmp_path, f"format_version: {value}\n"))


def test_the_one_config_reader_is_exported_for_spec_files(tmp_path):
    from r3lab.core import read_config

    (tmp_path / "spec.yaml").write_text("grid:\n  lr: [0.001, 0.0001]\n")
    assert read_config(tmp_path / "spec.yaml", "sweep spec") == {"grid": {"lr": [0.001, 0.0001]}}
    (tmp_path / "spec.yaml").write_text("grid: {lr: .nan}\n")
    with refused(ValueError, "sweep spec", "grid.lr = nan"):
        read_config(tmp_path / "spec.yaml", "sweep spec")
    assert os.path.getsize(tmp_path / "spec.yaml") < 100 and Image  # (PIL imported for the image helpers)
    from r3lab.sweep.spec import read_spec  # the sweeps' spec files read by it

    (tmp_path / "sweep.yaml").write_text("command: eval\n" + BOMB.replace("seed: *i", "settings: {n: *i}"))
    with refused(ValueError, "sweep spec", "anchors and aliases"):
        read_spec(tmp_path / "sweep.yaml")


# -- 2 and 6's rule in every room: a hostile value through viz, explain, integrations and the CLI, shown short -------
HUGE = "Z" * 5_000_000  # a 5 MB string: the old messages repeated it whole (the QA's 50 MB, a tenth of it)


def _bomb(levels: int = 6):
    """An alias bomb's shape built in Python: shared lists, 9^levels leaves (9^6: a 3.7 MB repr)."""
    nest = ["lol"] * 9
    for _ in range(levels - 1):
        nest = [nest] * 9
    return nest


def _surfaces():
    from types import SimpleNamespace as NS

    from r3lab.cli.inputs import parse_calls
    from r3lab.explain.contract import WhyConfig
    from r3lab.explain.record import run_method
    from r3lab.explain.stream import target_positions
    from r3lab.explain.swaps import scored_trajectory, variant_image
    from r3lab.integrations.trl_env import CropEnvironment
    from r3lab.integrations.trl_necessity import TRLNecessity
    from r3lab.integrations.trl_rewards import reward_funcs
    from r3lab.train.rewards import RewardTerm, accuracy
    from r3lab.viz.dashboard import crop_dashboard
    from r3lab.viz.results import changed_answers

    return {  # surface: (the call, the error class, what its message must name)
        "viz.crop_dashboard format": (lambda: crop_dashboard(["a", "b"], format=HUGE), ValueError, ["format='ZZZ"]),
        "viz.crop_dashboard format (bomb)": (
            lambda: crop_dashboard(["a", "b"], format=_bomb()),
            ValueError,
            ["format=[["],
        ),
        "viz.changed_answers sample_id": (
            lambda: changed_answers([NS(sample_id=HUGE)], [NS(sample_id="b")]),
            ValueError,
            ["question 0 is 'ZZZ", "5,000,000 characters", "before and 'b' after"],
        ),
        "explain.WhyConfig answer_from": (lambda: WhyConfig(answer_from=HUGE), ValueError, ["answer_from="]),
        "explain.WhyConfig importance_target (bomb)": (
            lambda: WhyConfig(importance_target=_bomb()),
            ValueError,
            ["importance_target=[[["],
        ),
        "explain.WhyConfig methods": (
            lambda: WhyConfig(methods=["nope"] * 1_000_000),
            ValueError,
            ["unknown explanation method(s) ['nope'"],
        ),
        "explain.variant_image kind": (lambda: variant_image(HUGE, None, None, None), ValueError, ["kind='ZZZ"]),
        "explain.target_positions target": (lambda: target_positions(None, None, 0, HUGE), ValueError, ["target="]),
        "explain.scored_trajectory target (bomb)": (
            lambda: scored_trajectory(None, None, _bomb()),
            ValueError,
            ["target="],
        ),
        "explain.run_method name": (lambda: run_method(HUGE, None), ValueError, ["explanation method 'ZZZ"]),
        "integrations.CropEnvironment.reset sample_id": (
            lambda: CropEnvironment().reset(sample_id=HUGE),
            ValueError,
            ["CropEnvironment.reset: row 'ZZZ"],
        ),
        "integrations.TRLNecessity n": (
            lambda: TRLNecessity(None, [], 1, n=-(10**5000)),  # past the 4300 digits str() of an int refuses
            ValueError,
            ["TRLNecessity: n must be 0", "<int of"],
        ),
        "integrations.reward_funcs gate": (
            lambda: reward_funcs([RewardTerm(HUGE, accuracy, gate=HUGE + "!")]),
            ValueError,
            ["term 'ZZZ", "is gated by 'ZZZ", "not among the terms ['ZZZ"],
        ),
        "cli.parse_calls": (lambda: parse_calls(HUGE), ValueError, ["--calls 'ZZZ"]),
    }


@pytest.mark.parametrize("surface", sorted(_surfaces()))
def test_a_huge_value_in_any_rooms_message_is_shown_short(surface):
    call, cls, names = _surfaces()[surface]
    with refused(cls, *names):  # one message of < 2,000 characters, naming the field, never the value whole
        call()


def test_a_huge_value_on_the_command_line_is_shown_short(tmp_path, capsys):
    import argparse

    from r3lab.cli.args import parse_bool

    with refused(argparse.ArgumentTypeError, "expected true/false, got 'ZZZ"):
        parse_bool(HUGE)
    long = "9" * 100_000  # argv holds at most 128 KiB an argument: argparse repeats a refused one whole
    with pytest.raises(SystemExit):
        cli_main(["data", "build", "--out", str(tmp_path / "d"), "--n", long])
    line = capsys.readouterr().err.splitlines()[-1]  # after argparse's usage lines
    assert line.startswith("r3lab data build: error: argument --n: invalid _positive value: '999")
    assert "characters left out" in line and len(line) < 2100, len(line)
    name = "k" * 100_000
    with refused(ValueError, "parameter 'kkk", "given more than once"):
        cli_main(["notebooks", "run", "00", "-p", name, "1", "-p", name, "2", "--out", str(tmp_path / "nb")])
    assert not (tmp_path / "d").exists() and not (tmp_path / "nb").exists()


def test_the_error_line_of_the_r3lab_process_is_bounded(monkeypatch, capsys):
    import sys

    import r3lab.cli.data_stats as stats
    from r3lab.cli.app import main

    def hostile(args):  # whatever a lower room's message holds, the one `error:` line stays a line
        raise ValueError("data stats: " + HUGE + " :the end")

    monkeypatch.setattr(stats, "run", hostile)
    monkeypatch.setattr(sys, "argv", ["r3lab", "data", "stats", "somewhere"])
    assert main() == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data stats: ZZZ") and ":the end" in err and err.count("\n") == 1
    assert len(err) < 2200, len(err)


def test_a_sweep_specs_metric_is_shown_short(tmp_path):
    from types import SimpleNamespace as NS

    from r3lab.cli.sweep_check import _facts
    from r3lab.data.dataset import save_dataset

    data = save_dataset(toy_samples(2), tmp_path / "d", progress=False)
    spec = NS(kind="eval", settings={"data": str(data), "n": 0}, eval={}, metrics=[HUGE[:200_000] + ".accuracy"])
    with refused(ValueError, "sweep spec: metric 'ZZZ", "has no family 'ZZZ", "its families"):
        _facts(spec)


def test_a_plain_name_given_to_set_is_judged_never_dropped(tmp_path, no_recipe):
    with refused(ValueError, "unknown recipe settings 'n_trian'", "did you mean 'n_train'"):
        _recipe(tmp_path, "--set", "n_trian=24")
    with refused(ValueError, "unknown recipe settings 'ZZZ", "100,000 characters"):
        _recipe(tmp_path, "--set", "Z" * 100_000 + "=1")
    with refused(ValueError, "RecipeConfig.base = []"):
        _recipe(tmp_path, "--set", "base=[]")


@pytest.mark.parametrize("answers", [["A" * 5_000_000], ["yes"] * 1_001])
def test_a_dataset_lines_answers_are_bounded_like_its_question(tmp_path, answers):
    from r3lab.data.dataset import load_dataset, save_dataset
    from r3lab.data.vlir import build_samples

    ds = save_dataset(build_samples(2, 1, ["read_one"], progress=False), tmp_path / "d", progress=False)
    lines = [json.loads(x) for x in (ds / "samples.jsonl").read_text().splitlines()]
    lines[1]["answers"] = answers  # a 5 MB answer was read, evaluated and written into questions.jsonl whole
    (ds / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with refused(ValueError, "samples.jsonl:2", "answers hold", "at most 1000 of 65,536 each"):
        load_dataset(ds)


def test_a_log_larger_than_any_file_read_whole_is_refused_unread(tmp_path):
    log = tmp_path / "completions.jsonl"
    with open(log, "wb") as f:  # sparse: 1 GiB and a byte on disk in no time, never read
        f.truncate((1 << 30) + 1)
    with refused(ValueError, str(log), "1,073,741,825 bytes", "1,073,741,824"):
        cli_main(["report", "audit", str(log), "--format", "trl", "--out", str(tmp_path / "ra")])
    assert not (tmp_path / "ra").exists()


@pytest.mark.parametrize(
    "value",
    [
        {"out": {"A" * 70_000: float("inf")}},
        {"A" * 70_000: {1: 2}},
        {"B" * 70_000: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]},
    ],
)
def test_a_key_of_megabytes_is_named_in_a_line(value):
    """The fuzzer's find (a config whose key is 70,000 characters, its value infinite): the key path is cut short."""
    from r3lab.core.config_file import check_plain

    with pytest.raises(ValueError, match=r"--config c.yaml: .*\(70,\d{3} characters\)") as e:
        check_plain(value, "--config c.yaml")
    assert len(str(e.value)) < 600
