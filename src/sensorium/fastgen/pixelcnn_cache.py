"""Cached PixelCNN++ layers: each keeps the inputs its kernel still needs and runs only where
an output falls.

Shape letters: B batch, F_in / F_out channels, w the width of the layer's input level,
kh, kw kernel height and width. Everything cached is channels-last: a row is (B, w, F), a
pixel (B, F), so windows are contiguous blocks and 1x1 convs are plain matrix products.

- `RowCache`, for the vertical stream's down-shifted convs: the last kh input rows; once a
  row is pushed it gives the output row whose window ends there (stride 2: call it on even
  input rows only).
- `PixelCache`, for the horizontal stream's down-right-shifted convs: the last kh input rows,
  the newest filled pixel by pixel; once a pixel is pushed it gives the output whose window
  ends there. `next_row` rolls the rows after a row's last pixel.
- `RowDeconvCache`, `PixelDeconvCache`, for the stride-2 transposed convs: each input row
  (pixel) makes two output rows (a 2 x 2 block); they are kept until used.

Every cache is allocated by `reset(batch, width)` and zeroed there: the zero rows and columns
are exactly the padding of the full pass. Weights are read from the model once, on creation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sensorium.fastgen.pixelcnn import (
    GatedResnet,
    Nin,
    ShiftedConv2d,
    ShiftedDeconv2d,
    concat_elu,
)


def zeroed(buffer: torch.Tensor | None, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """`buffer` zeroed in place if it has `shape`, else a new zero tensor of `like`'s kind."""
    if buffer is None or buffer.shape != shape:
        return like.new_zeros(shape)
    return buffer.zero_()


