"""A PyTorch twin of ssdit's SingleStreamDiT, for benchmarking only.

Written from the architecture's description (the seed's `SingleStreamDiTV2`
semantics, as pinned by `shared/fixtures/dit`), in plain eager PyTorch: the
way a PyTorch user would write this model, so that timing it against
`ssdit-model` compares frameworks, not algorithms. Module and parameter names
follow the checkpoint's state-dict names, so the fixture's weights load with
`load_state_dict(strict=True)`.

Shapes: latents `x [B, C, H, W]`, times `t [B]`, caption embeddings
`text [B, L, D_text]` (an all-zero caption row is the null/CFG embedding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

EPS = 1e-6
TIME_FEATURES = 256


@dataclass(frozen=True)
class TwinConfig:
    """The constructor arguments of the seed's model (its `config.json`)."""

    in_channels: int = 16
    patch_size: int = 2
    hidden_size: int = 768
    num_heads: int = 12
    depth: int = 16
    refiner_depth: int = 2
    text_embed_dim: int = 1152
    max_token_length: int = 128
    rope_base: float = 10_000.0
    dropout: float = 0.05

    @classmethod
    def from_json(cls, args: dict) -> "TwinConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(args) - known - {"gradient_checkpointing"}
        if unknown:
            raise ValueError(f"unknown model arguments: {sorted(unknown)}")
        return cls(**{k: v for k, v in args.items() if k in known})

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def ffn_hidden(self) -> int:
        # SwiGLU width: 2/3 of 4·hidden, rounded up to a multiple of 256.
        return -(-(8 * self.hidden_size // 3) // 256) * 256


class RMSNorm(nn.Module):
    """`weight · x / sqrt(mean(x²) + eps)` over the last axis."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.weight * (x * torch.rsqrt(x.square().mean(-1, keepdim=True) + EPS))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w3(F.silu(self.w1(x)) * self.w2(x))


class DepthwiseBias(nn.Module):
    """3×3 depthwise convolution over the image-token grid (`local_bias.conv`)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, tokens: Tensor, h: int, w: int) -> Tensor:
        b, n, c = tokens.shape
        grid = tokens.transpose(1, 2).reshape(b, c, h, w)
        return self.conv(grid).flatten(2).transpose(1, 2)


class SpectralFilter(nn.Module):
    """Global filter: rfft2 (ortho) over the grid, an MLP on each frequency's
    interleaved (re, im) channels, irfft2 back, scaled by tanh(gate)."""

    def __init__(self, dim: int):
        super().__init__()
        self.freq_mlp = nn.Sequential(
            nn.Linear(2 * dim, int(1.5 * dim)), nn.SiLU(), nn.Linear(int(1.5 * dim), 2 * dim)
        )
        self.gate = nn.Parameter(torch.full((1,), 0.1))

    def forward(self, tokens: Tensor, h: int, w: int) -> Tensor:
        b, n, c = tokens.shape
        dtype = tokens.dtype
        spectrum = torch.fft.rfft2(tokens.float().reshape(b, h, w, c), dim=(1, 2), norm="ortho")
        pairs = torch.view_as_real(spectrum)  # [B, h, wf, C, 2]
        mixed = self.freq_mlp(pairs.flatten(-2)).float().reshape(pairs.shape)
        back = torch.fft.irfft2(torch.view_as_complex(mixed.contiguous()), s=(h, w), dim=(1, 2), norm="ortho")
        return back.reshape(b, n, c).to(dtype) * torch.tanh(self.gate)


def rope_tables(h: int, w: int, head_dim: int, base: float, device) -> tuple[Tensor, Tensor]:
    """cos/sin `[h·w, head_dim/2]`: rows then columns, each over `head_dim/4` frequencies."""
    inv = 1.0 / base ** (torch.arange(0, head_dim, 4, device=device, dtype=torch.float32) / head_dim)
    rows = torch.arange(h, device=device).repeat_interleave(w)[:, None] * inv
    cols = torch.arange(w, device=device).repeat(h)[:, None] * inv
    angles = torch.cat([rows, cols], dim=-1)
    return angles.cos(), angles.sin()


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Half-split rotary embedding, in float32."""
    xf = x.float()
    a, b = xf.chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1).to(x.dtype)


class Attention(nn.Module):
    """The q/k/v/out projections and per-head QK RMSNorm shared by both block kinds."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        head_dim = dim // heads
        self.attention_norm_q = RMSNorm(head_dim)
        self.attention_norm_k = RMSNorm(head_dim)
        self.attention_q = nn.Linear(dim, dim, bias=False)
        self.attention_k = nn.Linear(dim, dim, bias=False)
        self.attention_v = nn.Linear(dim, dim, bias=False)
        self.attention_out = nn.Linear(dim, dim, bias=False)

    def attend(self, x: Tensor, rope: tuple[Tensor, Tensor] | None) -> Tensor:
        b, n, d = x.shape

        def heads(proj: nn.Linear) -> Tensor:
            return proj(x).view(b, n, self.heads, d // self.heads).transpose(1, 2)

        q = self.attention_norm_q(heads(self.attention_q))
        k = self.attention_norm_k(heads(self.attention_k))
        v = heads(self.attention_v)
        if rope is not None:
            cos, sin = rope
            text = n - cos.shape[0]
            q = torch.cat([q[:, :, :text], rotate(q[:, :, text:], cos, sin)], dim=2)
            k = torch.cat([k[:, :, :text], rotate(k[:, :, text:], cos, sin)], dim=2)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.attention_out(out.transpose(1, 2).reshape(b, n, d))


class FusionBlock(Attention):
    """adaLN-modulated block over `[text, image]` (text may be empty)."""

    def __init__(self, cfg: TwinConfig):
        super().__init__(cfg.hidden_size, cfg.num_heads)
        d = cfg.hidden_size
        self.attention_norm1 = RMSNorm(d)
        self.ffn_norm1 = RMSNorm(d)
        self.feed_forward = SwiGLU(d, cfg.ffn_hidden)
        self.fourier_filter = SpectralFilter(d)
        self.fourier_norm = RMSNorm(d)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.local_bias = DepthwiseBias(d)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, c: Tensor, rope: tuple[Tensor, Tensor], h: int, w: int) -> Tensor:
        text = x.shape[1] - h * w
        mods = self.adaLN_modulation(c)[:, None, :].chunk(6, dim=-1)
        shift_a, scale_a, gate_a, shift_f, scale_f, gate_f = mods
        attn_in = self.attention_norm1(x) * (1 + scale_a) + shift_a
        x = x + gate_a.tanh() * self.dropout(self.attend(attn_in, rope))
        image = x[:, text:]
        x = torch.cat([x[:, :text], image + self.local_bias(image, h, w)], dim=1)
        ffn_in = self.ffn_norm1(x) * (1 + scale_f) + shift_f
        ffn = self.feed_forward(ffn_in)
        spectral = self.fourier_filter(self.fourier_norm(ffn_in[:, text:]), h, w)
        ffn = torch.cat([ffn[:, :text], ffn[:, text:] + spectral], dim=1)
        return x + gate_f.tanh() * self.dropout(ffn)


class TextBlock(Attention):
    """Plain pre-norm attention + SwiGLU over the caption tokens."""

    def __init__(self, cfg: TwinConfig):
        super().__init__(cfg.hidden_size, cfg.num_heads)
        self.attention_norm1 = RMSNorm(cfg.hidden_size)
        self.ffn_norm1 = RMSNorm(cfg.hidden_size)
        self.feed_forward = SwiGLU(cfg.hidden_size, cfg.ffn_hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attend(self.attention_norm1(x), None)
        return x + self.feed_forward(self.ffn_norm1(x))


def time_features(t: Tensor) -> Tensor:
    half = TIME_FEATURES // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class TwinDiT(nn.Module):
    """The single-stream DiT with global Fourier filters."""

    def __init__(self, cfg: TwinConfig, checkpointing: bool = False):
        super().__init__()
        self.cfg = cfg
        self.checkpointing = checkpointing
        d, p = cfg.hidden_size, cfg.patch_size
        patch = cfg.in_channels * p * p
        self.x_embedder = nn.Linear(patch, d)
        self.cap_embedder = nn.Sequential(RMSNorm(cfg.text_embed_dim), nn.Linear(cfg.text_embed_dim, d))
        self.text_pos_embed = nn.Parameter(torch.randn(1, cfg.max_token_length, d) * 0.02)
        self.x_pad_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.cap_pad_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.t_embedder = nn.Sequential(nn.Linear(TIME_FEATURES, d), nn.SiLU(), nn.Linear(d, d))
        self.noise_refiner = nn.ModuleList(FusionBlock(cfg) for _ in range(cfg.refiner_depth))
        self.context_refiner = nn.ModuleList(TextBlock(cfg) for _ in range(cfg.refiner_depth))
        self.blocks = nn.ModuleList(FusionBlock(cfg) for _ in range(cfg.depth))
        self.final_norm = RMSNorm(d)
        self.final_layer = nn.Linear(d, patch)
        self._rope: dict = {}

    def rope(self, h: int, w: int, device) -> tuple[Tensor, Tensor]:
        key = (h, w, str(device))
        if key not in self._rope:
            self._rope[key] = rope_tables(h, w, self.cfg.head_dim, self.cfg.rope_base, device)
        return self._rope[key]

    def _run(self, block: nn.Module, *args) -> Tensor:
        if self.checkpointing and self.training:
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def forward(self, x: Tensor, t: Tensor, text: Tensor) -> Tensor:
        b, c, height, width = x.shape
        p = self.cfg.patch_size
        h, w = height // p, width // p
        tokens = x.reshape(b, c, h, p, w, p).permute(0, 2, 4, 1, 3, 5).reshape(b, h * w, c * p * p)
        image = self.x_embedder(tokens)

        null = text.abs().sum(dim=(1, 2)) == 0
        context = self.cap_embedder(text)
        context = torch.where(null[:, None, None], self.cap_pad_token.to(context.dtype), context)
        context = context + self.text_pos_embed[:, : text.shape[1]]

        cond = self.t_embedder(time_features(t).to(image.dtype))
        rope = self.rope(h, w, x.device)
        for block in self.noise_refiner:
            image = self._run(block, image, cond, rope, h, w)
        for block in self.context_refiner:
            context = self._run(block, context)
        joint = torch.cat([context, image], dim=1)
        for block in self.blocks:
            joint = self._run(block, joint, cond, rope, h, w)

        out = self.final_layer(self.final_norm(joint[:, -h * w :]))
        return out.reshape(b, h, w, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, height, width)
