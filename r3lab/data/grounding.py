"""The base stage's data: grounding ("Where is the red circle?" -> its crop call) and close-ups.

Real base models are pre-trained on grounding and on reading fine detail before anyone teaches them
to look again (Qwen2.5-VL and Qwen3-VL both are); r3-tiny learns both here, on the synthetic world,
in the recipe's `base` stage before VLIR SFT:
- a grounding answer is exactly the crop call a VLIR rationale writes for that landmark
  (`region_input_box` of its region), so the skill carries over to the crop calls of SFT; a share of
  the questions names two landmarks, answered with both calls in order, as compare_two's rationale;
- a close-up is a read_one question whose crop the environment opens (its call is environment text,
  then the zoomed crop): the model only answers the mark's colour. It learns to read a zoomed detail
  without learning the rationale, which stays SFT's lesson;
- a comparison is a compare_two question whose two looks the environment gives (the reference rationale
  up to the second colour, as text, or with `crops` both crops in place): the model only concludes "the
  same" / "different" and answers. SFT's ~4,300 compare_two samples left the verdict agreeing with the
  model's own two reads 2 times in 3; these exercises teach it in their own format, but neither
  carried it to the model's own rollouts (research notes);
- a drill is a comparison without its images (`TextOnly`): the language model alone learns the verdict from
  the text, many times faster a step than with the images in place; grounding questions among them keep the
  crop calls looking at the image.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields, replace

from tqdm.auto import tqdm

from ..core.crop_calls import format_crop_call
from ..core.env import progress_disabled
from ..core.regions import Frame, ViewConfig
from ..core.settings import short
from ..core.trajectory import ENV, IMAGE, MODEL, ImageInfo, Piece
from .sample import Sample
from .tasks import TaskConfig, make_task
from .vlir import task_sample
from .world import WorldConfig, region_input_box

FAMILY = "ground"
CLOSEUP = "closeup"
COMPARISON = "comparison"
ONE = ["Where is the {a}?", "Find the {a}.", "Locate the {a}."]
TWO = ["Where are the {a} and the {b}?", "Find the {a} and the {b}.", "Locate the {a} and the {b}."]
CLOSEUP_STYLES = ("answer", "rationale")  # what a close-up's model writes (closeup_sample)


def grounding_sample(
    seed: int, index: int, world: WorldConfig | None = None, view: ViewConfig | None = None, pairs: float = 0.25
) -> Sample:
    """Grounding question `index` of `seed`: one landmark (or, with probability `pairs`, two) named at random."""
    world, view = world or WorldConfig(), view or ViewConfig()
    rng = random.Random(f"r3lab-ground:{seed}:{index}")
    scene = make_task("read_one", seed, index, world=world).scene  # the same layouts the VLIR families use
    frame = Frame.of(scene.size, view)
    n = 2 if len(scene.landmarks) >= 2 and rng.random() < pairs else 1
    picked = rng.sample(range(len(scene.landmarks)), n)
    names = [scene.landmarks[k].name for k in picked]
    question = rng.choice(ONE if n == 1 else TWO).format(a=names[0], b=names[-1])
    calls = [format_crop_call(region_input_box(scene.region(k), frame)) for k in picked]
    text = " ".join(calls) + "<|im_end|>"
    prov = {
        "generator": "r3lab.grounding",
        "seed": seed,
        "index": index,
        "input_size": list(frame.input_size),
        "view": asdict(view),
    }
    return Sample(
        scene,
        question,
        [" ".join(calls)],
        [scene.region(k) for k in picked],
        [Piece(MODEL, text, tag="answer")],
        FAMILY,
        f"{FAMILY}-{seed}-{index:05d}",
        prov,
        [scene.landmarks[k].detail.box for k in picked if scene.landmarks[k].detail is not None],
    )


def build_grounding(
    n: int,
    seed: int = 0,
    world: WorldConfig | None = None,
    view: ViewConfig | None = None,
    pairs: float = 0.25,
    progress: bool | None = None,
) -> list[Sample]:
    """`n` grounding samples, each a pure function of (seed, index)."""
    quiet = progress_disabled() if progress is None else not progress
    return [
        grounding_sample(seed, i, world, view, pairs) for i in tqdm(range(n), desc="build grounding", disable=quiet)
    ]


def closeup_sample(
    seed: int,
    index: int,
    world: WorldConfig | None = None,
    view: ViewConfig | None = None,
    style: str = "answer",
    tasks: TaskConfig | None = None,
) -> Sample:
    """A read_one question with its ground-truth crop already opened by the environment. The model writes the
    colour alone (`style="answer"`), or (`"rationale"`) what the VLIR rationale writes after the crop: its
    conclusion and answer (" It is red.</think><answer>red</answer>"), the lead being that rationale's opening."""
    if style not in CLOSEUP_STYLES:
        raise ValueError(f"style must be one of {CLOSEUP_STYLES}, got {short(style)}")
    world, view = world or WorldConfig(), view or ViewConfig()
    task = make_task("read_one", seed, index, world=world, tasks=tasks)
    frame = Frame.of(task.scene.size, view)
    box = region_input_box(task.regions[0], frame)
    lead = f"<think>Let me zoom in on the {task.scene.landmarks[task.asked].name}. {format_crop_call(box)}"
    crop = Piece(IMAGE, info=ImageInfo("crop", (0, 0), (frame.orig_w, frame.orig_h), tuple(box)), tag="crop")
    answer = task.answers[0] + "<|im_end|>"
    if style == "rationale":
        opening, _, conclusion = task_sample(task, view).rationale
        lead, answer = opening.text, conclusion.text
    prov = {
        "generator": "r3lab.grounding",
        "kind": CLOSEUP,
        "seed": seed,
        "index": index,
        "style": style,
        "input_size": list(frame.input_size),
        "view": asdict(view),
    }
    return Sample(
        task.scene,
        task.question,
        list(task.answers),
        task.regions,
        [Piece(ENV, lead, tag="given"), crop, Piece(MODEL, answer, tag="answer")],
        CLOSEUP,
        f"{CLOSEUP}-{seed}-{index:05d}",
        prov,
        task.details,
    )


