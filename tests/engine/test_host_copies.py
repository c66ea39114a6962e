"""Host <-> device transfers per rollout step, counted on this CPU (benchmarks/host_work.py wraps torch's own
`.tolist()`, `.item()`, `.cpu()`, `bool()`/`int()` of a tensor, `.to(<device>)`, `torch.tensor(..., device=)`): a
decode step over the static cache makes one (the chosen ids and log-probs, back in one copy), a step where rows
finish one more (their index, sent without a wait), the growing cache's decode step two (its layout sent, then the
copy back). Before this engine a decode step made six: three copies there, two back, the forced ids."""

import importlib.util
from pathlib import Path

import pytest
import torch

from r3lab.data.sample import Sample
from r3lab.engine.config import RolloutConfig
from r3lab.engine.host import Link
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_image

ROOT = Path(__file__).resolve().parents[2]


def _host_work():
    spec = importlib.util.spec_from_file_location("host_work", ROOT / "benchmarks" / "host_work.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def setup():
    policy = build_tiny(TinyConfig(seed=3))
    sample = Sample(toy_image((448, 336), 0), "What colour is the disc?", ["red"], sample_id="s0")
    return _host_work(), policy, sample


def _measure(setup, cache: str, temperature: float, rows: int = 4, tokens: int = 12):
    hw, policy, sample = setup
    cfg = RolloutConfig(
        max_crops=0,
        max_new_tokens=tokens,
        max_segment_tokens=tokens,
        seed=1,
        cache=cache,
        temperature=temperature,
        greedy=temperature == 0,
    )
    script = [" a" * (tokens + 4)] if temperature == 0 else None
    return hw.measure(policy, [sample], cfg, script, rows, repeats=1)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_static_decode_step_makes_one_transfer(setup, temperature):
    r = _measure(setup, "static", temperature)
    d = r["decode"]
    assert d["steps"] >= 8 and d["transfers_per_step"] == d["max_transfers"] == 1 and d["syncs_per_step"] == 1
    assert d["by_call"] == {"tolist": d["steps"]}  # the ids and log-probs, fetched together
    for f in [r["finish"]] if "finish" in r else []:  # rows finishing: their index goes over too, without a wait
        assert f["max_transfers"] <= 2 and f["syncs_per_step"] == 1


def test_a_dynamic_decode_step_sends_its_layout_once(setup):
    d = _measure(setup, "dynamic", 0.0)["decode"]
    assert d["transfers_per_step"] == 2 and d["syncs_per_step"] == 1 and d["by_call"].get("to_async") == d["steps"]


def test_the_count_sees_a_second_copy_back(setup, monkeypatch):
    """Fetching the ids and the log-probs apart (two waits) is counted as two: the count above can fail."""

    def apart(self, ids, lps):
        self.fetches += 1
        return ids.tolist(), lps.tolist()

    monkeypatch.setattr(Link, "fetch", apart)
    d = _measure(setup, "static", 0.0)["decode"]
    assert d["transfers_per_step"] == d["syncs_per_step"] == 2


def test_fetch_and_send_round_trip():
    link = Link(torch.device("cpu"))
    ids, lps = link.fetch(torch.tensor([3, 151935]), torch.tensor([-0.25, -1e-7]))
    assert ids == [3, 151935] and lps == [-0.25, pytest.approx(-1e-7)] and isinstance(ids[0], int)
    a, b = link.send(torch.tensor([[1, 2]]), torch.zeros(2, 1, 3, dtype=torch.long))
    assert a.tolist() == [[1, 2]] and b.shape == (2, 1, 3) and (link.fetches, link.sends) == (1, 1)
