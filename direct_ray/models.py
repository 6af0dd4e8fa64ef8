"""The torch side of :mod:`direct_ray.training`: networks, input preparation, training and scoring.

Every network is ``embed`` (input -> penultimate features) followed by ``head`` (a linear
layer to K logits), so one forward pass yields both the probabilities and the embeddings
the embedding-based strategies use.

* ``mlp``: Linear(D, hidden) -> ReLU -> Linear(hidden, K); embeddings are the hidden layer.
* ``linear``: softmax regression; embeddings are the inputs themselves.
* ``resnet18``: torchvision's ResNet-18 unchanged (so ImageNet weights fit), its ``fc``
  replaced by a fresh Linear(512, K); on 32x32 inputs the pooled map is 1x1. Images are
  uint8 and are turned into floats one batch at a time, normalised with the ImageNet
  per-channel mean and std (what the pretrained weights expect; fixed, so no statistics
  of the pool are ever computed). No augmentation (GALAXY's code).

Training: Adam on (optionally class-weighted) cross-entropy. Each epoch the labeled set is
shuffled with a seeded ``torch.Generator`` and cut into ``max(1, n // batch_size)`` equal
batches (each holds at least ``batch_size`` examples, or all n when n is smaller, so there is
never a tiny last batch and the ResNet's batch norm never sees a batch of one). Class weights
are ``n / (K_present * n_k)`` for the classes present in the labeled set; a class with no
label never appears as a target, so its weight is irrelevant and set to 0 (no division by zero).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from direct_ray.model_config import ModelConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SCORE_BATCH = {"features": 8192, "images": 1024}


class Network(nn.Module):
    """``embed`` then ``head``; ``forward`` returns (logits, embeddings)."""

    def __init__(self, embed: nn.Module, width: int, num_classes: int, images: bool) -> None:
        super().__init__()
        self.embed = embed
        self.head = nn.Linear(width, num_classes)
        self.images = images

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.embed(x)
        return self.head(features), features


def _resnet18_backbone(pretrained: bool | str) -> nn.Module:
    from torchvision.models import resnet18  # imported here: the feature models never need torchvision

    net = resnet18(weights=None)
    if pretrained is not False:
        state = _imagenet_state() if pretrained is True else _file_state(pretrained)
        state = {key: value for key, value in state.items() if not key.startswith("fc.")}
        net.fc = nn.Identity()
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"pretrained: the weights do not fit torchvision's resnet18: {err}") from None
    net.fc = nn.Identity()
    return net


def _imagenet_state() -> dict:
    from torchvision.models import ResNet18_Weights

    weights = ResNet18_Weights.IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=False)
    except (OSError, RuntimeError) as err:  # offline: URLError is an OSError
        raise RuntimeError(
            f"pretrained: could not get torchvision's ImageNet ResNet-18 weights ({type(err).__name__}: {err}). "
            f"Offline, download {weights.url} elsewhere and either put it in {torch.hub.get_dir()}/checkpoints/ "
            f"or set model.pretrained to the file's path."
        ) from err


def _file_state(path: str) -> dict:
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"pretrained: state_dict file {str(file)!r} not found")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for unreadable or unsafe files
        raise ValueError(f"pretrained: cannot read {str(file)!r} as a torch state_dict: {err}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"pretrained: {str(file)!r} must hold a state_dict (a mapping of names to tensors)")
    return state


def build(config: ModelConfig, in_shape: tuple[int, ...], num_classes: int) -> Network:
    """A freshly initialised network (from torch's global generator; the caller seeds it)."""
    if config.kind == "mlp":
        embed = nn.Sequential(nn.Linear(in_shape[0], config.hidden), nn.ReLU())
        return Network(embed, config.hidden, num_classes, images=False)
    if config.kind == "linear":
        return Network(nn.Identity(), in_shape[0], num_classes, images=False)
    return Network(_resnet18_backbone(config.pretrained), 512, num_classes, images=True)


def _to_input(x: np.ndarray | torch.Tensor, device: torch.device, images: bool) -> torch.Tensor:
    """A float batch on ``device``; numpy slices are copied first (the source may be read-only)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.array(x, dtype=np.uint8 if images else np.float32))
    x = x.to(device, non_blocking=True)
    if not images:
        return x
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return (x.float().div_(255.0) - mean).div_(std)


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse class frequency over the classes present, ``n / (K_present * n_k)``; absent classes 0."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights.astype(np.float32)


def train(
    config: ModelConfig, x: np.ndarray, y: np.ndarray, num_classes: int, seed: int, device: torch.device
) -> Network:
    """Initialise from ``seed`` and train on (x, y); returns the network in eval mode on ``device``."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's global torch RNG untouched
        torch.manual_seed(seed)
        net = build(config, x.shape[1:], num_classes)
    net.to(device)
    generator = torch.Generator().manual_seed(seed)
    images = net.images
    # np.require copies only when needed: torch must not wrap a read-only array.
    x_all = torch.from_numpy(np.require(x, np.uint8 if images else np.float32, ["C", "W"])).to(device)
    y_all = torch.from_numpy(np.require(y, np.int64, ["C", "W"])).to(device)
    weight = torch.from_numpy(class_weights(y, num_classes)).to(device) if config.class_weighted else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(y)
    batches = max(1, n // config.batch_size)
    net.train()
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=generator).to(device)
        for idx in order.tensor_split(batches):
            logits, _ = net(_to_input(x_all[idx], device, images))
            loss = loss_fn(logits, y_all[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    net.eval()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return net


@torch.no_grad()
def score(net: Network, x: np.ndarray, device: torch.device, with_embeddings: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Softmax probabilities (N x K float32) and, if asked, embeddings (N x D float32), batch by batch."""
    n = len(x)
    probs = np.empty((n, net.head.out_features), dtype=np.float32)
    embeddings = np.empty((n, net.head.in_features), dtype=np.float32) if with_embeddings else None
    step = SCORE_BATCH["images" if net.images else "features"]
    for start in range(0, n, step):
        stop = min(start + step, n)
        logits, features = net(_to_input(x[start:stop], device, net.images))
        probs[start:stop] = torch.softmax(logits, dim=1).cpu().numpy()
        if embeddings is not None:
            embeddings[start:stop] = features.cpu().numpy()
    return probs, embeddings