def comparison_sample(
    seed: int, index: int, world: WorldConfig | None = None, view: ViewConfig | None = None, crops: bool = False
) -> Sample:
    """A compare_two question whose two looks the environment gives (its reference rationale up to the second
    colour; with `crops`, both crops in place, else text only); the model writes the verdict and the answer."""
    view = view or ViewConfig()
    ref = task_sample(make_task("compare_two", seed, index, world=world), view)
    *given, last = ref.rationale
    second = ref.provenance["seen"][1]
    cut = last.text.index(second) + len(second)  # just after the second colour
    pieces = [p for p in given if crops or p.kind == MODEL] + [Piece(MODEL, last.text[:cut])]
    pieces = [Piece(ENV, p.text, tag="given") if p.kind == MODEL else p for p in pieces]
    if not crops:  # one piece of given text, as a close-up's lead
        pieces = [Piece(ENV, "".join(p.text for p in pieces), tag="given")]
    prov = {
        **ref.provenance,
        "generator": "r3lab.grounding",
        "kind": COMPARISON,
        "seed": seed,
        "index": index,
        "crops": crops,
    }
    return Sample(
        ref.image,
        ref.question,
        list(ref.answers),
        ref.regions,
        pieces + [Piece(MODEL, last.text[cut:], tag="answer")],
        COMPARISON,
        f"{COMPARISON}-{seed}-{index:05d}",
        prov,
        ref.details,
    )


