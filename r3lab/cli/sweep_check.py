"""Before a sweep's first run: every run's settings read by the command's own parser and config classes, so a name
the command does not know (with its close matches) or a value it would refuse is said now, not in run 37.

`check_spec(spec)` returns what the report needs from the held-out data (its families and chance levels, as
`r3lab eval --audit` reports them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.settings import short
from ..sweep.folder import steps_of
from ..sweep.spec import TRAINING, Run, SweepSpec, close_matches
from .app import build_parser, cut

KNOWN_EVAL = (
    "n",
    "accuracy",
    "crop_rate",
    "crops",
    "invalid_crop_rate",
    "crop_iou",
    "contains_detail",
    "answered",
    "tokens",
    "reward",
)  # `r3lab eval`'s own columns (evaluation.METRICS, spelled here so a spec is judged before torch imports; a test
# holds the two equal); audit and necessity keys are checked by the run


class _Refused(ValueError):
    pass


def command_parser(words: list[str]) -> argparse.ArgumentParser:
    """The parser of the `r3lab` command `words`, whose errors raise instead of exiting."""
    parser = build_parser(list(words))
    for w in words:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[w]

    def refuse(message):
        raise _Refused(cut(message))

    parser.error = refuse
    parser.allow_abbrev = False  # a spec names settings whole: an abbreviation would be another run identity
    return parser


def check_spec(spec: SweepSpec) -> dict:
    """ValueError naming the run and the setting for anything a run's command would refuse; facts of the held-out
    data (chance levels) otherwise."""
    for point in spec.points():  # the seeds were checked by the spec: a point's settings are the same for each
        run = Run.make(spec, point, spec.seeds[0])
        where = "sweep spec" + (f", point {run.point}" if run.point else "") + f", seed {run.seed}"
        for step in steps_of(spec, run, Path("/nonexistent-sweep-run")):
            if step["module"] == "r3lab.cli":
                _check_step(spec, step, where)
    return _facts(spec)


def _check_step(spec: SweepSpec, step: dict, where: str) -> None:
    args = step["args"]
    words = args[:2] if args[0] in ("train", "notebooks") else args[:1]
    parser = command_parser(words)
    what = "eval:" if spec.kind in TRAINING and step["name"] == "eval" else "settings"
    try:
        ns, extra = parser.parse_known_args(args[len(words) :])
    except _Refused as e:
        raise ValueError(f"{where}: {what}: `r3lab {' '.join(words)}` refuses it: {e}") from None
    if extra:
        flags = sorted({o for a in parser._actions for o in a.option_strings if o.startswith("--")})
        bad = next((x for x in extra if x.startswith("-")), extra[0])
        name = bad.lstrip("-")
        raise ValueError(
            f"{where}: {what}: `r3lab {' '.join(words)}` has no setting {short(name)}"
            f"{close_matches(name, [f.lstrip('-') for f in flags])}"
        )
    try:
        _validate(words, ns, args)
    except (ValueError, OSError) as e:
        raise type(e)(f"{where}: {what}: {e}") from None


def _validate(words: list[str], ns, args: list[str]) -> None:
    """What the command checks before it loads a model."""
    from .args import dataclass_from_args, dataclass_values
    from .inputs import check_attn, check_bits, check_data

    if words[0] == "train":
        from ..train.config import RGRPOConfig, SFTConfig

        cfg = dataclass_from_args(SFTConfig if words[1] == "sft" else RGRPOConfig, ns).validate()
        check_data(cfg.data)
        check_attn(ns.attn)
        check_bits(cfg.lora.bits, ns.policy)
        _check_policy(ns.policy)
    elif words[0] == "eval":
        from ..evaluation.evaluation import EvalConfig

        given = dataclass_values(EvalConfig, ns)
        given["rollout"] = {k: v for k, v in given["rollout"].items() if v is not None}
        EvalConfig(**given)
        check_data(given["data"])
        check_attn(ns.attn)
        if "/nonexistent-sweep-run" not in ns.policy:  # a training run's own checkpoint is made by its run
            _check_policy(ns.policy)
    elif words[0] == "recipe":
        from ..recipe.recipe_config import RecipeConfig
        from .recipe import settings_from_args

        RecipeConfig.from_settings(**settings_from_args(ns))  # as `r3lab recipe` builds it: --set paths too
    else:
        from ..course.runner import check_parameters, find_notebooks, parse_value

        params = {k: parse_value(v) for k, v in ns.parameter}
        params.update(dict(ns.raw))
        check_parameters(find_notebooks(ns.names)[0], params)


def _check_policy(path: str) -> None:
    if path and not Path(path).exists():
        raise FileNotFoundError(
            f"policy {path} does not exist: give a checkpoint folder (e.g. assets/checkpoints/r3-tiny-sft)"
        )


def _facts(spec: SweepSpec) -> dict:
    """The held-out data's families and chance levels (training and eval sweeps whose data is one folder); the
    metrics' names checked against them."""
    if spec.kind not in (*TRAINING, "eval"):
        return {}
    data = spec.eval.get("data") if spec.kind in TRAINING else spec.settings.get("data")
    n = int((spec.eval if spec.kind in TRAINING else spec.settings).get("n") or 0)
    if not data:  # the data is swept: each point's own
        return {}
    from ..data.dataset import load_samples
    from ..evaluation.chance import chance_of

    samples = list(load_samples(str(data)))[: n or None]
    fams = sorted({s.family or "?" for s in samples})
    for m in spec.metrics:
        fam, _, name = m.rpartition(".")
        if fam and fam != "all" and fam not in fams:
            raise ValueError(
                f"sweep spec: metric {short(m)}: the held-out data {data} has no family {short(fam)}"
                f"{close_matches(fam, fams)}; its families: {', '.join(fams)}"
            )
        if name not in KNOWN_EVAL and not name.startswith(
            ("acc_", "tool_", "pass_at", "zooming", "attn_", "box_", "crop_rate_", "also_", "chance")
        ):
            raise ValueError(
                f"sweep spec: metric {short(m)}: `r3lab eval` reports no {short(name)}"
                f"{close_matches(name, KNOWN_EVAL)}; its numbers: {', '.join(KNOWN_EVAL)}"
            )
    return {
        "families": fams,
        "questions": len(samples),
        "data": str(data),
        "chance": {k: float(v) for k, v in chance_of(samples).items()},
    }