def nin_weights(nin: Nin) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x1 conv as (F_out, F_in) weight and (F_out,) bias for `F.linear` on channels-last."""
    return nin.conv.weight.detach()[:, :, 0, 0].contiguous(), nin.conv.bias.detach()


class RowCache:
    """A down-shifted conv run one output row at a time."""

    def __init__(self, layer: ShiftedConv2d) -> None:
        if layer.right:
            raise ValueError("RowCache takes a down-shifted conv; use PixelCache")
        self.weight = layer.conv.weight.detach()  # (F_out, F_in, kh, kw)
        self.bias = layer.conv.bias.detach()
        self.kernel, self.stride = layer.kernel, layer.stride
        self.pad = layer.padding[0]
        self.rows: torch.Tensor | None = None

    def reset(self, batch: int, width: int) -> None:
        shape = (batch, self.weight.shape[1], self.kernel[0], width + 2 * self.pad)
        self.rows = zeroed(self.rows, shape, self.weight)  # (B, F_in, kh, w + pad)

    def push(self, row: torch.Tensor) -> None:
        """Add the next input row (B, w, F_in); the oldest row drops out."""
        if self.kernel[0] > 1:
            self.rows[:, :, :-1] = self.rows[:, :, 1:].clone()
        self.rows[:, :, -1, self.pad : self.rows.shape[3] - self.pad] = row.transpose(1, 2)

    def output(self) -> torch.Tensor:
        """The output row whose window ends at the last pushed row: (B, w_out, F_out)."""
        out = F.conv2d(self.rows, self.weight, self.bias, stride=(1, self.stride))
        return out[:, :, 0].transpose(1, 2)


class PixelCache:
    """A down-right-shifted conv run one output pixel at a time.

    A window spans kh rows: the kh - 1 above the current row are complete when the row
    starts, so their share of every output of the row (`above`, with the bias) is computed
    then in one matrix product; a pixel step adds only the current row's kw taps.
    """

    def __init__(self, layer: ShiftedConv2d) -> None:
        if not layer.right:
            raise ValueError("PixelCache takes a down-right-shifted conv; use RowCache")
        weight = layer.conv.weight.detach().permute(2, 3, 1, 0)  # (kh, kw, F_in, F_out)
        F_in, F_out = weight.shape[2:]
        # Windows are laid out (rows, kw, F_in), matching the cached rows.
        self.above_weight = weight[:-1].reshape(-1, F_out).contiguous()  # ((kh-1) kw F_in, F_out)
        self.current_weight = weight[-1].reshape(-1, F_out).contiguous()  # (kw F_in, F_out)
        self.bias = layer.conv.bias.detach()
        self.kernel, self.stride = layer.kernel, layer.stride
        self.in_channels = F_in
        self.rows: torch.Tensor | None = None
        self.above: torch.Tensor | None = None

    def reset(self, batch: int, width: int) -> None:
        kh, kw = self.kernel
        shape = (batch, kh, kw - 1 + width, self.in_channels)
        self.rows = zeroed(self.rows, shape, self.current_weight)  # (B, kh, pad + w, F_in)
        self._start_row()

    def push(self, col: int, pixel: torch.Tensor) -> None:
        """Write the input (B, F_in) at column `col` of the current row."""
        self.rows[:, -1, self.kernel[1] - 1 + col] = pixel

    def output(self, col: int) -> torch.Tensor:
        """The output whose window's bottom-right input is (current row, col): (B, F_out).

        For a stride-2 conv, output (i, j) has its window end at input (2i, 2j).
        """
        window = self.rows[:, -1, col : col + self.kernel[1]]  # (B, kw, F_in)
        above = self.above[:, col // self.stride]  # (B, F_out)
        return torch.addmm(above, window.reshape(window.shape[0], -1), self.current_weight)

    def add_to_row(self, term: torch.Tensor) -> None:
        """Add a term (B, w_out, F_out) known for the whole current row to its outputs."""
        self.above += term

    def next_row(self) -> None:
        """After the last pixel of a row: it becomes the row above."""
        if self.kernel[0] > 1:
            self.rows[:, :-1] = self.rows[:, 1:].clone()
        self._start_row()

    def _start_row(self) -> None:
        B, kh = self.rows.shape[:2]
        if kh == 1:
            width = -(-(self.rows.shape[2] - self.kernel[1] + 1) // self.stride)
            self.above = self.bias.expand(B, width, -1).clone()
            return
        windows = self.rows[:, :-1].unfold(2, self.kernel[1], self.stride)  # (B, kh-1, w, F, kw)
        windows = windows.permute(0, 2, 1, 4, 3)  # (B, w_out, kh - 1, kw, F_in)
        flat = windows.reshape(B * windows.shape[1], -1)
        self.above = torch.addmm(self.bias, flat, self.above_weight).reshape(
            B, -1, self.bias.shape[0]
        )


class RowDeconvCache:
    """A vertical stride-2 transposed conv: one input row makes two output rows."""

    def __init__(self, layer: ShiftedDeconv2d) -> None:
        if layer.right:
            raise ValueError("RowDeconvCache takes a down-shifted deconv; use PixelDeconvCache")
        self.weight = layer.conv.weight.detach()  # (F_in, F_out, 2, kw)
        self.bias = layer.conv.bias.detach()
        self.crop_left = layer.crop_left
        self.pair: torch.Tensor | None = None
        self.width = 0

    def reset(self, batch: int, width: int) -> None:
        """`width` is the output level's width."""
        self.width = width
        self.pair = self.weight.new_zeros((batch, 2, width, self.weight.shape[1]))

    def push(self, row: torch.Tensor) -> None:
        """Input row i (B, w_in, F_in) makes output rows 2i and 2i + 1."""
        out = F.conv_transpose2d(row.transpose(1, 2)[:, :, None], self.weight, self.bias, 2)
        out = out[:, :, :, self.crop_left : self.crop_left + self.width]  # (B, F_out, 2, w)
        self.pair = out.permute(0, 2, 3, 1)  # (B, 2, w, F_out)

    def output(self, row: int) -> torch.Tensor:
        """Output row `row` (B, w, F_out), made by the last push (of input row row // 2)."""
        return self.pair[:, row % 2]