def build_base(
    n: int,
    seed: int = 0,
    closeups: float = 0.25,
    world: WorldConfig | None = None,
    view: ViewConfig | None = None,
    pairs: float = 0.25,
    progress: bool | None = None,
    comparisons: float = 0.0,
    comparison_crops: bool = False,
    closeup_style: str = "answer",
    controls: float = 0.0,
    tasks: TaskConfig | None = None,
) -> list[Sample]:
    """`n` base-stage samples: control questions with probability `controls` (their VLIR rationale: answered from
    the coarse view, no crop), comparisons with probability `comparisons` (`comparison_sample`'s `crops`), the
    others close-ups (`closeup_sample`'s `style`) with probability `closeups` and grounding questions (each draw
    by index, so a share of 0 changes nothing else). `tasks` sets the close-ups' detail (default: the world's)."""
    if bad := {
        k: v
        for k, v in (("closeups", closeups), ("pairs", pairs), ("comparisons", comparisons), ("controls", controls))
        if not 0 <= v <= 1
    }:
        raise ValueError(f"{', '.join(bad)} is a share of the samples, in [0, 1]; got {bad}")
    quiet = progress_disabled() if progress is None else not progress
    out = []
    for i in tqdm(range(n), desc="build base", disable=quiet):
        u = random.Random(f"r3lab-base:{seed}:{i}").random()
        if controls and random.Random(f"r3lab-base-control:{seed}:{i}").random() < controls:
            out.append(
                task_sample(
                    make_task("control", seed + 13, i, world=world),
                    view or ViewConfig(),
                    f"control-{seed + 13}-{i:05d}",
                    {"seed": seed + 13, "index": i},
                )
            )
        elif comparisons and random.Random(f"r3lab-base-compare:{seed}:{i}").random() < comparisons:
            out.append(comparison_sample(seed + 11, i, world, view, comparison_crops))
        else:
            out.append(
                closeup_sample(seed + 7, i, world, view, closeup_style, tasks)
                if u < closeups
                else grounding_sample(seed, i, world, view, pairs)
            )
    return out


@dataclass
class TextOnly(Sample):
    """A sample whose reference trajectory drops its images (the prompt's and the crops'), text kept as it is."""

    def reference(self, view: ViewConfig, prompt=None):
        traj = super().reference(view, prompt)
        traj.pieces = [p for p in traj.pieces if p.kind != IMAGE]
        return traj


def build_drill(
    n: int,
    seed: int = 0,
    world: WorldConfig | None = None,
    view: ViewConfig | None = None,
    progress: bool | None = None,
    reads: bool = False,
    grounding: float = 0.0,
    pairs: float = 0.25,
) -> list[Sample]:
    """`n` comparisons without images: a verdict drill for the language model. The reads are given as text, or
    with `reads` written by the model too (the whole VLIR rationale supervised: with no image the second read is
    the first one copied half the time, which sets the detail's words apart from each other). With probability
    `grounding` a sample is a grounding question with its image instead (`grounding_sample`, `pairs` of them naming
    two landmarks): a drill of text alone teaches crop calls written without looking, and the grounding is lost."""
    if not 0 <= grounding <= 1:
        raise ValueError(f"grounding is a share of the samples, in [0, 1]; got {grounding}")
    quiet = progress_disabled() if progress is None else not progress

    def sample(i):
        if grounding and random.Random(f"r3lab-drill-ground:{seed}:{i}").random() < grounding:
            return grounding_sample(seed + 19, i, world, view, pairs)  # each draw by index: the others unchanged
        if not reads:
            s = comparison_sample(seed + 17, i, world, view)
        else:
            s = task_sample(make_task("compare_two", seed + 17, i, world=world), view or ViewConfig())
            s = replace(s, provenance={**s.provenance, "generator": "r3lab.grounding", "kind": "drill"})
        return TextOnly(**{f.name: getattr(s, f.name) for f in fields(Sample)})

    return [sample(i) for i in tqdm(range(n), desc="build drill", disable=quiet)]
