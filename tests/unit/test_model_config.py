"""The ``model:`` block (no torch here): per-kind defaults, round trips, errors naming the field."""

from __future__ import annotations

import pytest

from direct_ray.model_config import DEFAULTS, MODEL_KINDS, ModelConfig


# --- ModelConfig ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_config_defaults_per_kind_and_round_trip(kind):
    config = ModelConfig.from_dict({"kind": kind})
    for name, value in DEFAULTS[kind].items():
        assert getattr(config, name) == value
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ("hidden" in config.to_dict()) == (kind == "mlp")
    assert ("pretrained" in config.to_dict()) == (kind == "resnet18")


def test_config_overrides_and_default_kind():
    config = ModelConfig.from_dict({"epochs": 3, "lr": 0.5, "hidden": 16, "class_weighted": False})
    assert (config.kind, config.epochs, config.lr, config.hidden, config.class_weighted) == ("mlp", 3, 0.5, 16, False)
    assert ModelConfig.from_dict({"kind": "resnet18", "epochs": 500}).epochs == 500


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "mlp", "layers": 2}, r"unknown key\(s\) \['layers'\]; allowed: \['kind', 'pretrained', 'hidden'"),
        ({"kind": "cnn"}, r"^model\.kind: input should be 'mlp', 'linear' or 'resnet18', got 'cnn'$"),
        ({"kind": "resnet18", "hidden": 64}, "^model: hidden applies to kind 'mlp' only, not 'resnet18'$"),
        ({"kind": "mlp", "pretrained": True}, "^model: pretrained applies to kind 'resnet18' only"),
        ({"epochs": 0}, "^model.epochs: input should be greater than or equal to 1, got 0$"),
        ({"epochs": 2.5}, "^model.epochs: input should be a valid integer"),
        ({"hidden": True}, "^model.hidden: input should be a valid integer, got True$"),
        ({"lr": 0}, "^model.lr: must be a positive number, got 0$"),
        ({"lr": "0.1"}, "^model.lr: must be a positive number, got '0.1'$"),
        ({"lr": float("nan")}, "^model.lr: must be a positive number, got nan$"),
        ({"weight_decay": -1e-4}, "^model.weight_decay: must be a non-negative number"),
        ({"kind": "resnet18", "batch_size": 1}, "^model: batch_size must be >= 2 for kind 'resnet18'"),
        ({"class_weighted": "yes"}, "^model.class_weighted: input should be a valid boolean"),
        ({"kind": "resnet18", "pretrained": ""}, "^model.pretrained: must be true, false or a path"),
        ({"kind": "resnet18", "pretrained": 1}, "^model.pretrained: must be true, false or a path"),
    ],
)
def test_config_errors_name_the_field(data, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_dict(data)


def test_config_not_a_mapping():
    with pytest.raises(ValueError, match="^model: must be a mapping, got str$"):
        ModelConfig.from_dict("mlp")
