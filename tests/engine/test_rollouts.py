"""The interleaved rollout engine: exact incremental logits, batching, reference mode, log-probs,
bad crop calls and limits. All in fp32 on r3-tiny with weights scaled up so logits are not tiny."""

from dataclasses import replace

import pytest
import torch
from tokenizers import AddedToken

from r3lab.core.batch import collate, model_inputs
from r3lab.core.crop_calls import Verdict, format_crop_call
from r3lab.core.trajectory import ENV, IMAGE, MODEL
from r3lab.data.sample import Sample
from r3lab.engine.config import RolloutConfig
from r3lab.engine.environment import note_text
from r3lab.engine.rollouts import rollout
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_image

GREEDY = RolloutConfig(greedy=True, max_crops=3, max_new_tokens=100, max_segment_tokens=60)


@pytest.fixture(scope="module")
def policy():
    p = build_tiny(TinyConfig(seed=3))  # the lecun init already gives logits of a few units
    std = p.model.lm_head.weight.std().item()
    assert std > 0.05, f"logits too flat for a 1e-4 check to mean anything (lm_head std {std})"
    return p


@pytest.fixture(scope="module")
def samples():
    return [
        Sample(toy_image((448, 336), 0), "What colour is the disc?", ["red"], sample_id="s0"),
        Sample(toy_image((200, 300), 1), "Which shape is blue?", ["square"], sample_id="s1"),
    ]


def call(box) -> str:
    return format_crop_call(box)


class Recorder:
    """logits_hook that keeps, per output row, the logits each token was chosen from."""

    def __init__(self):
        self.rows = {}

    def __call__(self, ids, logits):
        for i, row in zip(ids, logits):
            self.rows.setdefault(i, []).append(row.clone())

    def of(self, i):
        return torch.stack(self.rows[i])


def teacher_forced(policy, traj):
    """One full forward over the finished trajectory: logits that predict each model token, and the ids."""
    b = collate([traj], policy)
    with torch.no_grad():
        lg = policy.model(**model_inputs(b)).logits[0].float()
    idx = b["loss_mask"][0].nonzero().squeeze(-1)
    return lg[idx - 1], b["input_ids"][0, idx], b["old_logprobs"][0, idx]


def kinds(traj):
    return [p.kind for p in traj.pieces]


@pytest.mark.parametrize("n_crops", [0, 1, 3])
def test_incremental_logits_equal_one_full_forward(policy, samples, n_crops, cache):
    _incremental_equals_full(policy, samples, n_crops, cache=cache)


@pytest.fixture(scope="module")
def qwen3_vl():
    p = build_tiny(TinyConfig(seed=3, family="qwen3_vl", patch_size=7, deepstack=(0, 1)))
    assert type(p.model).__name__ == "Qwen3VLForConditionalGeneration"
    return p


@pytest.mark.parametrize("n_crops", [0, 1, 3])
def test_qwen3_vl_incremental_logits_equal_one_full_forward(qwen3_vl, samples, n_crops, cache):
    """The recipe's r3-tiny family (learned position embedding, DeepStack) keeps the KV cache exactly too."""
    _incremental_equals_full(qwen3_vl, samples, n_crops, cache=cache)


@pytest.mark.parametrize("n_crops", [0, 1, 3])
def test_qwen3_5_rolls_out_one_row_at_a_time_its_state_kept_across_crops(samples, n_crops):
    """Qwen3.5's Gated-DeltaNet layers hold recurrent state, which holes would decay: the engine says so and rolls
    out one row at a time, with no holes, so a crop's chunk continues the state exactly (no re-prefill)."""
    p = build_tiny(TinyConfig(seed=3, patch_size=7, layers=4), family="qwen3_5")
    assert p.model.config.text_config.layer_types == ["linear_attention"] * 3 + ["full_attention"]
    with pytest.warns(UserWarning, match="linear-attention layers.*one trajectory at a time"):
        _incremental_equals_full(p, samples, n_crops, tol=2e-4)
    with pytest.raises(ValueError, match="recurrent state.*batch_rows=1"):
        from r3lab.engine.cache import SharedCache

        SharedCache(p, 2)


