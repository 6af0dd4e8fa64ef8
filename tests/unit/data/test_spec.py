"""DatasetSpec parsing and validation (no data is loaded here)."""

from __future__ import annotations

import pytest

from direct_ray.data import DATASET_KINDS, DatasetSpec


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ({"kind": "digits"}, "digits-k2"),
        ({"kind": "cifar10", "num_classes": 3}, "cifar10-k3"),
        ({"kind": "cifar100", "num_classes": 100, "root": "/data", "download": False}, "cifar100-k100"),
        ({"kind": "svhn"}, "svhn-k2"),
        ({"kind": "features", "path": "/x/my emb(v2).npz", "num_classes": 3}, "features-my_emb_v2_-k3"),
    ],
)
def test_round_trip_and_name(data, name):
    spec = DatasetSpec.from_dict(data)
    assert spec.name == name
    assert DatasetSpec.from_dict(spec.to_dict()) == spec
    assert set(spec.to_dict()) >= set(data)


def test_to_dict_holds_only_fields_the_kind_uses():
    assert DatasetSpec("digits").to_dict() == {"kind": "digits", "num_classes": 2}
    assert set(DatasetSpec("svhn").to_dict()) == {"kind", "num_classes", "root", "download"}
    assert set(DatasetSpec("features", path="a.npz").to_dict()) == {"kind", "num_classes", "path"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "mnist"}, r"^dataset\.kind: input should be 'digits', 'features', .* got 'mnist'"),
        ({"num_classes": 2}, "dataset.kind: is required"),
        ({"kind": "digits", "classes": 2}, r"unknown key\(s\) \['classes'\]; allowed"),
        ({"kind": "digits", "num_classes": 1}, "num_classes: input should be greater than or equal to 2, got 1"),
        ({"kind": "digits", "num_classes": "2"}, "num_classes: input should be a valid integer"),
        ({"kind": "digits", "num_classes": True}, "num_classes: input should be a valid integer, got True"),
        ({"kind": "cifar10", "num_classes": 11}, "num_classes=11 exceeds the 10 classes of cifar10"),
        ({"kind": "svhn", "num_classes": 12}, "exceeds the 10 classes of svhn"),
        ({"kind": "cifar100", "num_classes": 101}, "exceeds the 100 classes of cifar100"),
        ({"kind": "features"}, "path: kind 'features' needs path"),
        ({"kind": "digits", "path": "x.npz"}, "path: only kind 'features'"),
        ({"kind": "digits", "root": "/data"}, "root: only the torchvision kinds"),
        ({"kind": "features", "path": "x.npz", "download": False}, "download: only the torchvision kinds"),
        ({"kind": "cifar10", "download": "yes"}, "download: input should be a valid boolean"),
        ({"kind": "cifar10", "root": ""}, "root: string should have at least 1 character"),
    ],
)
def test_bad_specs_are_errors_naming_the_field(data, message):
    with pytest.raises(ValueError, match=message):
        DatasetSpec.from_dict(data)


def test_not_a_mapping():
    with pytest.raises(ValueError, match="mapping"):
        DatasetSpec.from_dict(["digits"])


def test_every_kind_is_constructible():
    for kind in DATASET_KINDS:
        if kind != "features":
            assert DatasetSpec(kind).name == f"{kind}-k2"


def test_a_features_file_without_num_classes_is_named_once_resolved():
    spec = DatasetSpec("features", path="f.npz")
    assert spec.num_classes is None and spec.to_dict()["num_classes"] is None
    assert DatasetSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="num_classes is not known yet; use DatasetSpec.resolved"):
        spec.name
    explicit = DatasetSpec("features", num_classes=2, path="missing.npz")
    assert explicit.resolved() is explicit  # a given num_classes never reads the file
