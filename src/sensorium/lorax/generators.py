"""Small image generators trained here, each leaving its own trace in the images it makes.

They stand in for CDDB's generator families in the offline benchmark (`build_data.py`). Every
generator works on 32 x 32 RGB images and trains in well under a minute on one CPU core at the
default settings of `build_data.BuildSettings`.

| kind | what it is | its fake of a source image |
|---|---|---|
| `sr_tconv` | 2x super-resolution 16 -> 32, transposed-conv upsampler | SR of the source halved |
| `sr_tconv3` | the same with a 3 x 3 transposed conv (held out for pretraining) | the same |
| `sr_nearest` | 2x SR, nearest-neighbour resize then conv | the same |
| `sr_bilinear` | 2x SR, bilinear resize then conv | the same |
| `sr_bicubic` | 2x SR, bicubic resize then conv (a near-duplicate of bilinear) | the same |
| `sr_pixelshuffle` | 2x SR, sub-pixel conv (PixelShuffle) | the same |
| `autoencoder` | 32 -> 8 -> 32 autoencoder, transposed-conv decoder | its reconstruction |
| `ae_nearest` | the same with a nearest resize-conv decoder (held out for pretraining) | the same |
| `vae` | a small VAE with an 8 x 8 latent | a decoder sample from the posterior |
| `gan` | a small DCGAN trained adversarially | a sample from noise (no source) |

The SR nets and autoencoders train with an L1 loss, the VAE with L1 plus a KL term, the GAN
with the non-saturating logistic loss. Shape letters: N images, C channels, H, W pixels.
Images cross the interface as uint8 (N, 32, 32, 3) RGB; inside they are float (N, 3, H, W)
in [-1, 1].
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sensorium.common.errors import SensoriumError

logger = logging.getLogger(__name__)

IMAGE_SIZE = 32
SR_KINDS = ("sr_tconv", "sr_tconv3", "sr_nearest", "sr_bilinear", "sr_bicubic", "sr_pixelshuffle")
GENERATOR_KINDS = (*SR_KINDS, "autoencoder", "ae_nearest", "vae", "gan")
GAN_LATENT = 64
VAE_LATENT_CHANNELS = 8


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) as float (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] as uint8 (N, H, W, 3), rounded and clipped."""
    scaled = ((images.detach() + 1) * 127.5).round().clamp(0, 255)
    return scaled.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _upsampler(kind: str, width: int) -> nn.Module:
    """A 2x upsampling block (N, width, H, W) -> (N, width, 2H, 2W) of the named kind."""
    if kind == "tconv":
        return nn.Sequential(nn.ConvTranspose2d(width, width, 4, 2, 1), nn.ReLU())
    if kind == "tconv3":
        return nn.Sequential(nn.ConvTranspose2d(width, width, 3, 2, 1, output_padding=1), nn.ReLU())
    if kind in ("nearest", "bilinear", "bicubic"):
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode=kind), nn.Conv2d(width, width, 3, padding=1), nn.ReLU()
        )
    if kind == "pixelshuffle":
        return nn.Sequential(
            nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.ReLU()
        )
    raise SensoriumError(f"unknown upsampler {kind!r}")


class SuperResolution(nn.Module):
    """2x SR net: (N, 3, 16, 16) -> (N, 3, 32, 32); the upsampler is the only difference."""

    def __init__(self, upsampler: str, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            _upsampler(upsampler, width),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 3, 3, padding=1),
        )

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        return self.net(low)


class AutoEncoder(nn.Module):
    """32 -> 8 -> 32 autoencoder: (N, 3, 32, 32) -> (N, 3, 32, 32).

    With `variational` the encoder gives a mean and log-variance (N, 8, 8, 8) and the decoder
    takes a sample; `decoder` names the upsampler of the two 2x decoder stages.
    """

    def __init__(self, width: int, decoder: str = "tconv", variational: bool = False) -> None:
        super().__init__()
        self.variational = variational
        code = 2 * VAE_LATENT_CHANNELS if variational else width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 4, 2, 1),  # (N, width, 16, 16)
            nn.ReLU(),
            nn.Conv2d(width, width, 4, 2, 1),  # (N, width, 8, 8)
            nn.ReLU(),
            nn.Conv2d(width, code, 3, padding=1),
        )
        latent = VAE_LATENT_CHANNELS if variational else width
        self.decoder = nn.Sequential(
            nn.Conv2d(latent, width, 3, padding=1),
            nn.ReLU(),
            _upsampler(decoder, width),  # (N, width, 16, 16)
            _upsampler(decoder, width),  # (N, width, 32, 32)
            nn.Conv2d(width, 3, 3, padding=1),
        )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, log-variance) of the code, each (N, latent, 8, 8); log-variance None if plain."""
        code = self.encoder(images)
        if not self.variational:
            return code, None
        mean, log_var = code.chunk(2, dim=1)
        return mean, log_var.clamp(-10, 5)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstructions (N, 3, 32, 32) and the KL term (a scalar, 0 unless variational)."""
        mean, log_var = self.encode(images)
        if log_var is None:
            return self.decoder(mean), mean.new_zeros(())
        latent = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(dim=(1, 2, 3)).mean()
        return self.decoder(latent), kl


