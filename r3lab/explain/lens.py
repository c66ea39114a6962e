"""A logit lens over the box-coordinate tokens: at which layer the numbers the model wrote become its top
prediction (nostalgebraist 2020; the decoder's own final norm and lm_head read every layer's residual stream).

For each digit token of a crop call, the residual stream at the position that predicts it is read after
every decoder layer; its rank among the vocabulary and its probability are kept per layer, and `settled`
is the first layer from which the written token stays the top prediction to the end (None: never settles,
e.g. a sampled token that was not the argmax).
"""

from __future__ import annotations

from typing import Sequence

import torch

from .contract import Call, MethodResult
from .hooks import first_tensor
from .stream import Stream


def logit_lens(stream: Stream, positions: Sequence[int]) -> dict:
    """{"tokens": [text], "rank": [[rank per layer] per token], "prob": [[...]], "settled": [layer | None],
    "settled_all": the layer from which every box token is the top prediction (None if one never is)}."""
    if not positions:
        raise ValueError("no box-coordinate tokens to read (the call holds no digits?)")
    pos = torch.as_tensor(list(positions), dtype=torch.long)
    prev = pos - 1
    got: list[torch.Tensor] = []

    def keep(module, args, output):
        got.append(first_tensor(output)[0, prev.to(first_tensor(output).device)].detach())

    with torch.no_grad():
        stream.hidden(stream.embeds, fwd=[(layer, keep) for layer in stream.parts.layers])
        hs = torch.stack(got)  # (layers, n, d)
        logits = stream.parts.lm_head(stream.parts.norm(hs)).float()
    tok = stream.ids[pos].to(logits.device)
    lp = torch.log_softmax(logits, -1)
    mine = lp.gather(-1, tok[None, :, None].expand(len(got), -1, 1))[..., 0]  # (layers, n)
    rank = (lp > mine[..., None]).sum(-1)  # tokens strictly more likely than the written one
    settled = []
    for j in range(len(pos)):
        top = (rank[:, j] == 0).tolist()
        k = len(top)
        while k > 0 and top[k - 1]:
            k -= 1
        settled.append(k if k < len(top) else None)
    policy = stream.policy
    return {
        "tokens": [policy.decode([int(t)]) for t in tok.tolist()],
        "rank": rank.T.tolist(),
        "prob": mine.exp().T.tolist(),
        "settled": settled,
        "settled_all": None if any(s is None for s in settled) else max(settled),
    }


def run(name: str, call: Call) -> list[MethodResult]:
    """`explain`'s logit lens for one crop call (`METHODS["logit_lens"]`): the box digits, layer by layer."""
    if not call.positions["box"]:
        return [MethodResult(name, "box", available=False, reason="the crop call holds no digit tokens")]
    return [MethodResult(name, "box", data=logit_lens(call.stream, call.positions["box"]))]
