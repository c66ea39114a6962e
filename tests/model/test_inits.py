"""r3-tiny's initialisation levers: what each one sets, and the errors for settings that cannot apply."""

import pytest
import torch

from r3lab.model.inits import fourier_features
from r3lab.model.tiny import TinyConfig, build_tiny

QWEN3 = dict(family="qwen3_vl", patch_size=7)


def test_whole_numbers_are_one_token_each_and_digits_stay_split_by_default():
    whole = build_tiny(TinyConfig(**QWEN3, numbers="whole", max_number=120, vocab_size=2048))
    for n in (0, 7, 53, 112, 120):
        assert len(whole.encode(str(n))) == 1 and len(whole.encode(f" {n}")) == 1
    call = '{"bbox_2d": [53, 40, 76, 112]}'
    assert whole.decode(whole.encode(call)) == call  # lossless either way
    digits = build_tiny(TinyConfig(**QWEN3))
    assert len(digits.encode("112")) == 3 and len(digits.encode(call)) > len(whole.encode(call))
    with pytest.raises(ValueError, match="numbers = 'roman' is not allowed"):  # when the config is made
        build_tiny(TinyConfig(numbers="roman"))


def test_fourier_number_embeddings_score_nearby_numbers_highest():
    p = build_tiny(TinyConfig(**QWEN3, numbers="whole", max_number=120, vocab_size=2048, number_init="fourier"))
    emb = p.model.get_input_embeddings().weight.detach()
    vocab = p.tokenizer.get_vocab()
    code = emb[vocab["60"], :32]
    assert torch.allclose(code, fourier_features(torch.tensor(60.0), 16).float() / 4)
    scores = {n: float(code @ emb[vocab[str(n)], :32]) for n in range(121)}
    assert max(scores, key=scores.get) == 60 and scores[61] > scores[90]
    with pytest.raises(ValueError, match="needs numbers='whole'"):
        build_tiny(TinyConfig(**QWEN3, number_init="fourier"))


def test_fourier_grid_codes_patch_centres_and_qk_gain_sets_the_norms():
    p = build_tiny(TinyConfig(**QWEN3, pos_init="fourier", qk_norm_init=2.0))
    w = p.model.model.visual.pos_embed.weight.detach()
    side, half = 16, w.shape[1] // 2
    expect = fourier_features(torch.tensor(3 * 7 + 3.5), half // 2).float()  # row 3 of 16 over a 112-px view
    assert torch.allclose(w[3 * side + 5, :half], expect, atol=1e-6)  # row code first, then the column's
    norms = [m.weight for n, m in p.model.named_modules() if n.endswith(("q_norm", "k_norm"))]
    assert norms and all(torch.all(g == 2.0) for g in norms)
    with pytest.raises(ValueError, match="no q/k norms"):
        build_tiny(TinyConfig(qk_norm_init=2.0))
    with pytest.raises(ValueError, match="pos_init = 'learned' is not allowed"):  # when the config is made
        build_tiny(TinyConfig(**QWEN3, pos_init="learned"))
