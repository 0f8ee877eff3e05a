"""PixelCNN++: two causal convolution streams over three resolutions, a logistic mixture out.

Shape letters used in this module:
    B  batch of images
    C  image channels (1 grayscale, 3 RGB)
    F  filters (feature channels of both streams)
    H, W  image height and width (feature maps at level l are ceil(H / 2^l) x ceil(W / 2^l))
    P  output parameters per pixel (see `logistic_mixture.py`)

The vertical stream `u` at row r sees only the image rows above r; the horizontal stream `ul`
at (r, c) sees those rows and the pixels left of c in row r. Both are built from convolutions
that pad on the top (and, for `ul`, on the left) only:

- `ShiftedConv2d(..., right=False)`: "down-shifted", pads kh - 1 rows on top and centres the
  kernel horizontally; output row r reads input rows r - kh + 1 .. r.
- `ShiftedConv2d(..., right=True)`: "down-right-shifted", pads kh - 1 rows on top and kw - 1
  columns on the left; output (r, c) reads rows r - kh + 1 .. r, columns c - kw + 1 .. c.
- `ShiftedDeconv2d`: the stride-2 transposed versions, cropped so they stay causal.

The network (Salimans et al. 2017) runs an up pass at full, half and quarter resolution,
joined by stride-2 shifted convs, then a down pass back up through stride-2 shifted transposed
convs, with every up-pass output fed to its mirror in the down pass (the long skips). The
cached sampler (`pixelcnn_cache.py`) walks exactly this structure, so any change here must be
mirrored there; the tests hold the two to agreement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from sensorium.common.errors import SensoriumError
from sensorium.fastgen.logistic_mixture import parameters_per_pixel

LEVELS = 3  # resolutions: full, half, quarter


@dataclass
class PixelCNNConfig:
    """Settings of one PixelCNN++. Validated on creation; errors quote the bad value."""

    channels: int = 1
    height: int = 28
    width: int = 28
    # The defaults are the recipe of the shipped Fashion-MNIST model: small enough to train on
    # a CPU. The original (CIFAR-10 on GPUs) had 160 filters, 5 resnets, 10 mixtures, dropout 0.5.
    filters: int = 32
    # Gated residual blocks per resolution in the up pass; the down pass has one more at the
    # full and half resolutions, as in the original.
    resnets: int = 2
    mixtures: int = 5
    dropout: float = 0.1

    def __post_init__(self) -> None:
        for name in ("channels", "height", "width", "filters", "resnets", "mixtures"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SensoriumError(f"PixelCNN setting {name}={value!r} must be an integer >= 1")
        if self.channels not in (1, 3):
            raise SensoriumError(f"PixelCNN channels={self.channels!r}; expected 1 or 3")
        if not 0.0 <= self.dropout < 1.0:
            raise SensoriumError(f"PixelCNN dropout={self.dropout!r} must lie in [0, 1)")

    def level_size(self, level: int) -> tuple[int, int]:
        """Height and width of the feature maps at `level` (0 is full resolution)."""
        return level_size(self.height, self.width, level)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PixelCNNConfig:
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise SensoriumError(f"unknown PixelCNN settings {sorted(unknown)}")
        return cls(**values)


def level_size(height: int, width: int, level: int) -> tuple[int, int]:
    """Each stride-2 shifted conv maps n rows (or columns) to ceil(n / 2)."""
    scale = 2**level
    return -(-height // scale), -(-width // scale)


def concat_elu(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """ELU of x and of -x side by side: twice the channels along `dim`, no information lost."""
    return F.elu(torch.cat((x, -x), dim=dim))


def down_shift(x: torch.Tensor) -> torch.Tensor:
    """(B, F, H, W) moved down one row; row 0 becomes zeros."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def right_shift(x: torch.Tensor) -> torch.Tensor:
    """(B, F, H, W) moved right one column; column 0 becomes zeros."""
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class ShiftedConv2d(nn.Module):
    """A weight-normalised conv padded so that it never reads rows below its output row.

    right=False: down-shifted (kernel centred horizontally); right=True: down-right-shifted
    (never reads columns right of its output column either).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        stride: int = 1,
        right: bool = False,
    ) -> None:
        super().__init__()
        kh, kw = kernel
        if not right and kw % 2 == 0:
            raise ValueError(f"a down-shifted conv needs an odd kernel width, got {kw}")
        self.kernel, self.stride, self.right = (kh, kw), stride, right
        # (left, right, top, bottom) padding
        self.padding = (
            (kw - 1, 0, kh - 1, 0) if right else ((kw - 1) // 2, (kw - 1) // 2, kh - 1, 0)
        )
        # NOTE: PyTorch's default initialisation; the original initialises weight-normalised
        # layers from the statistics of a first batch (data-dependent init), not done here.
        self.conv = weight_norm(nn.Conv2d(in_channels, out_channels, kernel, stride=stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F_in, H, W) to (B, F_out, ceil(H / s), ceil(W / s))."""
        return self.conv(F.pad(x, self.padding))