def test_qwen3_5_keeps_its_state_where_the_reference_loop_re_prefills(samples):
    p = build_tiny(TinyConfig(seed=3, patch_size=7, layers=4), family="qwen3_5")
    scripts = [[" look", call((10, 10, 60, 50)), " and", call((40, 30, 100, 80)), " so"], None]
    cfg = RolloutConfig(greedy=True, max_new_tokens=60, max_segment_tokens=40, batch_rows=1, cache="dynamic")
    kept, again = {}, {}
    out = rollout(p, samples, cfg, group_size=2, scripts=scripts, stats=kept, progress=False)  # silent: asked for
    ref = rollout(
        p, samples, replace(cfg, mode="reference"), group_size=2, scripts=scripts, stats=again, progress=False
    )
    assert [t.input_ids() for t in out] == [t.input_ids() for t in ref] and len(out[0].crops) == 2
    assert kept["slots"] < again["slots"] and out[0].meta["mode"] == "batched"  # the crops' contexts not computed again


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "qwen3_5", "smolvlm"])
def test_lora_wrapped_model_keeps_the_cache_exact(samples, family):
    """The engine runs on a peft-wrapped model (adapters on the language model, vision tower and merger);
    Qwen3.5 in reference mode, as always."""
    pytest.importorskip("peft")
    import warnings

    from r3lab.model.adapters import LoRAConfig, add_lora

    warnings.filterwarnings("ignore", ".*linear-attention layers")  # Qwen3.5's mode='reference' notice
    p = build_tiny(
        TinyConfig(
            seed=3, patch_size=7 if family in ("qwen3_vl", "qwen3_5") else 14, layers=4 if family == "qwen3_5" else 2
        ),
        family=family,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the adapters' weights do not depend on which tests ran before on this worker
        add_lora(p, LoRAConfig(r=4, targets="lm,vision,merger"))
        with torch.no_grad():
            for n, q in p.model.named_parameters():
                if "lora_B" in n:
                    q.normal_(0, 0.2)
    assert type(p.model).__name__ == "PeftModel"
    _incremental_equals_full(p, samples, 2, tol=2e-4 if family == "qwen3_5" else 1e-4)
    rec = Recorder()
    out = rollout(
        p,
        samples,
        GREEDY,
        group_size=2,
        scripts=[[" a", call((10, 10, 60, 50))], [" b"]],
        logits_hook=rec,
        progress=False,
    )
    for i, traj in enumerate(out):
        full, _, _ = teacher_forced(p, traj)
        assert (rec.of(i) - full).abs().max().item() < (2e-4 if family == "qwen3_5" else 1e-4)


def _incremental_equals_full(policy, samples, n_crops, tol=1e-4, cache="dynamic"):
    boxes = [(10, 10, 60, 50), (40, 30, 100, 80), (0, 0, 30, 30)][:n_crops]
    script = ["<think> look"] + [part for b in boxes for part in (call(b), " then")]
    rec = Recorder()
    (traj,) = rollout(
        policy,
        samples[:1],
        replace(GREEDY, cache=cache),
        group_size=1,
        scripts=[script],
        logits_hook=rec,
        progress=False,
    )
    assert len(traj.crops) == n_crops and traj.meta["n_crops"] == n_crops
    assert all(e.ok for e in traj.events) and len(traj.events) == n_crops
    full, ids, _ = teacher_forced(policy, traj)
    inc = rec.of(0)
    assert inc.shape == full.shape and full.abs().max() > 1.0
    assert (inc - full).abs().max().item() < tol
    # the sampled ids are kept verbatim and the loss mask is exactly the model's tokens
    assert ids.tolist() == [i for p in traj.pieces if p.kind == MODEL for i in p.ids]


ROW_SCRIPTS = [
    [call((10, 10, 60, 50)), " a"],  # crops at once
    [" a a a a a a a", call((20, 20, 80, 70)), " b", call((0, 0, 40, 40))],  # crops late, twice
    [" a a", call((50, 50, 10, 10)), " c c c", call((30, 30, 70, 90)), " d"],  # refused, then a crop
    ["<answer>red</answer><|im_end|>"],  # finishes early: its rows leave the batch
]


@pytest.mark.parametrize("compact,drop", [(0.0, True), (1.0, True), (0.5, False)])
def test_rows_cropping_at_different_steps_stay_exact(policy, samples, compact, drop, cache):
    cfg = RolloutConfig(
        greedy=True, max_new_tokens=70, max_segment_tokens=50, compact_holes=compact, drop_finished=drop, cache=cache
    )
    rec, stats = Recorder(), {}
    out = rollout(policy, samples, cfg, group_size=2, scripts=ROW_SCRIPTS, logits_hook=rec, progress=False, stats=stats)
    assert [len(t.crops) for t in out] == [1, 2, 1, 0]
    assert (stats["compactions"] > 0) == (compact == 0.0 and drop)
    assert stats["model_tokens"] == sum(t.meta["n_new_tokens"] for t in out) and stats["forwards"] > 1
    assert out[3].meta["stop"] == "eos" and out[3].pieces[-1].ids[-1] == policy.eos_id
    first_crop_step = [len(t.pieces[3].ids) for t in out[:3]]
    assert len(set(first_crop_step)) == 3  # the rows really did crop at different steps
    for i, traj in enumerate(out):
        full, _, _ = teacher_forced(policy, traj)
        assert (rec.of(i) - full).abs().max().item() < 1e-4, f"row {i}"


def test_batched_group_equals_one_at_a_time_under_greedy(policy, samples, cache):
    scripts = [
        [" a", call((10, 10, 60, 50))],
        [" b b b", call((20, 20, 70, 90)), " c"],
        [" z"],
        [" q", call((0, 0, 50, 50))],
        None,
        [" b", call((1, 2, 3))],
    ]
    cfg = RolloutConfig(greedy=True, max_new_tokens=40, max_segment_tokens=30, cache=cache)
    batched = rollout(policy, samples, cfg, group_size=3, scripts=scripts, progress=False)
    single = rollout(
        policy,
        samples,
        RolloutConfig(**{**cfg.__dict__, "batch_rows": 1}),
        group_size=3,
        scripts=scripts,
        progress=False,
    )
    assert [t.input_ids() for t in batched] == [t.input_ids() for t in single]
    lp_b = torch.cat([t.old_logprobs() for t in batched])
    lp_s = torch.cat([t.old_logprobs() for t in single])
    assert torch.allclose(lp_b.nan_to_num(0), lp_s.nan_to_num(0), atol=1e-5)
    assert len({tuple(t.input_ids()) for t in batched}) == 6  # the rows differ from each other


def test_reference_mode_gives_the_same_tokens(policy, samples):
    scripts = [[" look", call((10, 10, 60, 50)), " and", call((2, 3, 1, 1)), " so"], [" b", call((0, 0, 50, 40))]]
    cfg = RolloutConfig(greedy=True, max_new_tokens=50, max_segment_tokens=40)
    batched = rollout(policy, samples, cfg, group_size=2, scripts=scripts, progress=False)
    ref = rollout(
        policy,
        samples,
        RolloutConfig(**{**cfg.__dict__, "mode": "reference"}),
        group_size=2,
        scripts=scripts,
        progress=False,
    )
    assert [t.input_ids() for t in batched] == [t.input_ids() for t in ref]
    assert [kinds(t) for t in batched] == [kinds(t) for t in ref]
    assert ref[0].meta["mode"] == "reference" and len(ref[0].crops) == 1


@pytest.mark.parametrize("temperature,top_p,greedy", [(0.7, 0.9, False), (1.3, 1.0, False), (1.0, 1.0, True)])
def test_recorded_logprobs_equal_teacher_forced(policy, samples, temperature, top_p, greedy, cache):
    cfg = RolloutConfig(temperature=temperature, top_p=top_p, greedy=greedy, max_new_tokens=40, seed=0, cache=cache)
    out = rollout(policy, samples, cfg, group_size=2, scripts=[[" look", call((10, 10, 60, 50))], None], progress=False)
    assert out[0].crops
    T = 1.0 if greedy else temperature
    for traj in out:
        full, ids, old = teacher_forced(policy, traj)
        recomputed = torch.log_softmax(full / T, -1).gather(-1, ids[:, None]).squeeze(-1)
        assert not old.isnan().any()
        assert (recomputed - old).abs().max().item() < 1e-5
        assert traj.meta["temperature"] == (0.0 if greedy else temperature)


def test_seed_makes_sampling_reproducible(policy, samples):
    cfg = RolloutConfig(max_new_tokens=20, seed=7)
    a = rollout(policy, samples, cfg, group_size=2, progress=False)
    b = rollout(policy, samples, cfg, group_size=2, progress=False)
    c = rollout(policy, samples, RolloutConfig(max_new_tokens=20, seed=8), group_size=2, progress=False)
    assert [t.input_ids() for t in a] == [t.input_ids() for t in b]
    assert [t.input_ids() for t in a] != [t.input_ids() for t in c]


BAD_CALLS = {
    Verdict.NOT_JSON: '{"bbox_2d": [1, 2, 3, 4}',
    Verdict.NO_BBOX: '{"box": [1, 2, 3, 4], "bbox": 1}',
    Verdict.WRONG_ARITY: '{"bbox_2d": [1, 2, 3]}',
    Verdict.NON_NUMERIC: '{"bbox_2d": [1, "2", 3, 4]}',
    Verdict.NON_FINITE: '{"bbox_2d": [NaN, 2, 3, 4]}',
    Verdict.INVERTED: '{"bbox_2d": [30, 2, 10, 40]}',
    Verdict.ZERO_AREA: '{"bbox_2d": [10, 20, 10, 40]}',
    Verdict.OUTSIDE: '{"bbox_2d": [200, 200, 300, 300]}',
    Verdict.TOO_THIN: '{"bbox_2d": [10, 10, 100, 11]}',
}


def test_every_bad_crop_call_is_recorded_and_the_rollout_goes_on(policy, samples):
    # UNKNOWN_TOOL exists in the tool grammar only (tests/engine/test_environment.py)
    assert set(BAD_CALLS) | {Verdict.OK, Verdict.UNTERMINATED, Verdict.UNKNOWN_TOOL} == set(Verdict)
    verdicts = list(BAD_CALLS)
    scripts = [[" look", BAD_CALLS[v], " next"] for v in verdicts]
    scripts.append([" look", '{"bbox_2d": [1, 2,', "<|im_end|>"])  # never closed
    cfg = RolloutConfig(greedy=True, max_new_tokens=40)
    out = rollout(policy, [samples[0]] * len(scripts), cfg, group_size=1, scripts=scripts, progress=False)
    for v, traj in zip(verdicts, out):
        (event,) = traj.events
        assert event.call.verdict is v and not event.ok
        assert kinds(traj)[3:6] == [MODEL, ENV, MODEL]  # the note follows the call, then the model writes on
        note = traj.pieces[4]
        assert note.tag == "note" and note.text == event.note == note_text(event.call.message)
        assert traj.pieces[3].text.endswith(BAD_CALLS[v]) and traj.pieces[5].text.startswith(" next")
        assert not traj.crops and traj.meta["n_crops"] == 0
    last = out[-1]
    assert last.meta["stop"] == "eos" and [e.call.verdict for e in last.events] == [Verdict.UNTERMINATED]
    assert kinds(last)[3:] == [MODEL]


def test_braces_and_quotes_in_a_call_end_in_a_crop_or_a_verdict(policy, samples):
    """A `}` inside a JSON string does not end the call (the crop comes at the real end); a stray quote
    ends its call at the newline with a verdict, and the rollout goes on."""
    scripts = [
        [" look", '{"note": "', "}", '", "bbox_2d": [10, 10, 60, 50]}', " next"],
        [" look", '{"bbox_2d": [10, 10, 60, 50], "note": "', "}", '"}', " next"],
        [" look", '{"bbox_2d: [10, 10, 60, 50]}', " at it", "\n", " next"],
    ]
    out = rollout(policy, [samples[0]] * 3, GREEDY, group_size=1, scripts=scripts, progress=False)
    for script, traj in zip(scripts[:2], out):
        assert [e.ok for e in traj.events] == [True] and kinds(traj)[3:6] == [MODEL, IMAGE, MODEL]
        assert traj.pieces[3].text == "".join(script[:4]) and traj.events[0].call.box == (10.0, 10.0, 60.0, 50.0)
    (event,) = out[2].events
    assert event.call.verdict is Verdict.NOT_JSON and kinds(out[2])[3:6] == [MODEL, ENV, MODEL]
    assert out[2].pieces[3].text.endswith(" at it\n") and out[2].pieces[5].text.startswith(" next")


def test_invalid_call_after_a_crop_inserts_nothing(policy, samples):
    """The official loop re-inserted the previous crop after an invalid call; here a refused call gets a note."""
    script = [" look", call((10, 10, 60, 50)), " again", '{"bbox_2d": [9, 9, 9, 9]}', " so"]
    (traj,) = rollout(policy, samples[:1], GREEDY, group_size=1, scripts=[script], progress=False)
    assert kinds(traj)[3:8] == [MODEL, IMAGE, MODEL, ENV, MODEL]
    assert len(traj.crops) == 1 and len(traj.image_pieces) == 2
    assert [(e.ok, e.image_piece) for e in traj.events] == [(True, 4), (False, None)]


def test_limits_are_honoured(policy, samples):
    two = [" a", call((10, 10, 60, 50)), " b", call((20, 20, 70, 70)), " c"]
    (t,) = rollout(
        policy,
        samples[:1],
        RolloutConfig(greedy=True, max_crops=1, max_new_tokens=80),
        group_size=1,
        scripts=[two],
        progress=False,
    )
    assert len(t.crops) == 1 and t.events[1].note == note_text("at most 1 crops per answer")
    assert kinds(t)[-1] == MODEL and t.pieces[-1].text.startswith(" c")  # it went on after the note
    (t,) = rollout(
        policy,
        samples[:1],
        RolloutConfig(greedy=True, max_images=2, max_new_tokens=80),
        group_size=1,
        scripts=[two],
        progress=False,
    )
    assert t.meta["stop"] == "max_images" and len(t.image_pieces) == 2 and not t.events[1].ok
    (t,) = rollout(
        policy,
        samples[:1],
        RolloutConfig(greedy=True, max_new_tokens=25, max_segment_tokens=25),
        group_size=1,
        progress=False,
        scripts=[[" a"]],
    )
    n = sum(len(p.ids) for p in t.pieces if p.kind == MODEL)
    assert (t.meta["stop"], n, t.meta["n_new_tokens"]) == ("max_new_tokens", 25, 25)
    (t,) = rollout(
        policy,
        samples[:1],
        RolloutConfig(greedy=True, max_new_tokens=90, max_segment_tokens=30),
        group_size=1,
        scripts=[[" a", call((10, 10, 60, 50))]],
        progress=False,
    )
    assert t.meta["stop"] == "max_segment_tokens" and t.crops
    assert all(len(p.ids) <= 30 for p in t.pieces if p.kind == MODEL) and len(t.pieces[-1].ids) == 30
    # a valid call that uses the last token of the budget is recorded but shows nothing
    budget = len(policy.encode(" a")) + len(policy.encode(call((10, 10, 60, 50))))
    (t,) = rollout(
        policy,
        samples[:1],
        RolloutConfig(greedy=True, max_new_tokens=budget),
        group_size=1,
        scripts=[[" a", call((10, 10, 60, 50))]],
        progress=False,
    )
    assert t.meta["stop"] == "max_new_tokens" and not t.crops and t.events[0].call.ok and not t.events[0].ok


def test_a_call_ends_the_segment_exactly_at_its_closing_token(samples):
    p = build_tiny(TinyConfig(seed=1))
    p.tokenizer.add_tokens([AddedToken("]}\n", normalized=False)])  # like Qwen's byte-level `]}\n` token
    p.model.resize_token_embeddings(len(p.tokenizer))
    closing = p.encode("]}\n")
    assert len(closing) == 1
    script = p.encode(' look {"bbox_2d": [10, 10, 60, 50') + closing + p.encode(" done")
    (t,) = rollout(
        p, samples[:1], RolloutConfig(greedy=True, max_new_tokens=40), group_size=1, scripts=[script], progress=False
    )
    assert t.pieces[3].text == ' look {"bbox_2d": [10, 10, 60, 50]}\n'  # nothing deleted, the \n kept
    assert t.pieces[3].ids[-1] == closing[0] and t.pieces[4].kind == IMAGE
    assert t.pieces[5].text.startswith(" done")


def test_sampling_never_emits_special_tokens(policy, samples):
    from r3lab.engine.sampling import banned_ids

    banned = banned_ids(policy)
    boost = torch.zeros(policy.model.lm_head.out_features)
    boost[banned] = 50.0  # a model that badly wants vision tokens, <|im_start|> and <|endoftext|>
    h = policy.model.lm_head.register_forward_hook(lambda m, i, o: o + boost)
    try:
        out = rollout(policy, samples, RolloutConfig(max_new_tokens=20, seed=0), group_size=2, progress=False)
    finally:
        h.remove()
    for t in out:
        ids = [i for p in t.pieces if p.kind == MODEL for i in p.ids]
        assert len(ids) == 20 and not set(ids) & set(banned)


def test_group_layout_meta_and_modes(policy, samples):
    policy.model.train()
    seen = []
    out = rollout(
        policy,
        samples,
        RolloutConfig(max_new_tokens=5, seed=1),
        group_size=3,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert policy.model.training  # restored
    policy.model.eval()
    assert [(t.meta["group"], t.meta["sample_id"], t.meta["row"]) for t in out] == [
        (g, f"s{g}", g * 3 + c) for g in range(2) for c in range(3)
    ]
    for t in out:
        n = sum(len(p.ids) for p in t.pieces if p.kind == MODEL)
        assert t.meta["n_crops"] == 0 and n == t.meta["n_new_tokens"]
        assert (t.meta["stop"], n) == ("max_new_tokens", 5) or (t.meta["stop"] == "eos" and n <= 5)
    assert seen[-1] == (6, 6)
    assert out[0].main.image is out[1].main.image and out[0].pieces is not out[1].pieces


def test_bad_arguments_get_clear_errors(policy, samples):
    with pytest.raises(ValueError, match="one entry per sample"):
        rollout(policy, samples, group_size=2, scripts=["a"] * 3, progress=False)
    with pytest.raises(ValueError, match="vision tokens"):
        rollout(policy, samples, group_size=1, scripts=["look <|image_pad|>", None], progress=False)
    with pytest.raises(ValueError, match="list of token ids"):
        rollout(policy, samples, group_size=1, scripts=[[1.5], None], progress=False)
    with pytest.raises(ValueError, match="at least one sample"):
        rollout(policy, [], progress=False)
    with pytest.raises(ValueError, match="mode"):
        RolloutConfig(mode="vllm")
    with pytest.raises(ValueError, match="group_size"):
        RolloutConfig(group_size=0)
    for t in (float("nan"), float("inf"), -1.0):  # NaN slipped past `t < 0`, and sampling then failed deep inside
        with pytest.raises(
            ValueError,
            match=r"RolloutConfig\.temperature = .* is not allowed: "
            r"expected a finite number in \[0\.0, 100\.0\]",
        ):
            RolloutConfig(temperature=t)


def test_crop_script_drives_a_whole_trajectory(policy, samples):
    from r3lab.core.regions import Frame
    from r3lab.engine.environment import crop_script

    frame = Frame.of(samples[0].load_image().size, policy.view)
    for n in (0, 2):
        (t,) = rollout(
            policy,
            samples[:1],
            RolloutConfig(greedy=True, max_new_tokens=300, max_segment_tokens=100),
            group_size=1,
            scripts=[crop_script(frame, n)],
            progress=False,
        )
        assert len(t.crops) == n and t.meta["stop"] == "eos" and t.final_answer() == "red"
        assert len({e.call.box for e in t.events}) == n  # distinct boxes


def test_finished_rows_stop_costing_and_compaction_cuts_attention(policy, samples):
    base = dict(greedy=True, max_new_tokens=70, max_segment_tokens=50)
    runs = {}
    variants = {"keep": {"drop_finished": False}, "drop": {"compact_holes": 1.0}, "compact": {"compact_holes": 0.0}}
    for name, kw in variants.items():
        stats = {}
        out = rollout(
            policy, samples, RolloutConfig(**base, **kw), group_size=2, scripts=ROW_SCRIPTS, progress=False, stats=stats
        )
        runs[name] = (stats, [t.input_ids() for t in out])
    assert runs["keep"][1] == runs["drop"][1] == runs["compact"][1]  # same tokens whatever the bookkeeping
    assert runs["drop"][0]["slots"] < runs["keep"][0]["slots"]  # a finished row costs nothing more
    assert runs["compact"][0]["kv_reads"] < runs["drop"][0]["kv_reads"]  # fewer holes to attend over


def test_crop_boxes_lets_the_environment_choose_where(policy, samples):
    asked = []

    def oracle(sample, k):
        asked.append((sample.sample_id, k))
        return (5, 6, 45, 36) if k == 0 else None  # the first crop is replaced, the second kept as written

    script = [" a", call((10, 10, 60, 50)), " b", call((60, 20, 100, 70)), " c"]
    (t,) = rollout(
        policy,
        samples[:1],
        RolloutConfig(greedy=True, max_new_tokens=80),
        group_size=1,
        scripts=[script],
        crop_boxes=oracle,
        progress=False,
    )
    assert asked == [("s0", 0), ("s0", 1)]
    assert [e.call.box for e in t.events] == [(5.0, 6.0, 45.0, 36.0), (60, 20, 100, 70)]
    assert [c.info.box_input for c in t.crops] == [(5, 6, 45, 36), (60, 20, 100, 70)]
    assert "[10, 10, 60, 50]" in t.pieces[3].text  # what the model wrote is kept verbatim
    full, _, _ = teacher_forced(policy, t)  # the substituted crop is a normal image piece
    assert not full.isnan().any()


@pytest.mark.parametrize("bad", [(5, 6, 45), (50, 50, 10, 10), (200, 200, 300, 300), ("a", 1, 2, 3), 7])
def test_a_bad_environment_box_is_a_clear_error(policy, samples, bad):
    script = [" a", call((10, 10, 60, 50)), " b"]
    with pytest.raises(ValueError, match="crop_boxes returned .* model-input frame"):
        rollout(
            policy,
            samples[:1],
            RolloutConfig(greedy=True, max_new_tokens=40),
            group_size=1,
            scripts=[script],
            crop_boxes=lambda s, k: bad,
            progress=False,
        )


def test_crop_boxes_is_not_asked_past_max_crops(policy, samples):
    asked = []
    script = [" a", call((10, 10, 60, 50)), " b", call((20, 20, 60, 50)), " c"]
    (t,) = rollout(
        policy,
        samples[:1],
        RolloutConfig(greedy=True, max_new_tokens=80, max_crops=1),
        group_size=1,
        scripts=[script],
        crop_boxes=lambda s, k: asked.append(k) or (5, 6, 45, 36),
        progress=False,
    )
    assert asked == [0] and len(t.crops) == 1 and t.events[1].note  # the second call is refused with a note


@pytest.fixture(scope="module")
def smol():
    p = build_tiny(TinyConfig(seed=3), family="smolvlm")
    assert type(p.model).__name__ == "Idefics3ForConditionalGeneration" and p.position_dims == 1
    return p


@pytest.mark.parametrize("n_crops", [0, 1, 3])
def test_smolvlm_incremental_logits_equal_one_full_forward(smol, samples, n_crops, cache):
    """SmolVLM (Idefics3 classes): tiles + global view per image, 1-D positions, the KV cache kept across crops."""
    _incremental_equals_full(smol, samples, n_crops, cache=cache)


def test_smolvlm_rows_cropping_at_different_steps_stay_exact(smol, samples, cache):
    cfg = RolloutConfig(
        greedy=True, max_new_tokens=70, max_segment_tokens=50, compact_holes=0.0, drop_finished=True, cache=cache
    )
    rec, stats = Recorder(), {}
    out = rollout(smol, samples, cfg, group_size=2, scripts=ROW_SCRIPTS, logits_hook=rec, progress=False, stats=stats)
    assert [len(t.crops) for t in out] == [1, 2, 1, 0] and stats["compactions"] > 0
    assert out[3].meta["stop"] == "eos" and out[3].pieces[-1].ids[-1] == smol.eos_id
    assert smol.decode([smol.eos_id]) == "<|im_end|>" and out[3].final_answer() == "red"
    for i, traj in enumerate(out):
        full, _, _ = teacher_forced(smol, traj)
        assert (rec.of(i) - full).abs().max().item() < 1e-4, f"row {i}"
    ref = rollout(
        smol,
        samples,
        RolloutConfig(greedy=True, max_new_tokens=70, max_segment_tokens=50, mode="reference"),
        group_size=2,
        scripts=ROW_SCRIPTS,
        progress=False,
    )
    assert [t.input_ids() for t in ref] == [t.input_ids() for t in out]


def test_smolvlm_classes_of_model_type_smolvlm_keep_the_cache_exact(smol, samples):
    """A SmolVLM2-style folder (model_type 'smolvlm': transformers' SmolVLM classes and its PIL image processor,
    no torchvision) runs through the same rules as an Idefics3 one."""
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil

    from r3lab.model.policy import Policy

    d = smol.model.config.to_dict()
    for key in ("model_type", "architectures"):
        d.pop(key, None)
    d["vision_config"].pop("model_type", None)
    model = SmolVLMForConditionalGeneration(SmolVLMConfig(**d)).eval()
    model.load_state_dict(smol.model.state_dict())
    S = smol.patch_size
    improc = SmolVLMImageProcessorPil(
        do_image_splitting=True, size={"longest_edge": 6 * S}, max_image_size={"longest_edge": S}
    )
    p = Policy(model, smol.tokenizer, improc, smol.view, smol.prompt)
    assert p.position_dims == 1 and p.patch_size == S
    _incremental_equals_full(p, samples, 2)
