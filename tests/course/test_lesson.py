"""What every lesson shares: its set-up cell, its smoke sizes, its starting policy and its key numbers."""
import json

import pytest
import torch

from r3lab.course import lesson
from r3lab.course.lesson import MARKER, SMOKE, load_benchmark, report, setup, sizes, start_policy
from r3lab.course.runner import find_notebooks


def test_smoke_mode_swaps_in_the_small_sizes_and_nothing_else():
    full = sizes("30_rgrpo", False, n_train=400, n_eval=16, steps=20, batch_size=16, group_size=4, sft_steps=100,
                 max_new_tokens=64, shown=4)
    small = sizes("30_rgrpo", True, **vars(full))
    assert vars(full)["steps"] == 20 and small.steps == SMOKE["30_rgrpo"]["steps"] == 2
    assert {k: v for k, v in vars(small).items() if k not in SMOKE["30_rgrpo"]} == \
        {k: v for k, v in vars(full).items() if k not in SMOKE["30_rgrpo"]}
    with pytest.raises(ValueError, match="needs"):
        sizes("30_rgrpo", True, steps=20)  # a size the table shrinks must be given


def test_the_smoke_table_names_real_lessons_and_their_parameters():
    from r3lab.course.runner import declared

    by_name = {p.stem: p for p in find_notebooks()}
    for name, small in SMOKE.items():
        params = declared(by_name[name])
        assert {k for k in small if k in params}, f"{name}: none of {sorted(small)} is a parameter"


def test_setup_seeds_threads_and_describes(monkeypatch):
    monkeypatch.setattr(lesson, "IN_CI", True)  # no autoreload outside a kernel anyway
    info = setup(7)
    first = torch.rand(1)
    setup(7)
    assert torch.equal(first, torch.rand(1)) and info["torch"] == torch.__version__
    threads = torch.get_num_threads()
    try:
        for n in ("2", "1"):  # the set-up cell gives torch the threads OMP_NUM_THREADS names
            monkeypatch.setenv("OMP_NUM_THREADS", n)
            setup(7)
            assert torch.get_num_threads() == int(n)
    finally:
        torch.set_num_threads(threads)


def test_report_prints_a_line_the_runner_reads(capsys):
    assert report(loss=0.123456, n=3) == {"loss": 0.1235, "n": 3}
    line = capsys.readouterr().out.strip()
    assert line.startswith(MARKER) and json.loads(line[len(MARKER):]) == {"loss": 0.1235, "n": 3}


def test_start_policy_and_benchmarks(tmp_path):
    policy, source = start_policy(smoke=True)
    assert source == "" and policy.patch_size == 7
    with pytest.raises(FileNotFoundError):
        start_policy(checkpoint=str(tmp_path / "missing"))
    assert load_benchmark("no-such-benchmark") is None
