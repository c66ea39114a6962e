"""The rollout settings every config that rolls out nests, and `RolloutConfig`, the engine's own (no torch: the
CLI reads them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..core.settings import MAX_ROWS, WHY, check_bools, check_choice, check_ranges, short

MAX_TOKENS = 1 << 20  # model tokens of one answer
TOKENS_WHY = "no model has a million positions; the rollout also holds it against the model's own"


def parse_graphs(text: str) -> str | bool:
    """CLI values of `cuda_graphs`: auto / true / false."""
    import argparse

    v = text.strip().lower()
    if v == "auto":
        return "auto"
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected auto, true or false, got {short(text)}")


@dataclass
class RolloutSettings:
    """What a rollout may write and how it samples: crops, token budgets, temperature, top-p; and how the engine
    computes it (`cache`, `cuda_graphs`: the same tokens and log-probs either way).

    One object nested in every config that rolls out (R-GRPO, evaluation, benchmarks, the recipe, TRL), each
    with its own defaults where its use differs (evaluation decodes greedily); the command line builds its flags.
    The engine's two (`ENGINE`) are not part of what a checkpoint or a recipe folder records it was evaluated or
    trained with: changing them changes no result, only its cost.
    """

    max_crops: int = 2
    """crop calls honoured per answer (0: the no-crop baseline); later valid calls get a note"""
    max_new_tokens: int = 64
    """model tokens per answer, all segments together"""
    max_segment_tokens: int = 48
    """model tokens per segment (between two images or notes)"""
    temperature: float = 1.0
    """sampling temperature (0: greedy, argmax)"""
    top_p: float = 1.0
    """nucleus sampling mass (1.0: off); log-probs are recorded before it"""
    cache: str = "static"
    """the engine's KV cache: "static" (buffers kept per model, written in place) or "dynamic" (grows every step); the
    same tokens and log-probs"""
    cuda_graphs: str | bool = field(
        default="auto",
        metadata=dict(
            type=parse_graphs,
            metavar="{auto,true,false}",
            help="replay each decode step as a CUDA graph over the static cache (auto: on CUDA, and a capture that "
            "fails decodes eagerly, said in the rollout's stats; true: a failure raises; false: never)",
        ),
    )

    def __post_init__(self):
        self.validate()

    def validate(self):
        check_ranges(
            self,
            ints=dict(max_crops=(0, 256), max_new_tokens=(1, MAX_TOKENS), max_segment_tokens=(1, MAX_TOKENS)),
            floats=dict(temperature=(0.0, 100.0), top_p=(0.0, 1.0)),
            open_low=("top_p",),
            why=dict(
                max_crops="each crop is an image in the context",
                max_new_tokens=TOKENS_WHY,
                max_segment_tokens=TOKENS_WHY,
                temperature="above 100 every token is equally likely",
            ),
        )
        name = type(self).__name__
        check_choice(self, "cache", ("dynamic", "static"))
        if not (self.cuda_graphs == "auto" or isinstance(self.cuda_graphs, bool)):
            raise ValueError(
                f"{name}.cuda_graphs = {short(self.cuda_graphs)} is not allowed: expected 'auto', True or False"
            )
        if self.cuda_graphs is True and self.cache == "dynamic":
            raise ValueError(
                f"{name}.cuda_graphs = True needs cache='static': a graph replays a step over "
                "buffers that stay where they are"
            )
        return self

    @classmethod
    def saved(cls, policy, **overrides) -> "RolloutSettings":
        """The settings a checkpoint was evaluated with (`policy.meta["evaluation"]["rollout"]`, or the older flat
        keys there), then `overrides`; the defaults where the checkpoint saved none. A compare_two answer needs the
        token budget its recipe gave it: the defaults cut it off before the verdict."""
        known = [f.name for f in fields(cls)]
        if bad := sorted(set(overrides) - set(known)):
            raise ValueError(f"RolloutSettings has no field(s) {bad}; known: {known}")
        saved = dict((getattr(policy, "meta", None) or {}).get("evaluation", {}) or {})
        values = {**{k: v for k, v in saved.items() if k in _FIELDS}, **saved.get("rollout", {})}
        # a saved key this version does not know was written by another r3lab version: left out (and the engine's,
        # which say how that machine computed it)
        return cls(**{**{k: v for k, v in values.items() if k in _FIELDS}, **overrides})


ENGINE = ("cache", "cuda_graphs")  # how the engine computes a rollout, never what it writes
_FIELDS = tuple(f.name for f in fields(RolloutSettings) if f.name not in ENGINE)  # what a checkpoint records


@dataclass
class RolloutConfig(RolloutSettings):
    """`rollout`'s settings: the rollout settings, then the engine's own (groups, image budget, mode, batching)."""

    group_size: int = 4  # G copies of each sample, contiguous in the output (GRPO groups)
    max_images: int = 8  # images per trajectory including the main one; a call past it ends the rollout
    greedy: bool = False  # argmax decoding whatever the temperature (log-probs then use T = 1); temperature 0 too
    mode: str = "batched"  # "batched" (KV reuse, one batch) | "reference" (official loop: one at a time, re-prefill)
    batch_rows: int = 64  # max rows decoded together (samples*G are chunked by whole groups)
    seed: int | None = None  # torch.Generator seed for sampling (None: drawn from torch's global RNG)
    compact_holes: float = 0.5  # squeeze the cache when this fraction of its slots are holes (1.0 = never)
    drop_finished: bool = True  # finished rows leave the batch (False: they ride along as pads, like generate())
    timing: bool = False  # stats["timing"]: the rollout's cost by part (synchronises a GPU at every part)

    def validate(self):
        super().validate()
        check_ranges(
            self,
            ints=dict(group_size=(1, MAX_ROWS), max_images=(1, 257), batch_rows=(1, MAX_ROWS)),
            floats=dict(compact_holes=(0.0, 1.0)),
            why=dict(group_size=WHY["batch"], batch_rows=WHY["batch"]),
        )
        check_bools(self, "greedy", "drop_finished", "timing")
        if self.seed is not None:
            check_ranges(self, ints=dict(seed=(0, 2**63 - 1)))
        check_choice(self, "mode", ("batched", "reference"))
        return self

    @classmethod
    def of(cls, settings: RolloutSettings, **engine) -> "RolloutConfig":
        """The engine's config for `settings`, with the engine's own fields by name (greedy where temperature is 0)."""
        return cls(**{**asdict(settings), "greedy": settings.temperature == 0, **engine})

    @property
    def effective_temperature(self) -> float:
        return 0.0 if self.greedy else float(self.temperature)
