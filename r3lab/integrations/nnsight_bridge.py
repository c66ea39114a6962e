"""r3lab's policy and a `Trajectory` handed to nnsight, so a user's own interventions run on r3lab rollouts.

`pip install r3lab[nnsight]`. Three calls: `wrap(policy)` (an `nnsight.NNsight` around the transformers
model; under LoRA the model the adapters live in), `trace_inputs(policy, traj)` (the keyword arguments of one
teacher-forced forward over the trajectory, exactly what r3lab's own scoring feeds) and `positions(policy,
traj)` (where the main image, each crop, each call's box digits, each read and the answer sit in that
sequence). nnsight reads the body of its `with` block itself, so the block is written where it runs:

    from r3lab.integrations.nnsight_bridge import positions, trace_inputs, wrap
    lm, where = wrap(policy), positions(policy, traj)
    crop = where["crop/0"]                                   # the first crop's image tokens
    with lm.trace(**trace_inputs(policy, traj)):
        lm.model.language_model.layers[1].output[0, crop] = 0  # your intervention
        logits = lm.output.logits.save()
    # logits[0, p - 1] predicts the token at p: score where["answer"] against r3lab's own numbers

Layer paths are transformers' (`model.language_model.layers[i]`, `model.visual`, `lm_head`); every Qwen
family r3lab builds has them. nnsight is imported only when `wrap` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.batch import collate, model_inputs
from ..core.trajectory import Trajectory
from ..explain.stream import TARGETS, target_positions
from ..explain.swaps import piece_starts as _piece_starts
from ..model.adapters import base_model

if TYPE_CHECKING:
    from ..model.policy import Policy


def nnsight_missing() -> str | None:
    """Why nnsight cannot be used here, or None."""
    try:
        import nnsight  # noqa: F401
    except ImportError as e:
        return f"nnsight is not installed ({e}): pip install 'r3lab[nnsight]'"
    return None


def wrap(policy: "Policy"):
    """`nnsight.NNsight` around the policy's transformers model (the model under LoRA adapters: they run inside)."""
    if why := nnsight_missing():
        raise ImportError(why)
    from nnsight import NNsight

    return NNsight(base_model(policy.model))


def trace_inputs(policy: "Policy", trajectory: Trajectory) -> dict:
    """Keyword arguments of one teacher-forced forward over `trajectory` (ids, mask, explicit positions, pixels)."""
    if not isinstance(trajectory, Trajectory):
        raise TypeError(f"trace_inputs needs an r3lab Trajectory, got {type(trajectory).__name__}")
    return {**model_inputs(collate([trajectory], policy)), "use_cache": False}


def positions(policy: "Policy", trajectory: Trajectory) -> dict[str, list[int]]:
    """Token positions in the traced sequence: "main" (the main image's tokens), "crop/k" (crop k's), and per crop
    event k "box/k" (its call's coordinate digits), "read/k" (the text right after its crop); "answer"."""
    traj = trajectory.tokenize(policy)
    starts = _piece_starts(traj)
    out: dict[str, list[int]] = {}
    k = 0
    for i, p in enumerate(traj.pieces):
        if p.kind != "image":
            continue
        toks = [starts[i] + j for j, t in enumerate(p.ids) if t == policy.image_token_id]
        if p.info.role == "main":
            out["main"] = toks
        else:
            out[f"crop/{k}"] = toks
            k += 1
    for e, ev in enumerate(traj.crop_events()):
        for t in TARGETS[:2]:
            out[f"{t}/{e}"] = target_positions(policy, traj, ev, t)
    out["answer"] = target_positions(policy, traj, None, "answer")
    return out