class PixelDeconvCache:
    """A horizontal stride-2 transposed conv: input (i, j) alone makes outputs (2i + a, 2j + b)."""

    def __init__(self, layer: ShiftedDeconv2d) -> None:
        if not layer.right:
            raise ValueError("PixelDeconvCache takes a down-right-shifted deconv")
        weight = layer.conv.weight.detach()  # (F_in, F_out, 2, 2)
        self.weight = weight.permute(2, 3, 0, 1).contiguous()  # (2, 2, F_in, F_out)
        self.bias = layer.conv.bias.detach()
        self.inputs: torch.Tensor | None = None

    def reset(self, batch: int, width: int) -> None:
        """`width` is the input level's width: one input row is kept."""
        self.inputs = zeroed(self.inputs, (batch, width, self.weight.shape[2]), self.weight)

    def push(self, col: int, pixel: torch.Tensor) -> None:
        """Keep input (current input row, col) (B, F_in) until both output rows are done."""
        self.inputs[:, col] = pixel

    def output(self, row: int, col: int) -> torch.Tensor:
        """Output (row, col) (B, F_out), from the kept input (row // 2, col // 2)."""
        return torch.addmm(self.bias, self.inputs[:, col // 2], self.weight[row % 2, col % 2])


class CachedGatedResnet:
    """A `GatedResnet` over cached rows (vertical stream) or pixels (horizontal stream).

    Rows are (B, w, F), pixels (B, F); `col` is given for pixels and None for rows.

    For a pixel block, the first `row_side` channels of its side input are the vertical
    stream's outputs, known for the whole row before its first pixel: `begin_row` passes
    them through their share of the 1x1 conv once per row, into the first conv's row term.
    `step` then takes only the rest of the side input (None where there is none).
    """

    def __init__(self, block: GatedResnet, row_side: int = 0) -> None:
        cache = PixelCache if block.conv_in.right else RowCache
        if row_side and cache is RowCache:
            raise ValueError("a row side input belongs to pixel blocks")
        self.conv_in = cache(block.conv_in)
        self.conv_out = cache(block.conv_out)
        self.nin_row = self.nin_rest = None
        if block.nin is not None:
            weight, bias = nin_weights(block.nin)  # (F, 2S): columns for side, then -side
            S = weight.shape[1] // 2
            row = torch.cat((torch.arange(row_side), torch.arange(S, S + row_side)))
            rest = torch.cat((torch.arange(row_side, S), torch.arange(S + row_side, 2 * S)))
            if row_side:
                self.nin_row = (weight[:, row].contiguous(), bias)
            if row_side < S:
                self.nin_rest = (weight[:, rest].contiguous(), None if row_side else bias)

    def reset(self, batch: int, width: int) -> None:
        self.conv_in.reset(batch, width)
        self.conv_out.reset(batch, width)

    def begin_row(self, row_side: torch.Tensor) -> None:
        """The row's vertical side input (B, w, row_side), before its first pixel."""
        self.conv_in.add_to_row(F.linear(concat_elu(row_side, dim=-1), *self.nin_row))

    def _conv(self, cache, x: torch.Tensor, col: int | None) -> torch.Tensor:
        if col is None:
            cache.push(x)
            return cache.output()
        cache.push(col, x)
        return cache.output(col)

    def step(self, x: torch.Tensor, side: torch.Tensor | None, col: int | None) -> torch.Tensor:
        h = self._conv(self.conv_in, concat_elu(x, dim=-1), col)
        if self.nin_rest is not None:
            h = h + F.linear(concat_elu(side, dim=-1), *self.nin_rest)
        a, b = self._conv(self.conv_out, concat_elu(h, dim=-1), col).chunk(2, dim=-1)
        return torch.addcmul(x, a, torch.sigmoid(b))

    def next_row(self) -> None:
        """For pixel blocks: after the last pixel of a row."""
        self.conv_in.next_row()
        self.conv_out.next_row()
