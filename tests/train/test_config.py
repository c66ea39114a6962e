import dataclasses

import pytest

from r3lab.cli.args import field_help
from r3lab.train.config import RGRPOConfig, SFTConfig, TrainConfig


def test_both_stages_share_one_base_of_settings_and_set_their_own_defaults():
    shared = {f.name for f in dataclasses.fields(TrainConfig)}
    assert {"steps", "lr_lm", "freeze_vision", "schedule", "lora", "out_dir", "resume"} <= shared
    for cls in (SFTConfig, RGRPOConfig):
        assert issubclass(cls, TrainConfig) and shared <= {f.name for f in dataclasses.fields(cls)}
    sft, rl = SFTConfig(), RGRPOConfig()
    assert (sft.steps, sft.schedule, sft.freeze_vision) == (200, "cosine", False)  # each stage its own defaults
    assert (rl.steps, rl.schedule, rl.freeze_vision, rl.lr_lm) == (20, "constant", True, 1e-4)
    assert field_help(RGRPOConfig)["weight_decay"] == "AdamW decay on matrices (never on norms/biases)"  # the base's
    assert field_help(RGRPOConfig)["steps"] == "rollout steps"  # a stage's own comment wins
    for cls in (SFTConfig, RGRPOConfig):  # the shared checks, naming the stage's config
        with pytest.raises(ValueError, match=rf"{cls.__name__}\.optimizer = 'adam' is not allowed"):
            cls(optimizer="adam")
        with pytest.raises(ValueError, match=rf"{cls.__name__}\.lr_lm = 2 is not allowed"):
            cls(lr_lm=2)
