r"""The Adversarial Feature Deformation Module (AFDM).

AFDM(F) = grid_sample(F, S), where the sampling grid S is a thin-plate spline (TPS)
that moves a fixed regular grid of base control points P' to predicted points P. The
channels of F are split into ``groups`` and each group gets its own control points
(as in the adversarial spatial transformer of A-Fast-RCNN, Wang et al. CVPR 2017).

TPS (Bookstein 1989): the map f(p) = a_0 + a_x x + a_y y + \sum_k w_k U(|p - P'_k|),
U(r) = r^2 log r^2, with f(P'_k) = P_k and \sum w = \sum w P' = 0. The linear system
L [w; a] = [P; 0] depends only on P', so L^{-1} is computed once; for an output grid
of H x W points the whole map is one matrix M (HW x K) with S = M P, shared by every
sample and group: one batched matmul per forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def base_control_points(rows: int = 3, cols: int = 3) -> torch.Tensor:
    """A regular rows x cols grid of (x, y) points spanning [-1, 1]^2: shape (K, 2)."""
    ys = torch.linspace(-1.0, 1.0, rows, dtype=torch.float64)
    xs = torch.linspace(-1.0, 1.0, cols, dtype=torch.float64)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)


def tps_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """U(|a_i - b_j|) = r^2 log r^2 for point sets a (N, 2) and b (K, 2); U(0) = 0."""
    r2 = (a[:, None, :] - b[None, :, :]).pow(2).sum(-1)
    return torch.where(r2 > 0, r2 * torch.log(r2.clamp_min(1e-20)), torch.zeros_like(r2))


def tps_inverse(base: torch.Tensor) -> torch.Tensor:
    """L^{-1} for base points P' (K, 2): L = [[U(P',P'), 1, P'], [(1, P')^T, 0]]."""
    k = base.shape[0]
    affine = torch.cat([torch.ones(k, 1, dtype=base.dtype), base], dim=1)  # K x 3
    top = torch.cat([tps_kernel(base, base), affine], dim=1)
    bottom = torch.cat([affine.t(), torch.zeros(3, 3, dtype=base.dtype)], dim=1)
    return torch.linalg.inv(torch.cat([top, bottom], dim=0))


def tps_matrix(base: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """M (N x K) such that f(points) = M @ P for any targets P (K, 2) of base P'."""
    n = points.shape[0]
    phi = torch.cat([tps_kernel(points, base), torch.ones(n, 1, dtype=base.dtype), points], 1)
    return phi @ tps_inverse(base)[:, : base.shape[0]]


def output_grid(height: int, width: int, dtype=torch.float64) -> torch.Tensor:
    """(x, y) of every output pixel in grid_sample's align_corners=True coordinates."""
    ys = torch.linspace(-1.0, 1.0, height, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, width, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)


class TPSGridGenerator(nn.Module):
    """Maps target control points P (B, K, 2) to a sampling grid S (B, H, W, 2)."""

    def __init__(self, rows: int = 3, cols: int = 3) -> None:
        super().__init__()
        self.register_buffer("base", base_control_points(rows, cols).float())
        self._cache: dict[tuple, torch.Tensor] = {}

    def matrix(self, height: int, width: int, device, dtype) -> torch.Tensor:
        key = (height, width, str(device), dtype)
        if key not in self._cache:
            m = tps_matrix(self.base.double().cpu(), output_grid(height, width))
            self._cache[key] = m.to(device=device, dtype=dtype)
        return self._cache[key]

    def forward(self, points: torch.Tensor, height: int, width: int) -> torch.Tensor:
        m = self.matrix(height, width, points.device, points.dtype)  # HW x K
        grid = torch.matmul(m, points)  # B x HW x 2
        return grid.view(points.shape[0], height, width, 2)


class LocalisationNet(nn.Module):
    """Reads F and predicts, per channel group, displacements of the K control points.

    The last layer starts at zero, so the first warp is the identity (P = P')."""

    def __init__(self, channels: int, groups: int, num_points: int, hidden: int = 64) -> None:
        super().__init__()
        mid = max(16, min(hidden, channels))
        self.features = nn.Sequential(
            nn.Conv2d(channels, mid, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((2, 4)),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(mid * 8, hidden), nn.ReLU(inplace=True))
        self.out = nn.Linear(hidden, groups * num_points * 2)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.groups, self.num_points = groups, num_points

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        raw = self.out(self.fc(self.features(f)))
        return raw.view(f.shape[0], self.groups, self.num_points, 2)


class AFDM(nn.Module):
    """Adversarial Feature Deformation Module.

    ``forward(F)`` returns a warped tensor of F's shape. ``mode="adversarial"`` predicts
    control points with the localisation net; ``mode="random"`` draws displacements
    uniformly in [-max_shift, max_shift] (the same bound, no learning). Displacements
    are bounded by ``max_shift`` (tanh) so the adversary cannot erase the content.
    """

    def __init__(self, channels: int, groups: int = 4, rows: int = 3, cols: int = 3,
                 max_shift: float = 0.1, mode: str = "adversarial", hidden: int = 64) -> None:
        super().__init__()
        if mode not in ("adversarial", "random"):
            raise ValueError(f"mode={mode!r}; choose 'adversarial' or 'random'")
        if channels % groups:
            raise ValueError(f"channels={channels} is not divisible by groups={groups}")
        self.channels, self.groups, self.max_shift, self.mode = channels, groups, max_shift, mode
        self.grid = TPSGridGenerator(rows, cols)
        k = rows * cols
        self.loc = LocalisationNet(channels, groups, k, hidden) if mode == "adversarial" else None
        self.last_points: torch.Tensor | None = None  # for the warp explorer

    def displacements(self, f: torch.Tensor) -> torch.Tensor:
        """(B, groups, K, 2) control-point displacements, each within max_shift."""
        b = f.shape[0]
        k = self.grid.base.shape[0]
        if self.mode == "random":
            u = torch.rand(b, self.groups, k, 2, device=f.device, dtype=f.dtype)
            return (2 * u - 1) * self.max_shift
        return self.max_shift * torch.tanh(self.loc(f))

    def forward(self, f: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """Warp F. ``frozen=True`` computes the control points without autograd (the
        recognizer step: AFDM fixed, gradients still flow through the sampler to F)."""
        b, c, h, w = f.shape
        if frozen:
            with torch.no_grad():
                d = self.displacements(f)
        else:
            d = self.displacements(f)
        points = self.grid.base.to(f.dtype) + d  # B x G x K x 2
        self.last_points = points.detach()
        grid = self.grid(points.reshape(b * self.groups, -1, 2), h, w)
        grouped = f.reshape(b * self.groups, c // self.groups, h, w)
        warped = F.grid_sample(grouped, grid, mode="bilinear", padding_mode="zeros",
                               align_corners=True)
        return warped.view(b, c, h, w)
