"""Flow matching for the twin: one training step and the Euler/RK4 samplers
with classifier-free guidance, as ssdit-flow and ssdit-optim define them.

- path: `x_t = (1 − t)·noise + t·x1`, target velocity `x1 − noise`;
- step: MSE loss, backward, global grad-norm clip, `torch.optim.AdamW`;
- sampling: `t_i = i/steps`, CFG `v_u + s·(v_c − v_u)` with both branches in
  one batched forward (`[uncond; cond]`), the null caption all zeros.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def autocast(device: torch.device, dtype: torch.dtype | None):
    """bf16 autocast on a GPU when asked for; a no-op otherwise."""
    if dtype is None or dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x1: Tensor,
    noise: Tensor,
    t: Tensor,
    text: Tensor,
    clip: float = 1.0,
    amp: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """One optimizer step; returns (loss, gradient norm before clipping)."""
    tb = t.view(-1, 1, 1, 1)
    x_t = (1 - tb) * noise + tb * x1
    with autocast(x1.device, amp):
        prediction = model(x_t, t, text)
    loss = F.mse_loss(prediction.float(), x1 - noise)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss.detach(), norm


def guided_velocity(model: nn.Module, x: Tensor, t: Tensor, texts: Tensor, scale: float) -> Tensor:
    """CFG velocity; `texts` is `[uncond; cond]` (2B rows), one forward pass."""
    v = model(torch.cat([x, x]), torch.cat([t, t]), texts)
    uncond, cond = v.chunk(2)
    return uncond + scale * (cond - uncond)


@torch.no_grad()
def sample(
    model: nn.Module,
    noise: Tensor,
    cond: Tensor,
    steps: int = 50,
    scale: float = 3.0,
    method: str = "euler",
    amp: torch.dtype | None = None,
) -> Tensor:
    """Integrates from `noise` at t = 0 to t = 1 (Euler, or classic RK4)."""
    texts = torch.cat([torch.zeros_like(cond), cond])
    x = noise
    b = x.shape[0]
    dt = 1.0 / steps
    with autocast(x.device, amp):
        for i in range(steps):
            t0 = i / steps

            def v(at: Tensor, time: float) -> Tensor:
                return guided_velocity(model, at, torch.full((b,), time, device=x.device), texts, scale).float()

            if method == "euler":
                x = x + dt * v(x, t0)
            elif method == "rk4":
                k1 = v(x, t0)
                k2 = v(x + 0.5 * dt * k1, t0 + 0.5 * dt)
                k3 = v(x + 0.5 * dt * k2, t0 + 0.5 * dt)
                k4 = v(x + dt * k3, t0 + dt)
                x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            else:
                raise ValueError(f"unknown sampler method {method!r}: expected euler or rk4")
    return x
