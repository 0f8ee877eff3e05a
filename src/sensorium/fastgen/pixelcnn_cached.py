"""PixelCNN++ evaluated incrementally: every layer's output is computed once, when it falls due.

Shape letters: B batch, F filters, C image channels, P mixture parameters per pixel; level l
has feature maps of h_l x w_l = ceil(H / 2^l) x ceil(W / 2^l), and full-resolution row r (or
column c) lies over row r >> l of level l.

Generation runs in raster order. Before row r of the image is drawn, `begin_row(r)` runs the
vertical stream on every level with a row there: level l has one when r % 2^l == 0 (its row
r >> l sees image rows up to 2^l (r >> l) - 1 = r - 1). Then `pixel(r, c)` runs the
horizontal stream at every level with a pixel there (r and c both multiples of 2^l) and
returns the mixture parameters of pixel (r, c); `feed(r, c, x)` hands the drawn pixel back.
Within one step the levels run in the order of the full pass: up 0, 1, 2, then down 2, 1, 0.

What each layer keeps, and how long:
- a shifted conv: its input rows still inside its kernel (`pixelcnn_cache.py`), and for the
  horizontal stream the share of the current row's outputs that the rows above and the
  vertical stream's side inputs make, computed once per row;
- the vertical stream's up-pass outputs of the current row of each level, for the down pass
  (the long skips) of that row;
- the horizontal stream's up-pass outputs only within one step: the down pass at the same
  pixel uses them straight away;
- a transposed conv: the outputs an input row or pixel makes, until the rows below use them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sensorium.fastgen.pixelcnn import LEVELS, PixelCNN, level_size
from sensorium.fastgen.pixelcnn_cache import (
    CachedGatedResnet,
    PixelCache,
    PixelDeconvCache,
    RowCache,
    RowDeconvCache,
    nin_weights,
)


class CachedPixelCNN:
    """The cached layers of one PixelCNN and the order that drives them.

    Reads the model's weights once; `reset(batch, height, width)` (re)allocates and zeroes
    every cache for a new batch of images.
    """

    def __init__(self, model: PixelCNN) -> None:
        self.config = model.config
        self.u_init = RowCache(model.u_init)
        self.ul_init_v = RowCache(model.ul_init_v)
        self.ul_init_h = PixelCache(model.ul_init_h)
        self.up_u = [[CachedGatedResnet(b) for b in level] for level in model.up_u]
        # The horizontal stream's side inputs start with the vertical stream's outputs.
        Fi = model.config.filters
        self.up_ul = [[CachedGatedResnet(b, Fi) for b in level] for level in model.up_ul]
        self.down_u = [[CachedGatedResnet(b) for b in level] for level in model.down_u]
        self.down_ul = [[CachedGatedResnet(b, Fi) for b in level] for level in model.down_ul]
        self.downsample_u = [RowCache(m) for m in model.downsample_u]
        self.downsample_ul = [PixelCache(m) for m in model.downsample_ul]
        self.upsample_u = [RowDeconvCache(m) for m in model.upsample_u]
        self.upsample_ul = [PixelDeconvCache(m) for m in model.upsample_ul]
        self.out = nin_weights(model.out)
        self.height = self.width = 0
        # Per level: the vertical stream's outputs on the current row of that level.
        self.u_up: list[list[torch.Tensor]] = []
        self.ul_v_row: torch.Tensor | None = None

    def reset(self, batch: int, height: int, width: int) -> None:
        self.height, self.width = height, width
        widths = [level_size(height, width, level)[1] for level in range(LEVELS)]
        self.u_init.reset(batch, width)
        self.ul_init_v.reset(batch, width)
        self.ul_init_h.reset(batch, width)
        for level in range(LEVELS):
            for block in (*self.up_u[level], *self.up_ul[level]):
                block.reset(batch, widths[level])
            for block in (*self.down_u[level], *self.down_ul[level]):
                block.reset(batch, widths[level])
        for level in range(LEVELS - 1):
            self.downsample_u[level].reset(batch, widths[level])
            self.downsample_ul[level].reset(batch, widths[level])
            self.upsample_u[level].reset(batch, widths[level])
            self.upsample_ul[level].reset(batch, widths[level + 1])
        self.u_up = [[] for _ in range(LEVELS)]

    # ----------------------------------------------------------------------------------------
    # The vertical stream, a row at a time
    # ----------------------------------------------------------------------------------------
    def begin_row(self, r: int, above: torch.Tensor | None) -> None:
        """Run the vertical stream for image row r.

        Args:
            r: the image row about to be drawn.
            above: image row r - 1 (B, W, C + 1) with its channel of ones; None for r = 0.
        """
        levels = [level for level in range(LEVELS) if r % 2**level == 0]
        if above is None:  # the down shift puts zeros on row 0
            u = self.u_init.weight.new_zeros((self._batch(), self.width, self.config.filters))
            self.ul_v_row = torch.zeros_like(u)
        else:
            self.u_init.push(above)
            u = self.u_init.output()  # (B, W, F)
            self.ul_init_v.push(above)
            self.ul_v_row = self.ul_init_v.output()

        # Up pass: level l starts from a stride-2 conv of level l - 1, due on its even rows.
        for level in levels:
            if level > 0:
                u = self.downsample_u[level - 1].output()  # (B, w_l, F)
            outputs = [u]
            for block in self.up_u[level]:
                u = block.step(u, None, None)
                outputs.append(u)
            self.u_up[level] = outputs
            for block, side in zip(self.up_ul[level], outputs[1:], strict=True):
                block.begin_row(side)
            if level < LEVELS - 1:
                self.downsample_u[level].push(u)

        # Down pass, coarsest due level first.
        for level in reversed(levels):
            skips = self.u_up[level]
            if level == LEVELS - 1:
                u, skips = skips[-1], skips[:-1]
            else:
                u = self.upsample_u[level].output(r >> level)
            outputs = []
            for block, skip in zip(self.down_u[level], reversed(skips), strict=True):
                u = block.step(u, skip, None)
                outputs.append(u)
            for block, side in zip(self.down_ul[level], outputs, strict=True):
                block.begin_row(side)
            if level > 0:
                self.upsample_u[level - 1].push(u)

    # ----------------------------------------------------------------------------------------
    # The horizontal stream, a pixel at a time
    # ----------------------------------------------------------------------------------------
    def pixel(self, r: int, c: int) -> torch.Tensor:
        """Mixture parameters (B, P) of image pixel (r, c), given every pixel before it."""
        # TODO: this runs as eager PyTorch calls, about 170 a pixel, which bound batch-1
        # generation (docs/pixelcnn.md); a compiled per-pixel step like the WaveNet's
        # (`wavenet_kernel.py`) would cut that time several-fold.
        levels = [level for level in range(LEVELS) if r % 2**level == 0 and c % 2**level == 0]
        ul = self.ul_v_row[:, c]  # (B, F)
        if c > 0:  # the right shift puts zeros on column 0
            ul = ul + self.ul_init_h.output(c - 1)

        ups = []
        for level in levels:
            col = c >> level
            if level > 0:
                ul = self.downsample_ul[level - 1].output(col * 2)
            outputs = [ul]
            for block in self.up_ul[level]:
                ul = block.step(ul, None, col)
                outputs.append(ul)
            ups.append(outputs)
            if level < LEVELS - 1:
                self.downsample_ul[level].push(col, ul)

        for level in reversed(levels):
            row, col = r >> level, c >> level
            skips = ups[level]
            if level == LEVELS - 1:
                ul, skips = skips[-1], skips[:-1]
            else:
                ul = self.upsample_ul[level].output(row, col)
            for block, skip in zip(self.down_ul[level], reversed(skips), strict=True):
                ul = block.step(ul, skip, col)
            if level > 0:
                self.upsample_ul[level - 1].push(col, ul)
        return F.linear(F.elu(ul), *self.out)

    def feed(self, r: int, c: int, pixel: torch.Tensor) -> None:
        """Hand back drawn pixel (r, c) (B, C + 1), ones channel included; after a row's last
        pixel, roll the horizontal caches of every level that had that row."""
        self.ul_init_h.push(c, pixel)
        if c < self.width - 1:
            return
        self.ul_init_h.next_row()
        for level in range(LEVELS):
            if r % 2**level:
                break
            for block in (*self.up_ul[level], *self.down_ul[level]):
                block.next_row()
            if level < LEVELS - 1:
                self.downsample_ul[level].next_row()

    def _batch(self) -> int:
        return self.ul_init_h.rows.shape[0]