class GanGenerator(nn.Module):
    """DCGAN generator: noise (N, 64) -> (N, 3, 32, 32) in [-1, 1]."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.project = nn.Linear(GAN_LATENT, 4 * width * 4 * 4)
        self.net = nn.Sequential(
            nn.BatchNorm2d(4 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1),  # (N, 2w, 8, 8)
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),  # (N, w, 16, 16)
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 3, 4, 2, 1),  # (N, 3, 32, 32)
            nn.Tanh(),
        )

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(noise).view(-1, 4 * self.width, 4, 4))  # (N, 4w, 4, 4)


def _discriminator(width: int) -> nn.Module:
    """DCGAN discriminator: (N, 3, 32, 32) -> logits (N,)."""
    return nn.Sequential(
        nn.Conv2d(3, width, 4, 2, 1),  # (N, w, 16, 16)
        nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1),  # (N, 2w, 8, 8)
        nn.BatchNorm2d(2 * width),
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 4 * width, 4, 2, 1),  # (N, 4w, 4, 4)
        nn.BatchNorm2d(4 * width),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(4 * width * 16, 1),
        nn.Flatten(0),
    )


def downsample(images: torch.Tensor) -> torch.Tensor:
    """2x box downsampling (N, 3, H, W) -> (N, 3, H/2, W/2): the SR nets' input."""
    return F.avg_pool2d(images, 2)


@dataclass
class Generator:
    """A trained generator of one kind; `generate` makes uint8 (N, 32, 32, 3) fakes."""

    kind: str
    width: int
    net: nn.Module
    train_seconds: float = 0.0

    @property
    def needs_source(self) -> bool:
        """Whether `generate` takes real images to transform (all kinds but the GAN)."""
        return self.kind != "gan"

    @torch.no_grad()
    def generate(self, source: np.ndarray | int, seed: int, batch_size: int = 256) -> np.ndarray:
        """Fakes, uint8 (N, 32, 32, 3) RGB.

        `source` is uint8 (N, 32, 32, 3) real images for the SR nets, autoencoders and VAE (the
        fake of each is made from it), or a count N for the GAN. `seed` fixes the VAE's and
        GAN's sampling.
        """
        if isinstance(source, int | np.integer):
            if self.needs_source:
                raise SensoriumError(f"generator {self.kind!r} transforms real images; got a count")
            count = int(source)
        else:
            _check_images(source, "source images")
            count = len(source)
        noise = torch.Generator().manual_seed(seed)
        self.net.eval()
        outputs = []
        for start in range(0, count, batch_size):
            stop = min(count, start + batch_size)
            if self.kind == "gan":
                outputs.append(self.net(torch.randn(stop - start, GAN_LATENT, generator=noise)))
                continue
            batch = to_tensor(source[start:stop])
            if self.kind in SR_KINDS:
                outputs.append(self.net(downsample(batch)))
            elif self.kind == "vae":
                mean, log_var = self.net.encode(batch)
                eps = torch.randn(mean.shape, generator=noise)
                outputs.append(self.net.decoder(mean + eps * (0.5 * log_var).exp()))
            else:
                outputs.append(self.net(batch)[0])
        if not outputs:
            return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        return to_uint8(torch.cat(outputs))


def _check_images(images: np.ndarray, what: str) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise SensoriumError(f"{what} must be a uint8 array; got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise SensoriumError(
            f"{what} have shape {images.shape}; expected (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3)"
        )


