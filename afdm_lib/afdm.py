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

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


def tps_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """U(|a_i - b_j|) = r^2 log r^2 for point sets a (..., N, 2) and b (K, 2): shape
    (..., N, K); U(0) = 0."""
    r2 = (a[..., :, None, :] - b[None, :, :]).pow(2).sum(-1)
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


def regular_grid(rows: int, cols: int, dtype=torch.float64) -> torch.Tensor:
    """A regular rows x cols grid of (x, y) points spanning [-1, 1]^2, row by row: shape
    (rows x cols, 2). The base control points P' (rows x cols of them) and the output
    pixels (in grid_sample's align_corners=True coordinates) are both such grids."""
    ys = torch.linspace(-1.0, 1.0, rows, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, cols, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)


class TPSGridGenerator(nn.Module):
    """Maps target control points P (N, K, 2) to a sampling grid S (N, H, W, 2).

    ``scale`` (N,) makes the spline per word: sample n's control points span only its own
    valid columns, x in [-1, -1 + 2 * scale[n]] of the padded map, so a warp bites the same
    on a narrow word as on the widest one in its batch (scale 1 = the whole map)."""

    def __init__(self, rows: int = 3, cols: int = 3) -> None:
        super().__init__()
        self.register_buffer("base", regular_grid(rows, cols).float())  # P'
        # L^-1 restricted to the columns that multiply P (the zero rows of [P; 0] drop out)
        self.register_buffer("inverse", tps_inverse(regular_grid(rows, cols))
                             [:, : rows * cols].float(), persistent=False)
        self._cache: dict[tuple, torch.Tensor] = {}

    def pixels(self, height: int, width: int, device, dtype) -> torch.Tensor:
        """The output pixels as a regular grid (HW x 2) on ``device``, cached: built on
        the host, a fresh copy per forward would be a host-device copy every step."""
        key = ("pixels", height, width, str(device), dtype)
        if key not in self._cache:
            self._cache[key] = regular_grid(height, width, dtype=dtype).to(device)
        return self._cache[key]

    def matrix(self, height: int, width: int, device, dtype) -> torch.Tensor:
        key = ("matrix", height, width, str(device), dtype)
        if key not in self._cache:
            m = tps_matrix(self.base.double().cpu(), regular_grid(height, width))
            self._cache[key] = m.to(device=device, dtype=dtype)
        return self._cache[key]

    def forward(self, points: torch.Tensor, height: int, width: int,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        if scale is None:
            m = self.matrix(height, width, points.device, points.dtype)  # HW x K
            grid = torch.matmul(m, points)  # N x HW x 2
            return grid.view(points.shape[0], height, width, 2)
        # per-word spline: the output pixels in each word's own coordinates
        out = self.pixels(height, width, points.device, points.dtype)  # HW x 2
        s = scale.to(points.dtype).clamp_min(1e-3)[:, None]  # N x 1
        xw = (out[None, :, 0] + 1) / s - 1  # N x HW
        pts = torch.stack([xw, out[None, :, 1].expand_as(xw)], dim=-1)  # N x HW x 2
        u = tps_kernel(pts, self.base.to(points.dtype))  # N x HW x K
        phi = torch.cat([u, torch.ones_like(xw)[..., None], pts], dim=-1)  # N x HW x K+3
        m = phi @ self.inverse.to(points.dtype)  # N x HW x K
        grid = m @ points  # word coordinates
        gx = -1 + (grid[..., 0] + 1) * s  # back to the padded map's coordinates
        return torch.stack([gx, grid[..., 1]], dim=-1).view(points.shape[0], height, width, 2)


class LocalisationNet(nn.Module):
    """Reads F and predicts, per channel group, raw (pre-tanh) displacements of the K
    control points. The last layer starts at zero, so the first warp is the identity.
    ``bias=False``: no input-independent path to the output (no output bias, and with
    ``norm`` a BatchNorm without scale and shift), so the warp cannot become one
    constant warp for every word. ``leak``: the negative slope of its rectifiers (0 = ReLU;
    a slope keeps units that are negative for every word trainable)."""

    def __init__(self, channels: int, groups: int, num_points: int, hidden: int = 64,
                 norm: bool = False, bias: bool = True, leak: float = 0.0) -> None:
        super().__init__()
        mid = max(16, min(hidden, channels))
        # slope 0 is exactly ReLU (values and gradients); no parameters either way
        self.features = nn.Sequential(
            nn.Conv2d(channels, mid, 3, padding=1), nn.LeakyReLU(leak, inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1), nn.LeakyReLU(leak, inplace=True),
            nn.AdaptiveAvgPool2d((2, 4)),
        )
        self.act = nn.LeakyReLU(leak)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(mid * 8, hidden))
        # norm: BatchNorm of the hidden layer, so every hidden unit varies over the batch
        # at unit scale. Without it the hidden activations barely differ between words
        # and the output bias (one warp for all) learns far faster than the weights
        self.norm = nn.BatchNorm1d(hidden, affine=bias) if norm else None
        self.out = nn.Linear(hidden, groups * num_points * 2, bias=bias)
        nn.init.zeros_(self.out.weight)
        if bias:
            nn.init.zeros_(self.out.bias)
        self.groups, self.num_points = groups, num_points

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.features(f))
        if self.norm is not None and self.training and h.shape[0] == 1:
            n = self.norm  # a batch of one has no batch statistics: use the running ones
            h = F.batch_norm(h, n.running_mean, n.running_var, n.weight, n.bias, False, 0.0, n.eps)
        elif self.norm is not None:
            h = self.norm(h)
        raw = self.out(self.act(h))
        return raw.view(f.shape[0], self.groups, self.num_points, 2)


