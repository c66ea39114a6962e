"""Where a phase's samples come from: `SOURCES`, one `Source` per `Mix.source`, each drawing, checking and describing
the samples of a phase (and of the phases its check adds).

"base" and "drill" generate the base stage's samples (grounding questions, close-ups, comparisons, controls;
comparisons as text); "vlir" reorders the recipe's one VLIR training set (`Recipe.vlir_samples`). A new source is
one builder and one entry here; `Mix`'s fields say what a phase asks of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..data.grounding import build_base, build_drill
from ..data.tasks import TaskConfig


@dataclass(frozen=True)
class Source:
    """How one kind of sample is drawn for a phase."""

    build: Callable  # (recipe: Recipe, stage, phase, view, k) -> its samples (k >= 0: the phase added after round k)
    describe: Callable  # (mix) -> the samples in a few words (the curriculum table's data column)
    check: Callable  # (config: RecipeConfig, stage, phase) -> None; ValueError when a step's batch cannot be drawn
    reorders: bool = False  # the phase's seed offsets order a fixed set (its SFTConfig.seed), not draw new samples


def phase_samples(recipe, stage: str, phase, view, k: int = -1) -> list:
    """Phase `phase`'s samples under `recipe` (a `Recipe`), from its mix's source."""
    return SOURCES[phase.mix.source].build(recipe, stage, phase, view, k)


def _drawn(c, stage: str, phase, k: int) -> tuple[int, int]:
    """A generated phase's sample count and data seed (with `k` >= 0: those of the phase added after round k,
    `more` steps of them at offset `more_seed` + k; else `mix.samples` or steps x batch at offset `seed`)."""
    batch = getattr(c, stage).batch
    n = (phase.mix.samples or phase.steps * batch) if k < 0 else phase.check.more * batch
    return n, c.data_seed + (phase.seed if k < 0 else phase.check.more_seed + k)


def _base(recipe, stage: str, phase, view, k: int) -> list:
    c, mix = recipe.cfg, phase.mix
    n, seed = _drawn(c, stage, phase, k)
    return build_base(
        n,
        seed,
        mix.closeups,
        c.world_config(base=mix.world == "grounding"),
        view=view,
        pairs=mix.pairs,
        progress=recipe.progress,
        comparisons=mix.comparisons,
        comparison_crops=mix.crops,
        closeup_style=mix.style,
        controls=mix.controls if "control" in c.family_list else 0.0,
        tasks=TaskConfig(read_kinds=("colour",)) if mix.marks else None,
    )


def _drill(recipe, stage: str, phase, view, k: int) -> list:
    c, mix = recipe.cfg, phase.mix
    n, seed = _drawn(c, stage, phase, k)
    return build_drill(
        n,
        seed,
        c.world_config(base=mix.world == "grounding"),
        view,
        progress=recipe.progress,
        reads=mix.reads,
        grounding=mix.grounding,
        pairs=mix.pairs,
    )


def _vlir(recipe, stage: str, phase, view, k: int) -> list:
    from ..evaluation.ablations import answer_only

    samples = recipe.vlir_samples(view, phase.mix.family_weights(recipe.cfg.family_list))
    return samples if phase.mix.crops else [answer_only(s) for s in samples]


def _too_few(c, stage: str, phase, n: int, what: str, setting: str) -> None:
    if (batch := getattr(c, stage).batch) > n:
        raise ValueError(
            f"{stage}.batch = {batch} (--{stage}-batch) asks for more samples per step than the {n} "
            f"{what} phase {phase.name} draws from ({setting}): lower --{stage}-batch or raise {setting}"
        )


def _check_generated(c, stage: str, phase) -> None:
    if phase.mix.samples and phase.steps:  # (0: steps x batch, always enough)
        _too_few(c, stage, phase, phase.mix.samples, "samples", f"{phase.name}.mix.samples")


def _check_vlir(c, stage: str, phase) -> None:
    _too_few(c, stage, phase, c.n_train, "VLIR training samples", "--n-train")
    if not any(w > 0 for w in ({f: 1 for f in c.family_list} | phase.mix.family_weights(c.family_list)).values()):
        raise ValueError(
            f"{phase.name}.mix gives every trained family weight 0: {phase.mix.weights}, without {phase.mix.without!r}"
        )


def _world(mix) -> str:
    return ", grounding world" if mix.world == "grounding" else ""


def _describe_base(mix) -> str:
    parts = (
        [f"comparisons {mix.comparisons:.0%}" + ("" if mix.crops else " (reads as text)")] if mix.comparisons else []
    )
    if mix.closeups:
        kind = "colour-mark close-ups" if mix.marks else "close-ups"
        parts.append(f"{kind} {mix.closeups:.0%}" + (f" ({mix.style})" if mix.style != "answer" else ""))
    if mix.closeups < 1:
        parts.append("grounding questions" + (f" ({mix.pairs:.0%} name two)" if mix.pairs else ""))
    parts += [f"controls {mix.controls:.0%}"] if mix.controls else []
    return "; ".join(parts) + _world(mix)


def _describe_drill(mix) -> str:
    parts = ["comparisons as text" + (", reads written" if mix.reads else "")]
    parts += [f"grounding questions {mix.grounding:.0%}"] if mix.grounding else []
    return "; ".join(parts) + _world(mix)


def _describe_vlir(mix) -> str:
    shares = ", ".join(f"{f} {w:g}" for f, w in mix.weights.items())
    held = f"; no {mix.without}" if mix.without else ""
    return f"VLIR{'' if mix.crops else ' without crops'} ({shares or 'equal shares'}, others 1{held})"


SOURCES: dict[str, Source] = {
    "base": Source(_base, _describe_base, _check_generated),
    "drill": Source(_drill, _describe_drill, _check_generated),
    "vlir": Source(_vlir, _describe_vlir, _check_vlir, reorders=True),
}
