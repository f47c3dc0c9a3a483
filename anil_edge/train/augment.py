"""Training-time distortions of normalised-range images (N, C, H, W) in [0, 1], ink bright.

Each image gets its own parameters, drawn from ``generator`` on its own device (torch's global
CPU RNG if None): a seeded run — and its resumption — repeats them, and on a GPU the draws
stay there (no host round trip per batch).

- :func:`random_affine`: small rotation, scale, shear and shift (the default recipe's).
- :func:`random_strokes`: the same affine map plus a smooth elastic displacement (a coarse
  random field, upsampled; Simard et al., 2003) and a random stroke width (a partial 3×3
  dilation or erosion), the variation between people drawing one character (issue 12's study).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def affine_theta(n: int, generator: torch.Generator | None, *, degrees: float = 10.0, scale: float = 0.1,
                 shear: float = 0.15, translate: float = 0.08) -> torch.Tensor:
    """(n, 2, 3) random affine maps (rotation, scale, shear, shift as fractions of the image)."""
    u = torch.rand(n, 5, generator=generator, device=_where(generator)) * 2 - 1  # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(degrees)
    s = 1 + u[:, 1] * scale
    sh = u[:, 2] * shear
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3, device=u.device)
    theta[:, 0, 0], theta[:, 0, 1] = cos / s, (-sin + sh * cos) / s
    theta[:, 1, 0], theta[:, 1, 1] = sin / s, (cos + sh * sin) / s
    theta[:, :, 2] = u[:, 3:5] * 2 * translate
    return theta


def random_affine(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image under its own small random affine map, edges extended."""
    theta = affine_theta(x.shape[0], generator).to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_strokes(x: torch.Tensor, *, generator: torch.Generator | None = None, elastic: float = 0.06,
                   coarse: int = 4, width: float = 0.6) -> torch.Tensor:
    """Affine + elastic warp (displacements up to ``elastic`` of the half-width, smooth over a
    ``coarse`` × ``coarse`` grid), then stroke width: a blend towards a 3×3 dilation (> 0) or
    erosion (< 0) by a uniform amount in [-``width``, ``width``]."""
    n, _, h, w = x.shape
    theta = affine_theta(n, generator)
    field = (torch.rand(n, 2, coarse, coarse, generator=generator, device=_where(generator)) * 2 - 1) * elastic
    u = torch.rand(n, generator=generator, device=_where(generator)) * 2 - 1
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    flow = F.interpolate(field.to(x.device, x.dtype), size=(h, w), mode="bicubic", align_corners=False)
    x = F.grid_sample(x, grid + flow.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                      align_corners=False)
    t = (u * width).to(x.device, x.dtype).view(n, 1, 1, 1)
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return torch.where(t > 0, x + t * (dilated - x), x - t * (eroded - x))


def _where(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")