def build_net(kind: str, width: int) -> nn.Module:
    """The untrained network of a generator kind (the GAN's generator only)."""
    if kind in SR_KINDS:
        return SuperResolution(kind.removeprefix("sr_"), width)
    if kind == "autoencoder":
        return AutoEncoder(width, "tconv")
    if kind == "ae_nearest":
        return AutoEncoder(width, "nearest")
    if kind == "vae":
        return AutoEncoder(width, "tconv", variational=True)
    if kind == "gan":
        return GanGenerator(width)
    raise SensoriumError(f"unknown generator kind {kind!r}; expected one of {GENERATOR_KINDS}")


def train_generator(
    kind: str,
    real_images: np.ndarray,
    steps: int,
    seed: int,
    width: int = 32,
    batch_size: int = 64,
    lr: float = 2e-3,
    kl_weight: float = 0.01,
) -> Generator:
    """Train a generator of `kind` for `steps` Adam steps on real uint8 (N, 32, 32, 3) images.

    The GAN uses lr / 10 (DCGAN's 2e-4 at the default) and Adam betas (0.5, 0.999).
    `kl_weight` scales the VAE's KL term against its per-image L1 sum.
    """
    if kind not in GENERATOR_KINDS:
        raise SensoriumError(f"unknown generator kind {kind!r}; expected one of {GENERATOR_KINDS}")
    _check_images(real_images, "training images")
    if len(real_images) < 2:
        raise SensoriumError(f"need at least 2 training images; got {len(real_images)}")
    for name, value in (("steps", steps), ("width", width), ("batch_size", batch_size)):
        if int(value) < 1:
            raise SensoriumError(f"generator {name} must be at least 1; got {value!r}")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    data = to_tensor(real_images)  # (N, 3, 32, 32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_net(kind, width)
        if kind == "gan":
            _train_gan(net, data, steps, batch_size, lr / 10, rng)
        else:
            _train_reconstruction(kind, net, data, steps, batch_size, lr, kl_weight, rng)
    seconds = time.perf_counter() - start
    logger.info("trained %s (width %d) for %d steps in %.1f s", kind, width, steps, seconds)
    return Generator(kind, width, net.eval(), seconds)


def _batch(data: torch.Tensor, batch_size: int, rng: np.random.Generator) -> torch.Tensor:
    """A random batch (B, 3, 32, 32), with random horizontal flips."""
    batch = data[torch.from_numpy(rng.integers(0, len(data), batch_size))]
    flip = torch.from_numpy(rng.random(batch_size) < 0.5)
    return torch.where(flip[:, None, None, None], batch.flip(3), batch)


def _train_reconstruction(
    kind: str,
    net: nn.Module,
    data: torch.Tensor,
    steps: int,
    batch_size: int,
    lr: float,
    kl_weight: float,
    rng: np.random.Generator,
) -> None:
    """L1 training of an SR net (from the 2x-downsampled image) or an (variational) autoencoder."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr / 20)
    net.train()
    for step in range(steps):
        target = _batch(data, batch_size, rng)
        if kind in SR_KINDS:
            loss = F.l1_loss(net(downsample(target)), target)
        else:
            output, kl = net(target)
            # Per-image L1 sum plus KL, over the number of pixels, for the VAE.
            loss = F.l1_loss(output, target) + kl_weight * kl / target[0].numel()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step == steps - 1 or step % 100 == 0:
            logger.debug("%s step %d loss %.4f", kind, step, loss.item())


def _train_gan(
    generator: GanGenerator,
    data: torch.Tensor,
    steps: int,
    batch_size: int,
    lr: float,
    rng: np.random.Generator,
) -> None:
    """Adversarial DCGAN training with the non-saturating logistic loss."""
    discriminator = _discriminator(generator.width)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    generator.train()
    discriminator.train()
    ones, zeros = torch.ones(batch_size), torch.zeros(batch_size)
    for step in range(steps):
        real = _batch(data, batch_size, rng)
        fake = generator(torch.randn(batch_size, GAN_LATENT))
        d_loss = F.binary_cross_entropy_with_logits(
            discriminator(real), ones
        ) + F.binary_cross_entropy_with_logits(discriminator(fake.detach()), zeros)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(discriminator(fake), ones)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if step == steps - 1 or step % 100 == 0:
            logger.debug("gan step %d d_loss %.3f g_loss %.3f", step, d_loss.item(), g_loss.item())
