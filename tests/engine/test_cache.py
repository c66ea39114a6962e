"""The lock-step machinery under the rollout engine: token choice, the shared cache, its compaction."""

from types import SimpleNamespace

import pytest
import torch

from r3lab.core.trajectory import Trajectory
from r3lab.engine.cache import SharedCache, check_attention
from r3lab.engine.sampling import banned_ids, brace_table, choose
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_image


@pytest.fixture(scope="module")
def policy():
    p = build_tiny(TinyConfig(seed=5))
    with torch.no_grad():
        for w in p.model.parameters():
            if w.ndim == 2:
                w.mul_(3.0)
    return p


def _choose(*a):
    toks, lps = choose(*a)  # left on the device (the engine fetches both in one copy)
    return toks.tolist(), lps.tolist()


def test_choose_greedy_forced_and_logprobs():
    logits = torch.tensor([[0.0, 5.0, 1.0, 2.0], [3.0, 0.0, 0.0, 9.0]])
    ban = torch.tensor([0.0, 0.0, 0.0, float("-inf")])
    toks, lps = _choose(logits, None, 0.0, 1.0, ban, None)
    assert toks == [1, 0]  # row 1's argmax (id 3) is banned
    toks, lps = _choose(logits, torch.tensor([-1, 3]), 0.0, 1.0, ban, None)  # a script may force even a banned id
    assert toks == [1, 3]
    assert lps == pytest.approx(torch.log_softmax(logits, -1)[[0, 1], [1, 3]].tolist())
    g = torch.Generator().manual_seed(0)
    toks, lps = _choose(logits, None, 2.0, 1.0, ban, g)
    assert lps == pytest.approx(torch.log_softmax(logits / 2.0, -1)[[0, 1], toks].tolist())  # before masking


def test_forced_tokens_live_on_the_device_and_follow_their_rows():
    from r3lab.engine.host import Link
    from r3lab.engine.sampling import Forced

    link = Link(torch.device("cpu"))
    assert Forced.of([[], []], link) is None  # no script: nothing to force
    f = Forced.of([[5, 6], [], [7]], link)
    assert f.next().tolist() == [5, -1, 7]
    f.step()
    assert f.next().tolist() == [6, -1, -1]
    f.keep(torch.tensor([0, 2]))  # row 1 left the batch
    f.step()
    assert f.next().tolist() == [-1, -1] and link.sends == 1  # the table went to the device once


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    seen = {_choose(logits, None, 1.0, 0.7, torch.zeros(4), g)[0][0] for _ in range(300)}
    assert seen == {0, 1}  # 0.5 + 0.3 reaches 0.7; 2 and 3 are never drawn
    seen = {_choose(logits, None, 1.0, 1.0, torch.zeros(4), g)[0][0] for _ in range(300)}
    assert seen == {0, 1, 2, 3}


def test_banned_and_brace_tables(policy):
    ban = set(banned_ids(policy))
    tok = policy.tokenizer
    for t in (
        "<|image_pad|>",
        "<|video_pad|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|vision_pad|>",
        "<|im_start|>",
        "<|endoftext|>",
    ):
        assert tok.convert_tokens_to_ids(t) in ban
    assert policy.eos_id not in ban and not ban & set(policy.encode("<answer>red</answer> {}"))
    braces = brace_table(policy)
    assert braces[policy.encode("]}")[-1]] and braces[policy.encode("}")[0]]
    assert not any(braces[i] for i in policy.encode("look at the red disc ["))


def test_check_attention_refuses_flash_and_sliding():
    def fake(impl, layer_types):
        text = SimpleNamespace(layer_types=layer_types)
        cfg = SimpleNamespace(_attn_implementation=impl, get_text_config=lambda: text)
        return SimpleNamespace(model=SimpleNamespace(config=cfg))

    check_attention(fake("sdpa", ["full_attention"] * 2))
    with pytest.raises(ValueError, match="attn_implementation='sdpa'"):
        check_attention(fake("flash_attention_2", ["full_attention"]))
    with pytest.raises(ValueError, match="sliding"):
        check_attention(fake("sdpa", ["full_attention", "sliding_attention"]))