class ShiftedDeconv2d(nn.Module):
    """A weight-normalised stride-2 transposed conv, cropped to stay causal.

    The kernel is as tall as the stride, so output rows 2i and 2i + 1 come from input row i
    alone. right=False: kernel (2, kw) centred, an output column reads input columns on both
    sides; right=True: kernel (2, 2), output (2i + a, 2j + b) comes from input (i, j) alone.
    """

    STRIDE = 2

    def __init__(
        self, in_channels: int, out_channels: int, kernel: tuple[int, int], right: bool = False
    ) -> None:
        super().__init__()
        kh, kw = kernel
        if kh != self.STRIDE or (right and kw != self.STRIDE) or (not right and kw % 2 == 0):
            raise ValueError(f"unsupported shifted deconv kernel {kernel} (right={right})")
        self.kernel, self.right = (kh, kw), right
        self.crop_left = 0 if right else (kw - 1) // 2
        # Weight (F_in, F_out, kh, kw): normalise per output channel, like the forward convs.
        self.conv = weight_norm(
            nn.ConvTranspose2d(in_channels, out_channels, kernel, stride=self.STRIDE), dim=1
        )

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(B, F_in, h, w) to (B, F_out, H, W) with (H, W) = `size`, at most (2h, 2w)."""
        height, width = size
        y = self.conv(x)  # (B, F_out, 2h, 2w + kw - 2)
        return y[:, :, :height, self.crop_left : self.crop_left + width]


class Nin(nn.Module):
    """A weight-normalised 1x1 conv ("network in network"): per-pixel linear map of channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = weight_norm(nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class GatedResnet(nn.Module):
    """x + a * sigmoid(b), with (a, b) from two shifted convs over concat-ELU features.

    `extra` channels of side input (the other stream, a long skip) enter through a 1x1 conv
    between the two convs.
    """

    def __init__(self, filters: int, right: bool, extra: int, dropout: float) -> None:
        super().__init__()
        kernel = (2, 2) if right else (2, 3)
        self.conv_in = ShiftedConv2d(2 * filters, filters, kernel, right=right)
        self.nin = Nin(2 * extra, filters) if extra else None
        self.conv_out = ShiftedConv2d(2 * filters, 2 * filters, kernel, right=right)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, side: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, F, H, W); side (B, extra, H, W) or None. Returns (B, F, H, W)."""
        h = self.conv_in(concat_elu(x))
        if self.nin is not None:
            h = h + self.nin(concat_elu(side))
        h = F.dropout(concat_elu(h), self.dropout, self.training)
        a, b = self.conv_out(h).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


class PixelCNN(nn.Module):
    """PixelCNN++ over images in [-1, 1]; the full pass used for training and naive sampling."""

    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__()
        self.config = config
        Fi, n, p = config.filters, config.resnets, config.dropout
        image = config.channels + 1  # a channel of ones marks the image inside the zero padding

        self.u_init = ShiftedConv2d(image, Fi, (2, 3))
        self.ul_init_v = ShiftedConv2d(image, Fi, (1, 3))
        self.ul_init_h = ShiftedConv2d(image, Fi, (2, 1), right=True)

        def blocks(count: int, right: bool, extra: int) -> nn.ModuleList:
            return nn.ModuleList(GatedResnet(Fi, right, extra, p) for _ in range(count))

        self.up_u = nn.ModuleList(blocks(n, False, 0) for _ in range(LEVELS))
        self.up_ul = nn.ModuleList(blocks(n, True, Fi) for _ in range(LEVELS))
        # Level l >= 1 of the up pass starts from a stride-2 conv of level l - 1.
        self.downsample_u = nn.ModuleList(
            ShiftedConv2d(Fi, Fi, (2, 3), stride=2) for _ in range(LEVELS - 1)
        )
        self.downsample_ul = nn.ModuleList(
            ShiftedConv2d(Fi, Fi, (2, 2), stride=2, right=True) for _ in range(LEVELS - 1)
        )
        # The down pass, indexed by level: the coarsest level has n blocks, the others n + 1.
        self.down_u = nn.ModuleList(
            blocks(n if level == LEVELS - 1 else n + 1, False, Fi) for level in range(LEVELS)
        )
        self.down_ul = nn.ModuleList(
            blocks(n if level == LEVELS - 1 else n + 1, True, 2 * Fi) for level in range(LEVELS)
        )
        # upsample_*[l] takes level l + 1 to level l.
        self.upsample_u = nn.ModuleList(ShiftedDeconv2d(Fi, Fi, (2, 3)) for _ in range(LEVELS - 1))
        self.upsample_ul = nn.ModuleList(
            ShiftedDeconv2d(Fi, Fi, (2, 2), right=True) for _ in range(LEVELS - 1)
        )
        self.out = Nin(Fi, parameters_per_pixel(config.channels, config.mixtures))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mixture parameters for every pixel given the pixels before it.

        Args:
            x: (B, C, H, W) images scaled to [-1, 1]; any size, not only the configured one.

        Returns:
            (B, P, H, W): position (r, c) depends only on rows above r and on row r left of c.
        """
        B, channels, H, W = x.shape
        if channels != self.config.channels:
            raise SensoriumError(
                f"images with {channels} channels; this model expects {self.config.channels}"
            )
        x = torch.cat((x, x.new_ones(B, 1, H, W)), dim=1)  # (B, C + 1, H, W)

        # Up pass: every output is kept for the down pass.
        u = down_shift(self.u_init(x))
        ul = down_shift(self.ul_init_v(x)) + right_shift(self.ul_init_h(x))
        us, uls = [u], [ul]
        for level in range(LEVELS):
            if level > 0:
                u = self.downsample_u[level - 1](u)  # (B, F, ceil(h / 2), ceil(w / 2))
                ul = self.downsample_ul[level - 1](ul)
                us.append(u)
                uls.append(ul)
            for u_block, ul_block in zip(self.up_u[level], self.up_ul[level], strict=True):
                u = u_block(u)
                ul = ul_block(ul, u)
                us.append(u)
                uls.append(ul)

        # Down pass: the coarsest level continues from its last output, the others from an
        # upsampled one; each block takes its mirror's output as side input.
        u, ul = us.pop(), uls.pop()
        for level in reversed(range(LEVELS)):
            if level < LEVELS - 1:
                size = us[-1].shape[-2:]
                u = self.upsample_u[level](u, size)
                ul = self.upsample_ul[level](ul, size)
            for u_block, ul_block in zip(self.down_u[level], self.down_ul[level], strict=True):
                u = u_block(u, us.pop())
                ul = ul_block(ul, torch.cat((u, uls.pop()), dim=1))
        return self.out(F.elu(ul))
