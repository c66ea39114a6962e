"""What reaches TRL's training forward: the pixels the vision tower is given with gradients on, and the
loss inputs (completion ids, `tool_mask`). The guard against the known silent failure where images made
during the rollout never reach the loss (trl's `rollout_func` path puts the dataset's images back; a
falling loss hides it), and the way to see which tokens TRL trains on.
"""

from __future__ import annotations

import torch


class ForwardProbe:
    """Watch a GRPOTrainer while it trains (`with ForwardProbe(trainer, policy) as probe: trainer.train()`)."""

    def __init__(self, trainer, policy):
        self.trainer, self.policy = trainer, policy
        self.pixels: list[torch.Tensor] = []  # vision-tower inputs of forwards with gradients (the loss's)
        self.batches: list[dict] = []  # what `_compute_loss` received, one dict per micro-batch
        self._hook, self._compute = None, None

    def __enter__(self) -> "ForwardProbe":
        visual = getattr(getattr(self.policy.model, "model", None), "visual", None)
        if visual is None:
            raise ValueError(
                "ForwardProbe: the policy's model has no vision tower at model.model.visual "
                "(a Qwen2-VL / Qwen2.5-VL / Qwen3-VL model was expected)"
            )
        self._hook = visual.register_forward_pre_hook(self._see)
        self._compute = self.trainer._compute_loss  # TRL 1.16's loss entry point (trl/trainer/grpo_trainer.py)

        def compute(model, inputs):
            self.batches.append(
                {
                    k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
                    for k, v in inputs.items()
                    if k in ("completion_ids", "completion_mask", "tool_mask", "prompt_ids")
                }
            )
            return self._compute(model, inputs)

        self.trainer._compute_loss = compute
        return self

    def __exit__(self, *exc) -> None:
        self._hook.remove()
        self.trainer._compute_loss = self._compute

    def _see(self, module, args):
        if torch.is_grad_enabled():
            self.pixels.append(args[0].detach().cpu().float())

    def holds(self, image) -> bool:
        """True when `image`'s pixels (as the trainer's image processor encodes them) entered a training forward."""
        want = self.trainer.processing_class.image_processor(images=[image])["pixel_values"].float()
        n = want.size(0)
        return any(torch.equal(p[i : i + n], want) for p in self.pixels for i in range(p.size(0) - n + 1))

    def texts(self, batch: int = -1) -> list[tuple[str, str]]:
        """Per row of a loss batch: (the tokens trained on, the tokens masked out by `tool_mask`), decoded."""
        b = self.batches[batch]
        ids, valid = b["completion_ids"], b["completion_mask"].bool()
        mask = b.get("tool_mask", torch.ones_like(ids)).bool() & valid
        dec = lambda t: self.policy.decode(t.tolist())  # noqa: E731
        return [(dec(ids[r][mask[r]]), dec(ids[r][valid[r] & ~mask[r]])) for r in range(ids.size(0))]