@contextmanager
def training_statistics(module: AFDM) -> Iterator[None]:
    """Inside: the localisation net's BatchNorm (``afdm_loc_norm``) normalises with the
    batch's own statistics, as in every warp the recognizer trains on, even with the
    module in eval mode; its running statistics are neither read nor updated (a batch of
    one, which has no batch statistics, still reads them). Outside, as before.

    Why: the AFDM is only ever used in training mode, and the running statistics lag a
    fast adversary; read with them, a probe showed saturated constant warps that training
    never used (Devanagari digits, 1000 words: diversity 0 at 5 of 31 points)."""
    loc = getattr(module, "loc", None)
    norm = loc.norm if loc is not None else None
    if norm is None:
        yield
        return
    was_training, was_tracking = norm.training, norm.track_running_stats
    norm.train()
    norm.track_running_stats = False
    try:
        yield
    finally:
        norm.train(was_training)
        norm.track_running_stats = was_tracking


RANDOM_SHIFTS = ("uniform", "sign")


class AFDM(nn.Module):
    """Adversarial Feature Deformation Module.

    Shapes: ``forward(f)`` takes a feature map f of shape (B, C, H, W), ``C = channels``,
    any H, W >= 2, and returns the warped map F' of the same shape (and dtype). Its
    channels are split into ``groups`` of C / groups, each warped by its own thin-plate
    spline through a ``rows`` x ``cols`` grid of control points (K = rows * cols), moved by
    at most ``max_shift`` (normalised coordinates: 1.0 is half the map). After a forward,
    ``last_points`` (B, groups, K, 2) holds the control points and ``last_grid``
    (B * groups, H, W, 2) the sampling grid; ``grid.base`` (K, 2) the base points.

    The defaults are this study's anti-collapse settings (``RunConfig``: afdm_loc_norm,
    afdm_loc_bias, afdm_loc_leak; the study's trainer passes every option explicitly):
    ``loc_norm=True`` BatchNorm on the localisation net's hidden layer, ``loc_bias=False``
    no input-independent parameters (so the warp cannot collapse into one warp for every
    word), ``loc_leak=0.1`` leaky rectifiers (units negative for every word stay
    trainable). Without them a fast adversary froze into one constant saturated warp in
    the study's runs. :meth:`random_twin` gives the ``random`` control of the same bound.

    ``forward(F)`` returns a warped tensor of F's shape. ``mode="adversarial"`` predicts
    control points with the localisation net: d = max_shift * tanh(raw + noise), where
    ``noise`` ~ N(0, noise^2) per sample is drawn only in training mode (the anti-collapse
    setting, see ``RunConfig.afdm_noise``). ``mode="random"`` draws displacements without
    learning (``random_shift``): ``"uniform"`` in [-max_shift, max_shift] per coordinate
    (mean |d| = max_shift / 2), or ``"sign"``: a random sign times ``random_scale *
    max_shift`` (mean |d| = random_scale * max_shift, set to what the adversary realises).

    The warp runs in fp32 whatever the autocast (bf16 bilinear sampling corrupts features
    even at zero shift). With ``valid`` (each sample's number of valid columns) every word
    is warped over its own width only: its spline spans its own columns, sampling never
    reads past them (coordinates are clamped to the word: ``last_clamped`` counts how
    often), and the padding columns are passed through unchanged.
    """

    def __init__(self, channels: int, groups: int = 4, rows: int = 3, cols: int = 3,
                 max_shift: float = 0.1, mode: str = "adversarial", hidden: int = 64,
                 noise: float = 0.0, random_shift: str = "uniform",
                 random_scale: float = 1.0, loc_norm: bool = True,
                 loc_bias: bool = False, loc_leak: float = 0.1) -> None:
        super().__init__()
        if mode not in ("adversarial", "random"):
            raise ValueError(f"mode={mode!r}; choose 'adversarial' or 'random'")
        if channels % groups:
            raise ValueError(f"channels={channels} is not divisible by groups={groups}")
        if random_shift not in RANDOM_SHIFTS:
            raise ValueError(f"random_shift={random_shift!r}; choose one of {list(RANDOM_SHIFTS)}")
        self.channels, self.groups, self.max_shift, self.mode = channels, groups, max_shift, mode
        self.rows, self.cols = rows, cols
        self.noise, self.random_shift, self.random_scale = noise, random_shift, random_scale
        self.grid = TPSGridGenerator(rows, cols)
        k = rows * cols
        self.loc = (LocalisationNet(channels, groups, k, hidden, loc_norm, loc_bias, loc_leak)
                    if mode == "adversarial" else None)
        self.generator: torch.Generator | None = None  # random draws; None = global RNG
        # what the last forward did, for the trainer's penalty, probe and records
        self.last_points: torch.Tensor | None = None
        self.last_raw: torch.Tensor | None = None  # pre-tanh outputs (with autograd)
        self.last_grid: torch.Tensor | None = None  # sampling grid S, (B x G) x H x W x 2
        # a tensor on the device (reading it is a host-device sync: the probe does)
        self.last_clamped: torch.Tensor | float = 0.0

    def random_twin(self, random_shift: str = "uniform", random_scale: float = 1.0,
                    max_shift: float | None = None, seed: int | None = None) -> AFDM:
        """A random-mode module with this one's channels, groups, control points and
        bound (or ``max_shift``): the ``random`` control. ``seed`` gives it a generator of
        its own."""
        twin = AFDM(self.channels, self.groups, self.rows, self.cols,
                    self.max_shift if max_shift is None else max_shift, mode="random",
                    random_shift=random_shift, random_scale=random_scale
                    ).to(self.grid.base.device)
        if seed is not None:
            twin.generator = torch.Generator().manual_seed(seed)
        return twin

    def _rand(self, shape: tuple, device) -> torch.Tensor:
        gen = self.generator
        if gen is not None and gen.device != torch.device(device):
            return torch.rand(shape, generator=gen).to(device, non_blocking=True)
        return torch.rand(shape, generator=gen, device=device)

    def _randn(self, shape: tuple, device) -> torch.Tensor:
        gen = self.generator
        if gen is not None and gen.device != torch.device(device):
            return torch.randn(shape, generator=gen).to(device, non_blocking=True)
        return torch.randn(shape, generator=gen, device=device)

    def displacements(self, f: torch.Tensor) -> torch.Tensor:
        """(B, groups, K, 2) control-point displacements, each within max_shift."""
        b = f.shape[0]
        shape = (b, self.groups, self.grid.base.shape[0], 2)
        if self.mode == "random":
            u = self._rand(shape, f.device)
            if self.random_shift == "sign":
                return torch.where(u < 0.5, -1.0, 1.0) * (self.random_scale * self.max_shift)
            return (2 * u - 1) * self.max_shift
        raw = self.loc(f)
        self.last_raw = raw
        if self.training and self.noise > 0:
            raw = raw + self.noise * self._randn(shape, f.device)
        return self.max_shift * torch.tanh(raw)

    def forward(self, f: torch.Tensor, frozen: bool = False,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        """Warp F. ``frozen=True`` computes the control points without autograd (the
        recognizer step: AFDM fixed, gradients still flow through the sampler to F).
        ``valid`` (B,) holds each sample's number of valid (unpadded) columns of F."""
        b, c, h, w = f.shape
        with torch.autocast(f.device.type, enabled=False):
            f32 = f.float()
            if frozen:
                with torch.no_grad():
                    d = self.displacements(f32)
            else:
                d = self.displacements(f32)
            points = self.grid.base + d  # B x G x K x 2
            self.last_points = points.detach()
            scale = None
            if valid is not None:
                cols = valid.to(f.device).clamp(2, w)
                scale = ((cols - 1) / max(w - 1, 1)).float().repeat_interleave(self.groups)
            grid = self.grid(points.reshape(b * self.groups, -1, 2), h, w, scale)
            self.last_grid = grid.detach()
            # sampling stays inside the word (x) and the map (y): nothing is read from
            # padding; the fraction of coordinates that had to be pulled back is recorded
            if scale is None:
                lo_x = torch.full((b * self.groups,), -1.0, device=f.device)
                hi_x = torch.ones_like(lo_x)
            else:
                lo_x, hi_x = torch.full_like(scale, -1.0), -1 + 2 * scale
            gx, gy = grid[..., 0], grid[..., 1]
            outside = ((gx < lo_x[:, None, None] - 1e-6) | (gx > hi_x[:, None, None] + 1e-6)
                       | (gy.abs() > 1 + 1e-6))
            if valid is not None:  # count only the word's own columns, not its padding
                inside = (torch.arange(w, device=f.device)[None, :]
                          < valid.to(f.device)[:, None]).repeat_interleave(self.groups, 0)
                outside = outside & inside[:, None, :]
                self.last_clamped = outside.sum() / (inside.sum() * h).clamp_min(1)
            else:
                self.last_clamped = outside.float().mean()
            gx = torch.maximum(torch.minimum(gx, hi_x[:, None, None]), lo_x[:, None, None])
            grid = torch.stack([gx, gy.clamp(-1, 1)], dim=-1)
            grouped = f32.reshape(b * self.groups, c // self.groups, h, w)
            warped = F.grid_sample(grouped, grid, mode="bilinear", padding_mode="zeros",
                                   align_corners=True).view(b, c, h, w)
            if valid is not None:  # padding columns pass through untouched
                inside = torch.arange(w, device=f.device)[None, :] < valid.to(f.device)[:, None]
                warped = torch.where(inside[:, None, None, :], warped, f32)
        return warped.to(f.dtype)
