"""The figures of notebook 10: positions around a crop, a group's layout, the re-prefill cost curve."""

import pytest
from matplotlib.figure import Figure

from r3lab.core.trajectory import IMAGE
from r3lab.testing import tiny_policy, toy_trajectory
from r3lab.viz.inference import plot_cost_curve, plot_group, plot_positions


def test_positions_shade_the_crop_and_group_bars_cover_every_piece():
    policy = tiny_policy()
    traj = toy_trajectory(policy)
    crop = next(i for i, p in enumerate(traj.pieces) if p.kind == IMAGE and p.info.role == "crop")
    fig = plot_positions(traj, policy, crop)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 and len(fig.axes[0].lines) == 3
    with pytest.raises(ValueError, match="no tokens"):
        plot_positions(traj, policy, len(traj.pieces) + 5)
    fig = plot_group([traj, toy_trajectory(policy, crop="square")])
    bars = fig.axes[0].patches
    assert len(bars) == 2 * (len(traj.pieces) - 3)  # one bar per piece after the prompt, per row


def test_the_cost_curve_has_both_modes_per_view():
    rows = [{"px": px, "crops": n, "reuse_s": 0.1 * n, "reprefill_s": 0.2 * n} for px in (224, 448) for n in (1, 2)]
    fig = plot_cost_curve(rows)
    assert len(fig.axes[0].lines) == 4 and fig.axes[0].get_ylim()[0] == 0
