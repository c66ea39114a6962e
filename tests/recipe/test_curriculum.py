"""The curriculum as data: the same behaviour as before it (a guard), its formats, and one loop for any list."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from r3lab.engine.config import ENGINE
from r3lab.recipe import checks
from r3lab.recipe.checks import CheckError
from r3lab.recipe.curriculum import Check, Mix, Phase, base_stage, sft_stage
from r3lab.recipe.format_1 import ALIASES, to_flat
from r3lab.recipe.recipe import Recipe, RecipeConfig
from r3lab.recipe.recipe_config import saved_recipe
from r3lab.recipe.recipe_format import FORMAT_VERSION, read_settings
from r3lab.recipe.report import curriculum_table, model_card
from r3lab.recipe.shipping import SHIPPED

from .recipe_guard import TOL, departures, load_reference, sketch

GUARD_FILE = Path(__file__).parent / "data" / "recipe_guard.json"
# the guard's tiny recipe in today's form: every phase and check on, each check's one added phase
GUARD = {
    "base.batch": 4,
    "ground.mix.samples": 24,
    "ground.steps": 2,
    "ground.check.n": 2,
    "ground.check.early": 0.5,
    "ground.check.more": 1,
    "ground.check.rounds": 1,
    "pairs.steps": 1,
    "read_first.steps": 1,
    "read_focus.steps": 1,
    "read.steps": 1,
    "read.check.n": 2,
    "read.check.more": 1,
    "read.check.rounds": 1,
    "drill.steps": 1,
    "drill.check.n": 2,
    "drill.check.more": 1,
    "drill.check.rounds": 1,
    "compare.steps": 1,
    "compare.check.n": 2,
    "compare.check.more": 1,
    "compare.check.rounds": 1,
    "sft.batch": 4,
    "sft.steps": 2,
    "sft.check.n": 2,
    "sft.check.more": 1,
    "sft.check.rounds": 1,
    "sft_read.check.n": 2,
    "sft_read.check.more": 1,
    "sft_read.check.rounds": 1,
    "rgrpo.steps": 1,
    "rgrpo.group_size": 2,
    "rgrpo.batch": 4,
}
# float32 (no bfloat16 autocast): the check records and rows then agree on every kind of CPU (recipe_guard.py)
SIZES = dict(
    n_train=24,
    n_eval=3,
    train_rollout={"max_new_tokens": 24},
    eval_rollout={"max_new_tokens": 24},
    view={"crop_max_pixels": 98 * 98},
    parallel=1,
    autocast=False,
)
BARS = ("ground", "read", "drill", "compare", "sft", "sft_read")  # dropped to 0 in this order
OLD_TORCH = pytest.mark.skipif(
    not torch.__version__.startswith("2.13.0"),
    reason="format 1 ran on torch 2.13.0 (make test's); another may draw other numbers",
)


def _guard(out, bars: dict) -> RecipeConfig:
    return RecipeConfig.from_settings(**{**SIZES, "out": str(out), **GUARD, **bars})


@pytest.fixture(scope="module")
def reference():
    return json.loads(GUARD_FILE.read_text()), load_reference(GUARD_FILE.with_suffix(".safetensors"))


@pytest.mark.slow
@OLD_TORCH
def test_the_guard_recipe_trains_what_the_recipe_before_its_curriculum_trained(tmp_path, reference):
    """Every checkpoint file (each phase's, added ones too) within the guard's tolerance of what the recipe of
    format 1 trained, on any kind of CPU (recipe_guard.py: why and how far); every check record and row exactly."""
    want, tensors = reference
    bars = {f"{p}.check.bar": 100.0 for p in BARS} | {"compare.check.ground_bar": 100.0}
    for phase in BARS:
        with pytest.raises(CheckError, match=rf"--{phase.replace('_', '-')}-rounds"):
            Recipe(_guard(tmp_path, bars), progress=False).run()
        bars |= {f"{phase}.check.bar": 0.0} | ({"compare.check.ground_bar": 0.0} if phase == "compare" else {})
    Recipe(_guard(tmp_path, bars), progress=False).run()
    far = departures(sketch(tmp_path), tensors)
    assert not far, f"checkpoints (file: group -> distance / norm) further than {TOL:.0%} from format 1's: {far}"
    assert {p.name: json.loads(p.read_text()) for p in (tmp_path / "logs").glob("*_checks.json")} == want["checks"]
    rows = {p.stem: json.loads(p.read_text())["rows"] for p in (tmp_path / "eval").glob("*.json")}
    assert json.dumps(rows, sort_keys=True) == json.dumps(want["rows"], sort_keys=True)  # NaN IoUs as text


@pytest.mark.slow
@OLD_TORCH
@pytest.mark.parametrize(
    "change",
    [{"ground.lr": 1.1e-3}, {"ground.steps": 3}, {"seed": 1}],
    ids=["learning_rate_10_percent_higher", "one_more_step", "another_seed"],
)
def test_the_guard_catches_a_real_change_of_training(tmp_path, reference, change):
    """The guard recipe's first run (the grounding phase and its check's added phase, until the check fails: the
    guard above trains it too, unchanged), changed as a bug would change it, departs from format 1's beyond the
    tolerance, in the tensors of files both runs have (not only by a file more or less)."""
    with pytest.raises(CheckError, match="--ground-rounds"):
        Recipe(_guard(tmp_path, {f"{p}.check.bar": 100.0 for p in BARS} | change), progress=False).run()
    got = sketch(tmp_path)
    phases = {Path(f).parent.parent for f in got}  # the phases this run trained: logs/base, logs/base_ground1
    far = departures(got, {f: v for f, v in reference[1].items() if Path(f).parent.parent in phases})
    assert any(not k.endswith(": layout") for k in far), far


def test_format_1_names_read_into_the_same_curriculum_as_its_paths():
    flat = dict(
        n_base=24,
        base_steps=2,
        base_batch=4,
        ground_check=2,
        ground_early=0.5,
        ground_more=1,
        ground_rounds=1,
        pairs_steps=1,
        read_first_steps=1,
        read_focus_steps=1,
        read_steps=1,
        read_check=2,
        read_more=1,
        read_rounds=1,
        compare_drill_steps=1,
        drill_check=2,
        drill_more=1,
        drill_rounds=1,
        compare_steps=1,
        compare_check=2,
        compare_more=1,
        compare_rounds=1,
        sft_steps=2,
        sft_batch=4,
        sft_check=2,
        sft_more=1,
        sft_rounds=1,
        sft_read_rounds=1,
        sft_read_more=1,
        rgrpo_steps=1,
        group_size=2,
        rgrpo_batch=4,
    )
    assert asdict(RecipeConfig.from_settings(**SIZES, **flat)) == asdict(_guard("runs/recipe", {}))
    old = json.loads(GUARD_FILE.read_text())["recipe_json"]  # the guard's last run wrote it, in format 1
    assert saved_recipe(RecipeConfig.from_settings(**read_settings(old))) == saved_recipe(
        _guard("x", {f"{p}.check.bar": 0.0 for p in BARS} | {"compare.check.ground_bar": 0.0})
    )
    # format 1's own meanings: a base phase of 0 steps took no check; sft_read_rounds 0 put read_one in the SFT's mix
    c = RecipeConfig.from_settings(**read_settings({**old, "read_steps": 0, "sft_read_rounds": 0}))
    assert not c.phase("read").checked and not c.phase("sft_read").checked and c.phase("sft").mix.without == ""
    with pytest.raises(ValueError, match="format_version 3; this r3lab reads formats 1 to 2"):
        read_settings({**old, "format_version": 3})
    first = {k: v for k, v in old.items() if k != "tiny"} | {"patch_size": 14}  # the first files: the patch size alone
    assert read_settings(first)["tiny"] == {"patch_size": 14}


def test_the_shipped_card_maps_one_to_one_onto_the_curriculum():
    card = json.loads((SHIPPED / "card_results.json").read_text())["config"]
    cfg = RecipeConfig.from_settings(**read_settings(card))
    flat = to_flat({k: asdict(getattr(cfg, k)) for k in ("base", "sft", "rgrpo")})
    assert flat == {k: card[k] for k in ALIASES}  # every flat setting, and back
    engine = {k: getattr(cfg.train_rollout, k) for k in ENGINE}  # how the engine computes: the card predates them
    card = {k: {**v, **engine} if k.endswith("_rollout") else v for k, v in card.items()}
    assert {k: v for k, v in asdict(cfg).items() if k not in ("base", "sft", "rgrpo")} == {
        k: v for k, v in card.items() if k not in ALIASES
    } | {"out": "runs/recipe", "rows": cfg.rows, "parallel": cfg.parallel, "ship": "", "report_to": "none"}
    assert cfg.phase("read").check.bar == card["read_min"] and cfg.phase("drill").steps == card["compare_drill_steps"]
    assert saved_recipe(cfg) == saved_recipe(RecipeConfig())  # the shipped checkpoints' recipe is today's default


def test_a_folder_written_in_format_1_is_reused_and_a_changed_or_newer_one_refused(tmp_path):
    old = json.loads(GUARD_FILE.read_text())["recipe_json"]
    (tmp_path / "recipe.json").write_text(json.dumps(old))
    bars = {f"{p}.check.bar": 0.0 for p in BARS} | {"compare.check.ground_bar": 0.0}
    Recipe(_guard(tmp_path, bars))._check_config()  # the same settings: its stages are reused
    assert "format_version" not in json.loads((tmp_path / "recipe.json").read_text())
    with pytest.raises(ValueError, match=r"read\.steps: 1 there, 2 now.*another --out"):
        Recipe(_guard(tmp_path, bars | {"read.steps": 2}))._check_config()
    (tmp_path / "logs" / "base").mkdir(parents=True)  # a base stage that format 1 left unfinished
    Recipe(_guard(tmp_path, bars))._check_config()  # its grounding phase's schedule: the same (an early check)
    (tmp_path / "recipe.json").write_text(json.dumps({**old, "ground_early": 0.0}))
    with pytest.raises(ValueError, match="no format_version .format 1.*base stage must start over"):
        Recipe(_guard(tmp_path, bars | {"ground.check.early": 0.0}))._check_config()
    (tmp_path / "recipe.json").write_text(json.dumps({**old, "format_version": 99}))
    with pytest.raises(ValueError, match="format_version 99"):
        Recipe(_guard(tmp_path, bars))._check_config()


def test_a_phase_is_added_to_a_recipe_by_one_list_entry(tmp_path):
    cfg = RecipeConfig.from_settings(
        out=str(tmp_path),
        **SIZES,
        **{
            "base.batch": 4,
            "ground.mix.samples": 8,
            "ground.steps": 1,
            "ground.check.n": 0,
            "pairs.steps": 0,
            "read_first.steps": 0,
            "read_focus.steps": 0,
            "read.steps": 0,
            "read.check.n": 0,
            "drill.steps": 0,
            "drill.check.n": 0,
            "compare.steps": 0,
            "compare.check.n": 0,
            "sft.batch": 4,
            "rgrpo.batch": 4,
            "rgrpo.group_size": 2,
        },
    )
    cfg.base.phases.append(
        Phase("read_again", 2, 1e-3, Mix(closeups=1.0), seed=7, check=Check("read", n=3, bar=0.0, seed=20_000))
    )
    Recipe(cfg, progress=False).train_stage("base")
    assert [
        json.loads(x)["step"] for x in (tmp_path / "logs" / "base_read_again" / "log.jsonl").read_text().splitlines()
    ] == [2]
    [row] = checks.load(tmp_path / "logs", "read_again")
    assert (row["round"], row["steps"], row["n"]) == (0, 2, 3) and (tmp_path / "base" / "config.json").is_file()
    assert (
        "| base | read_again | close-ups 100% | 2 | 0.001 | close-ups read right (3 held-out) | 0 % |"
        in curriculum_table(cfg)
    )
    card = model_card(
        {
            "config": {"format_version": FORMAT_VERSION, **asdict(cfg)},
            "rows": {},
            "seconds": {},
            "read_again_checks": [row],
        }
    )
    assert "## Read check" in card and "- after 2 read steps: " in card
    with pytest.raises(ValueError, match="each once"):
        cfg.base.phases.append(Phase("read_again"))
        Recipe(cfg)


def test_a_check_that_stays_below_its_bar_names_the_phase_and_its_flags(tmp_path):
    phase = base_stage().phases[-1]  # compare: its verdict, and the grounding alongside
    rows = [{"round": 0, "steps": 300, "n": 200, "verdict": 70.0, "chance": 50.0, "centre_on_named": 99.0}]
    e = checks.failure("base", phase, rows, tmp_path)
    assert isinstance(e, ValueError)  # the CLI's one line, exit 2
    assert "after 300 comparison steps the policy prefers the true verdict in 70.0 %" in str(e)
    assert "compare.check.bar: 85.0 %" in str(e) and "--compare-rounds or --compare-more" in str(e)
    rows[0] |= {"verdict": 90.0, "centre_on_named": 80.0}
    assert "compare.check.ground_bar: 95.0 %" in str(checks.failure("base", phase, rows, tmp_path))
    assert checks.passes({"verdict": 90.0, "centre_on_named": 96.0}, phase.check)
    assert not checks.passes({"verdict": 90.0, "centre_on_named": 94.0}, phase.check)
    assert checks.passes({"verdict": 90.0}, phase.check)  # a record without the grounding: the verdict alone


def test_settings_that_cannot_take_effect_or_do_not_fit_are_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"compare\.check\.bar \(--compare-bar\) cannot take effect.*--compare-check"):
        RecipeConfig.from_settings(compare_min=100, compare_check=0)
    with pytest.raises(ValueError, match="cannot take effect"):
        RecipeConfig.from_settings(**{"read.check.n": 0, "read.check.rounds": 3})
    RecipeConfig.from_settings(**{"compare.check.n": 0, "ground.check.early": 0.0})  # an unused check's defaults: fine
    with pytest.raises(ValueError, match=r"--sft-batch\) asks for more samples per step than the 24 VLIR"):
        RecipeConfig.from_settings(n_train=24, **{"sft.batch": 64})
    with pytest.raises(ValueError, match=r"--rgrpo-batch\) must be a multiple of rgrpo.group_size"):
        RecipeConfig.from_settings(**{"rgrpo.batch": 30})
    with pytest.raises(ValueError, match=r"parallel = 10000 is not allowed.*CPU cores.*--parallel"):
        RecipeConfig.from_settings(parallel=10000)
    with pytest.raises(ValueError, match=r"unknown recipe settings 'read_stepz' \(did you mean 'read_steps'\?\)"):
        RecipeConfig.from_settings(read_stepz=3)
    with pytest.raises(ValueError, match=r"'reed\.steps' names no phase's setting"):
        RecipeConfig.from_settings(**{"reed.steps": 3})
    with pytest.raises(ValueError, match=r"ground\.check\.rounds = 4 adds phases.*--ground-more"):
        RecipeConfig.from_settings(ground_more=0)
    with pytest.raises(ValueError, match=r"ground\.check\.early = 1\.0 is not allowed"):
        RecipeConfig.from_settings(ground_early=1.0)


def test_a_check_that_fails_in_a_job_reaches_the_parent_as_one_check_error(tmp_path, monkeypatch):
    import r3lab.recipe.recipe as recipe_mod

    def failing(jobs, done, out, *a, **k):  # what a stage job's rank 0 leaves when its check stays below its bar
        (Path(out) / "logs" / "jobs").mkdir(parents=True)
        (Path(out) / "logs" / "jobs" / ("stage_base" + recipe_mod.FAILED)).write_text("stage base: after 2 ...")
        raise RuntimeError("recipe job stage:base failed (exit 1)")

    monkeypatch.setattr(recipe_mod, "run_jobs", failing)
    rec = Recipe(RecipeConfig.from_settings(out=str(tmp_path), parallel=2), progress=False)
    with pytest.raises(CheckError, match="^stage base: after 2 ...$"):
        rec._run_jobs()


def test_the_default_curriculum_draws_no_held_out_seed_and_matches_the_measures_defaults():
    from r3lab.recipe import compare_check, drill_check, read_check, sft_check
    from r3lab.recipe.ground_check import WhereConfig

    phases = {p.name: p for p in base_stage().phases + sft_stage().phases}
    assert (
        phases["ground"].check.seed,
        phases["read"].check.seed,
        phases["compare"].check.seed,
        phases["drill"].check.seed,
        phases["sft"].check.seed,
    ) == (WhereConfig().seed, read_check.SEED, compare_check.SEED, drill_check.SEED, sft_check.SEED)
    c = RecipeConfig()
    drawn = {c.data_seed + p.seed for p in phases.values()} | {
        c.data_seed + p.check.more_seed + k for p in phases.values() if p.checked for k in range(p.check.rounds)
    }
    assert not drawn & {p.check.seed for p in phases.values() if p.checked} and c.eval_seed not in drawn


def test_every_default_phase_points_at_a_section_of_the_findings():
    from r3lab.core.env import REPO_ROOT
    from r3lab.recipe.curriculum import FINDINGS, anchor

    headings = {line[3:].strip() for line in (REPO_ROOT / FINDINGS).read_text().splitlines() if line.startswith("## ")}
    phases = base_stage().phases + sft_stage().phases
    assert all(p.why in headings for p in phases), [p.why for p in phases if p.why not in headings]
    assert (
        anchor("The SFT stage: compare_two first, read_one last")
        == f"{FINDINGS}#the-sft-stage-compare_two-first-read_one-last"
    )
    assert f"[R-GRPO]({anchor('R-GRPO')})" in curriculum_table()  # and R-GRPO's row
