"""The checks of lessons 00 and 10's exercises (the world, the data, interleaved inference): each reads what the
student built or rolled out and holds their answer to it."""

from __future__ import annotations

from collections import Counter

from ..core.settings import short
from .checks import checker, need


@checker("00.1")
def coarser_grating(sep_coarser, sep_default, readable: bool) -> str:
    """Does the coarse probe read a coarser grating? From the two `class_separability` results."""
    for s in (sep_coarser, sep_default):
        need(isinstance(s, dict) and {"coarse_probe", "chance"} <= set(s), "pass class_separability(...) results")
    truth = sep_coarser["coarse_probe"] > sep_coarser["chance"] + 0.15
    need(
        bool(readable) == truth,
        f"the coarse probe reads {sep_coarser['coarse_probe']:.0%} of the coarser grating "
        f"(chance {sep_coarser['chance']:.0%}, the default world {sep_default['coarse_probe']:.0%}): look again",
    )
    return (
        f"coarse probe {sep_default['coarse_probe']:.0%} -> {sep_coarser['coarse_probe']:.0%} (chance "
        f"{sep_coarser['chance']:.0%})"
    )


@checker("00.2")
def larger_view(sample, sample_big) -> str:
    """The same sample as saved and as loaded with the larger coarse view: its first crop box (model-input pixels)
    doubles its numbers, and cuts the same region of the original."""
    from ..core.regions import Frame
    from ..core.trajectory import IMAGE
    from ..data.vlir import image_size

    boxes, sizes = [], []
    for s in (sample, sample_big):
        need(
            hasattr(s, "rationale") and hasattr(s, "provenance"),
            "pass the two samples themselves (the saved one "
            "and the one load_dataset(folder, view=big) returned), not boxes: numbers you type prove nothing",
        )
        crops = [p for p in s.rationale or [] if p.kind == IMAGE and p.info is not None and p.info.box_input]
        need(bool(crops), f"sample {short(s.sample_id)} has no crop box: take a read_one sample")
        boxes.append(tuple(crops[0].info.box_input))
        sizes.append(tuple(s.provenance.get("input_size") or ()))
    need(
        sample.sample_id == sample_big.sample_id,
        f"{short(sample.sample_id)} and "
        f"{short(sample_big.sample_id)} are two "
        "samples: pass the same sample in both views",
    )
    need(
        len(sizes[0]) == 2 and len(sizes[1]) == 2 and sizes[1][0] >= 2 * sizes[0][0] - 28,
        f"the second sample's view is {sizes[1]} model-input pixels, the first's {sizes[0]}: load the dataset again "
        "with the larger view (load_dataset(folder, view=r3lab.ViewConfig(max_pixels=224*224)))",
    )
    box, box_big = boxes
    w, w_big = box[2] - box[0], box_big[2] - box_big[0]
    need(
        abs(w_big - 2 * w) <= 2 and abs((box_big[3] - box_big[1]) - 2 * (box[3] - box[1])) <= 2,
        f"{list(box)} -> {list(box_big)} does not double: load the dataset again with the larger view "
        "(load_dataset(folder, view=big)) and take the same sample's first crop box",
    )
    cut, cut_big = (
        Frame(*image_size(s), *size).to_orig(b)
        for s, size, b in ((sample, sizes[0], box), (sample_big, sizes[1], box_big))
    )
    need(
        max(abs(a - b) for a, b in zip(cut, cut_big)) <= 12,
        f"the two boxes cut {list(cut)} and {list(cut_big)} of "
        "the original: pass the same sample, loaded from the folder you saved",
    )
    return f"{list(box)} -> {list(box_big)}: the same region of the original ({list(cut)}), in twice the pixels"


@checker("00.3")
def which_filter(report, sample_id: str, name: str) -> str:
    """The filter that removed the planted sample, from the filter report."""
    caught = [f for f in report.removed if sample_id in report.removed_ids(f)]
    need(bool(caught), f"{sample_id} was not removed: plant a crop that covers the landmark but not its detail")
    need(name in caught, f"{sample_id} was removed by {', '.join(caught)}, not {short(name)}")
    return f"{sample_id} removed by {name}"