def _prompts(policy):
    out = []
    for size, q in [((448, 336), "What colour is the disc?"), ((200, 300), "Which shape?")]:
        out.append(Trajectory.start(toy_image(size), q, policy.view, policy.prompt).tokenize(policy))
    return out


def _filled_cache(policy):
    """Two rows with different prompt lengths and a crop-sized chunk in one row: holes everywhere."""
    prompts = _prompts(policy)
    sc = SharedCache(policy, 2)
    pv, _ = policy.encode_images([t.model_images()[0] for t in prompts])
    sc.append([t.input_ids() for t in prompts], [t.grids() for t in prompts], pv)
    a, b = policy.encode(" look here"), policy.encode(" x")
    sc.append([a, b])
    crop = toy_image((56, 84), 3)
    cpv, grid = policy.encode_images([crop])
    g = tuple(int(v) for v in grid[0])
    sc.append([policy.encode(" y"), policy.encode(" z") + policy.image_ids(g)], [[], [g]], cpv)
    return sc


def test_compaction_and_row_selection_change_no_logit(policy):
    with torch.inference_mode():
        plain = _filled_cache(policy)
        assert plain.holes() > 0.05
        nxt = [policy.encode(" and"), policy.encode(" so")]
        ref = plain.append(nxt)
        squeezed = _filled_cache(policy)
        length = squeezed.length
        squeezed.compact()
        assert squeezed.length < length and squeezed.holes() < plain.holes()
        assert squeezed.real == [int(r) for r in squeezed.mask.sum(1)]
        assert (squeezed.append(nxt) - ref).abs().max().item() < 1e-4
        # keep row 1 only, then repeat it: its logits do not move, and columns nobody uses are dropped
        picked = _filled_cache(policy)
        picked.select([1, 1])
        assert bool(picked.mask[:, 0].any())
        out = picked.append([nxt[1], nxt[1]])
        assert (out - ref[1]).abs().max().item() < 1e-4


def test_append_rejects_mismatched_rows(policy):
    sc = SharedCache(policy, 2)
    with pytest.raises(ValueError, match="2 rows"):
        sc.append([[1]])
    with pytest.raises(ValueError, match="empty"):
        sc.append([[], []])


@pytest.mark.parametrize("empty_row", [False, True])
def test_split_wide_step_equals_one_padded_forward(policy, monkeypatch, empty_row):
    """A step where one row inserts a crop runs as two sub-batches; nothing may change."""
    import r3lab.engine.cache as decoding

    prompts = _prompts(policy) * 2  # 4 rows
    crop = toy_image((84, 56), 4)
    cpv, grid = policy.encode_images([crop])
    g = tuple(int(v) for v in grid[0])
    step = [
        policy.encode(" a"),
        policy.encode(" b") + policy.image_ids(g),
        [] if empty_row else policy.encode(" c"),
        policy.encode(" d"),
    ]
    after = [policy.encode(w) for w in (" e", " f", " g", " h")]
    results = []
    for split in (0.0, 1.0):  # 0.0 never splits, 1.0 always does
        monkeypatch.setattr(decoding, "SPLIT_BELOW", split)
        with torch.inference_mode():
            sc = SharedCache(policy, 4)
            pv, _ = policy.encode_images([t.model_images()[0] for t in prompts])
            sc.append([t.input_ids() for t in prompts], [t.grids() for t in prompts], pv)
            n = sc.forwards
            first = sc.append(step, [[], [g], [], []], cpv)
            assert sc.forwards - n == (2 if split else 1)
            results.append((first, sc.append(after), sc.mask.clone(), sc.next_pos))
    (a1, a2, am, ap), (b1, b2, bm, bp) = results
    live = [0, 1, 3] if empty_row else [0, 1, 2, 3]
    assert (a1[live] - b1[live]).abs().max().item() < 1e-4
    assert (a2 - b2).abs().max().item() < 1e-4
    assert torch.equal(am, bm) and ap == bp
