"""The course's lessons as data: each lesson's title, objectives, what it needs first, the optional libraries it
imports, and its measured times (read from `times.json`, never written by hand); `lesson` finds one by number or stem.
`r3lab.course.syllabus` writes every statement generated from them."""

from __future__ import annotations

from dataclasses import dataclass

from . import timing

TIMES = timing.TIMES  # measured seconds per lesson: {"lessons": {name: {column: seconds, ...}}}


@dataclass(frozen=True)
class Lesson:
    notebook: str  # file stem in notebooks/
    title: str
    objectives: tuple[str, ...]  # what a student can do or explain afterwards
    needs: tuple[str, ...] = ()  # lessons to have run first
    extras: tuple[str, ...] = ()  # the optional libraries it imports, as extras of r3lab[course] (its setup(needs=))

    @property
    def default_s(self) -> float:
        """Measured wall seconds of the default run on the reference CPU (`times.json`)."""
        return timing.seconds(self.notebook, "default_s", TIMES)

    @property
    def smoke_s(self) -> float:
        """Measured wall seconds in smoke mode, as CI runs it (`times.json`)."""
        return timing.seconds(self.notebook, "smoke_s", TIMES)

    @property
    def cpu_s(self) -> float | None:
        """CPU seconds of the default run (None where not recorded)."""
        return timing.seconds(self.notebook, "cpu_s", TIMES, required=False)

    @property
    def gpu_s(self) -> float | None:
        """Wall seconds of the default run with a CUDA GPU (None where no GPU ran it)."""
        return timing.seconds(self.notebook, "gpu_s", TIMES, required=False)

    @property
    def minutes(self) -> str:
        """The default run's time for a table: seconds under a minute, else minutes to one decimal."""
        return timing.fmt(self.default_s)


LESSONS = (
    Lesson(
        "00_build_vlir",
        "Build VLIR samples",
        (
            "explain why the world's details need a zoom, from the coarse view, the zoomed crop and a probe's accuracy",
            "build, filter, save and reload a VLIR dataset and export it to the official formats",
            "write one crop box in both coordinate frames and both call grammars",
        ),
    ),
    Lesson(
        "10_interleaved_inference",
        "Interleaved inference",
        (
            "follow one rollout piece by piece: crop call, crop, conclusion",
            "read M-RoPE positions across inserted crops",
            "measure what keeping the KV cache across crops saves",
        ),
        ("00_build_vlir",),
    ),
    Lesson(
        "20_sft",
        "SFT on interleaved rationales",
        (
            "say which tokens carry a loss and why",
            "set learning rates per parameter group and read a loss curve",
            "show on held-out questions that SFT raises read_one while its boxes loosen yet hold the detail",
        ),
        ("00_build_vlir",),
    ),
    Lesson(
        "30_rgrpo",
        "R-GRPO",
        (
            "compute rewards, group advantages and the clipped loss by hand",
            "explain zero-std groups and when the clip binds",
            "read a held-out curve during training against noisy training curves",
        ),
        ("20_sft",),
    ),
    Lesson(
        "40_explain_crops",
        "Explaining crop decisions",
        (
            "read one record per crop: attention, gradients, patching and a logit lens side by side",
            "count where attention agrees with the box the model wrote, and say what agreement cannot show",
            "patch a crop with a blank, coarse or another sample's view and say what each one tests",
        ),
        ("10_interleaved_inference",),
        ("explain",),
    ),
    Lesson(
        "45_which_explanation_is_faithful",
        "Which explanation is faithful here?",
        (
            "measure explanation maps with a pointing game, deletion and insertion curves and a random baseline, "
            "with bootstrap intervals",
            "say which differences are ties, and why a map that agrees with the interventions is evidence only "
            "through them",
        ),
        ("40_explain_crops",),
        ("explain",),
    ),
    Lesson(
        "47_did_the_crop_matter",
        "Did the crop matter?",
        (
            "say what format-only, a dummy crop and result-only test, and read each against its chance level",
            "find the tool-only solved set and say why pass@k misleads on a small answer set",
            "set attention against the written box per crop, read a run's report and the diff between two runs",
        ),
        ("40_explain_crops",),
    ),
    Lesson(
        "50_ablations",
        "The miniature replication",
        (
            "read the replication table against chance and the oracle and random rows",
            "say where the gains lie: looking (the oracle row) or reading (accuracy against crop IoU)",
            "run an ablation of your own",
        ),
        ("20_sft", "30_rgrpo"),
        ("sweep",),
    ),
    Lesson(
        "60_scale_out",
        "Scaling out on TRL",
        (
            "run the same samples, crop environment and rewards on TRL's GRPOTrainer",
            "check that the crops' pixels reach TRL's training forward",
        ),
        ("30_rgrpo",),
        ("trl",),
    ),
    Lesson(
        "70_analyse_a_real_run",
        "Analysing a real run",
        ("import another system's run and explain its crops", "read the crop dashboard and spot a collapse"),
        ("40_explain_crops",),
    ),
)


def lesson(name: str) -> Lesson:
    """A lesson by number prefix ("20") or notebook stem."""
    hits = [x for x in LESSONS if x.notebook == name or x.notebook.startswith(name + "_")]
    if len(hits) != 1:
        raise KeyError(f"no lesson {name!r}; known: {', '.join(x.notebook for x in LESSONS)}")
    return hits[0]