@checker("00.4")
def balanced_answers(samples, share: float) -> str:
    """The share the most common answer has among the samples: what always answering it would score."""
    counts = Counter(s.answers[0] for s in samples)
    need(bool(counts), "pass the samples you counted")
    truth = counts.most_common(1)[0][1] / sum(counts.values())
    need(
        abs(float(share) - truth) < 0.01,
        f"{float(share):.2f} is not the most common answer's share here ({dict(counts)})",
    )
    return (
        f"the most common answer is {truth:.0%} of {sum(counts.values())} answers (a uniform guess: "
        f"{1 / len(counts):.0%})"
    )


@checker("10.1")
def malformed_call(traj, verdict: str) -> str:
    """The verdict the environment recorded on the malformed call."""
    bad = [e for e in traj.events if not e.ok]
    need(bool(bad), "every crop call of this trajectory was accepted: script a malformed one")
    got = bad[0].call.verdict.value
    need(str(verdict) == got, f"the recorded verdict is not {short(verdict)}: read traj.events[0].call.verdict")
    note = any(p.kind == "env_text" and p.tag == "note" for p in traj.pieces)
    return f"verdict {short(got)}" + (", answered with a note in the context" if note else "")


@checker("10.2")
def no_crops_allowed(traj) -> str:
    """With max_crops=0 no crop is cut: the call is refused and a note takes the crop's place."""
    need(bool(traj.events), "the trajectory made no crop call: keep the script's call and set max_crops=0")
    need(not traj.crops, "a crop was cut: set max_crops=0 in the RolloutConfig")
    notes = [p.text for p in traj.pieces if p.kind == "env_text" and p.tag == "note"]
    need(bool(notes), "no note follows the refused call")
    return f"refused ({traj.events[0].call.verdict.value}); the model sees: {notes[0].strip()[:80]!r}"


@checker("10.3")
def position_after_crop(traj, policy, position: int) -> str:
    """The position (all three axes) of the token right after the crop's image tokens (its vision-end marker): the
    position of its first image token + max(h, w) of its merged grid."""
    event = traj.events[0]
    span = [i for i, j in enumerate(traj.piece_index()) if j == event.image_piece]
    ids = traj.input_ids()
    image = [i for i in span if int(ids[i]) == policy.image_token_id]
    pos = traj.positions(policy)
    truth = int(pos[0, image[-1] + 1])
    need(
        int(position) == truth,
        f"{int(position)} is not it: the crop's image tokens start at position "
        f"{int(pos[0, image[0]])} (after its vision-start marker); add max(h, w) of its merged grid",
    )
    return f"the token after the image resumes at {truth} on all three axes"


@checker("10.4")
def greedy_group(group) -> str:
    """At temperature 0 every row of an unscripted group writes the same tokens."""
    texts = {t.model_text() for t in group}
    need(len(group) >= 2, "pass the whole group")
    need(len(texts) == 1, f"{len(texts)} different texts: set temperature=0.0 (greedy) and no scripts")
    return f"{len(group)} rows, one text: greedy decoding has nothing to sample"


@checker("10.5")
def reprefill_grows(curve) -> str:
    """Re-prefilling costs more, against keeping the cache, the more crops a trajectory makes."""
    big = max(r["px"] for r in curve)  # one view size: the largest measured
    rows = sorted((r for r in curve if r["px"] == big), key=lambda r: r["crops"])
    need(len({r["crops"] for r in rows}) >= 2, "measure at least two crop counts")
    ratios = [r["reprefill_s"] / r["reuse_s"] for r in rows]
    first, last = ratios[0], ratios[-1]
    need(last > first, f"the ratio went {first:.2f} -> {last:.2f}: measure more repeats on a quieter machine")
    return f"re-prefill / reuse {first:.2f} at {rows[0]['crops']} crop(s) -> {last:.2f} at {rows[-1]['crops']}"
