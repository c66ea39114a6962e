"""Teacher-forced log-probs of chosen tokens, computed only where they are asked for.

The decoder's hidden states are gathered at the positions that predict a masked token and
`lm_head` runs there alone, so no batch x length x vocabulary tensor is ever built. Training (SFT,
R-GRPO's ratio and KL), explanations (an answer's log-prob with and without a crop) and probes all
score through it.
"""

from __future__ import annotations

import contextlib

import torch

from ..model.adapters import base_model


class TokenScorer(torch.nn.Module):
    """`forward(batch) -> (B, L)` log-probs of the tokens where `loss_mask` is set (0 elsewhere).

    A Module so that DistributedDataParallel can wrap it (gradients flow through its forward). On a
    model with LoRA adapters it scores through them; `adapters=False` scores the frozen base under them
    (R-GRPO's KL reference at no extra memory).
    """

    def __init__(self, model: torch.nn.Module, adapters: bool = True):
        super().__init__()
        self.model, self.adapters = model, adapters

    def forward(
        self,
        input_ids,
        attention_mask,
        position_ids,
        loss_mask,
        pixel_values=None,
        image_grid_thw=None,
        temperature: float = 1.0,
        pixel_attention_mask=None,
    ):
        base = base_model(self.model)  # the LoRA layers live inside it
        off = self.model.disable_adapter() if not self.adapters and base is not self.model else contextlib.nullcontext()
        images = {
            k: v
            for k, v in (
                ("pixel_values", pixel_values),
                ("image_grid_thw", image_grid_thw),
                ("pixel_attention_mask", pixel_attention_mask),
            )
            if v is not None
        }
        with off:
            hidden = base.model(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False, **images
            )[0]
            return self._logprobs(base, hidden, input_ids, loss_mask, temperature)

    @staticmethod
    def _logprobs(base, hidden, input_ids, loss_mask, temperature):
        target = loss_mask.clone()
        target[:, 0] = False  # the first token has no prediction
        prev = torch.zeros_like(target)
        prev[:, :-1] = target[:, 1:]  # token t is predicted by the hidden state at t-1
        logits = base.lm_head(hidden[prev]).float()
        if temperature != 1.0:
            logits = logits / temperature
        lp = torch.log_softmax(logits, -1).gather(-1, input_ids[target].unsqueeze(-1)).squeeze(-1)
        return torch.zeros(target.shape, dtype=lp.dtype, device=lp.device).masked_scatter(target, lp)


def token_logprobs(
    scorer: torch.nn.Module, batch: dict, temperature: float = 1.0, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-token log-probs (B, L) of `batch` (from `collate`) where `mask` is set (default: its loss_mask)."""
    if not isinstance(scorer, torch.nn.Module) or not hasattr(scorer, "forward"):
        raise TypeError("token_logprobs needs a TokenScorer (or DDP around one)")
    return scorer(
        batch["input_ids"],
        batch["attention_mask"],
        batch["position_ids"],
        batch["loss_mask"] if mask is None else mask,
        batch.get("pixel_values"),
        batch.get("image_grid_thw"),
        temperature=temperature,
        pixel_attention_mask=batch.get("pixel_attention_mask"),
    )
