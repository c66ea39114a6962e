"""RolloutSettings.saved: a checkpoint's evaluation settings, then the caller's."""
from types import SimpleNamespace

import pytest

from r3lab.engine.config import RolloutSettings


def test_saved_settings_come_from_the_checkpoint_then_the_caller():
    nested = SimpleNamespace(meta={"evaluation": {"rollout": {"max_new_tokens": 128, "max_segment_tokens": 64,
                                                              "temperature": 0.0, "newer_key": 1}}})
    got = RolloutSettings.saved(nested, temperature=0.5)
    assert (got.max_new_tokens, got.max_segment_tokens, got.temperature, got.max_crops) == (128, 64, 0.5, 2)
    flat = SimpleNamespace(meta={"evaluation": {"max_new_tokens": 96}})  # r3lab.json before the nesting
    assert RolloutSettings.saved(flat).max_new_tokens == 96
    assert RolloutSettings.saved(SimpleNamespace(meta={})) == RolloutSettings()  # nothing saved: the defaults
    with pytest.raises(ValueError, match="no field"):
        RolloutSettings.saved(nested, max_tokens=3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        RolloutSettings.saved(nested, max_new_tokens=0)
