"""Times the PyTorch twin the way `ssdit bench dit` times ssdit, in its own
process, and prints one JSON object on stdout (the last line).

`ssdit bench dit` runs this with the same model sizes, batch, thread count
and device it gives its own worker; run by hand:

    OMP_NUM_THREADS=2 python bench/reference/bench_worker.py --hidden 384 --heads 6 \
        --depth 6 --refiner-depth 2 --text-dim 1152 --text-tokens 64 --latent 32 \
        --batch 4 --threads 2

Measured: forward (no grad, eval), one training step (forward, MSE, backward,
clip 1.0, `torch.optim.AdamW`), and a 50-step Euler sample of one image with
CFG (one batched forward of both branches per step); each after a warm-up.
Peak memory is this process' VmHWM, and on a GPU the memory in use there
(the driver's total − free, highest after any timed run), as our side reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ssdit_twin import TwinConfig, TwinDiT, sample, train_step  # noqa: E402


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--refiner-depth", type=int, required=True)
    p.add_argument("--text-dim", type=int, required=True)
    p.add_argument("--text-tokens", type=int, required=True)
    p.add_argument("--latent", type=int, required=True, help="latent side (tokens per side × patch 2)")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--dropout", type=float, default=0.05)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    p.add_argument("--iters", type=int, default=5, help="timed forward and training-step iterations")
    p.add_argument("--sample-iters", type=int, default=2, help="timed sampling runs")
    p.add_argument("--steps", type=int, default=50, help="Euler steps per sample")
    p.add_argument("--cfg", type=float, default=3.0)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--checkpointing", action="store_true", help="gradient checkpointing per block")
    p.add_argument("--skip", default="", help="comma-separated phases to skip: forward,train,sample")
    return p.parse_args()


def vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class GpuMemory:
    """The GPU's memory in use, highest reading: the driver's total − free,
    every process's (the caching allocator's reserve and the CUDA context
    included), read as ssdit's side reads it (`ssdit_core::gpu_memory_in_use`)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = None

    def read(self) -> None:
        if self.device.type == "cuda":
            free, total = torch.cuda.mem_get_info(self.device)
            self.peak = max(self.peak or 0, total - free)


def timed(device: torch.device, memory: GpuMemory, iters: int, run, warmup=None) -> list[float]:
    """Milliseconds of `iters` runs after one warm-up (`warmup`, or one run);
    the GPU's memory is read after each."""
    (warmup or run)()
    sync(device)
    memory.read()
    out = []
    for _ in range(iters):
        start = time.perf_counter()
        run()
        sync(device)
        out.append((time.perf_counter() - start) * 1e3)
        memory.read()
    return out


def main() -> int:
    args = parse()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if device.type == "cuda":
        # f32 matmuls on the TF32 tensor cores, as burn's CUDA backend takes
        # them (cubek's accelerated matmul strategies read f32 as TF32):
        # like for like in the f32 rows.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    amp = torch.bfloat16 if args.dtype == "bf16" else None
    skip = set(filter(None, args.skip.split(",")))
    cfg = TwinConfig(
        hidden_size=args.hidden,
        num_heads=args.heads,
        depth=args.depth,
        refiner_depth=args.refiner_depth,
        text_embed_dim=args.text_dim,
        max_token_length=args.text_tokens,
        dropout=args.dropout,
    )
    model = TwinDiT(cfg, checkpointing=args.checkpointing).to(device)
    b, side = args.batch, args.latent
    x1 = torch.randn(b, cfg.in_channels, side, side, device=device)
    noise = torch.randn_like(x1)
    t = torch.rand(b, device=device)
    text = torch.randn(b, args.text_tokens, args.text_dim, device=device)
    memory = GpuMemory(device)
    result: dict = {
        "side": "pytorch",
        "runtime": f"torch {torch.__version__} eager, {torch.get_num_threads()} threads"
        + (", TF32 matmuls" if device.type == "cuda" else ""),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "forward_ms": [],
        "train_ms": [],
        "sample_ms": [],
    }

    if "forward" not in skip:
        model.eval()

        def forward():
            with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=amp is not None):
                model(x1, t, text)

        result["forward_ms"] = timed(device, memory, args.iters, forward)

    if "train" not in skip:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
        result["train_ms"] = timed(
            device, memory, args.iters, lambda: train_step(model, optimizer, x1, noise, t, text, amp=amp)
        )
        del optimizer

    if "sample" not in skip:
        model.eval()
        start = torch.randn(1, cfg.in_channels, side, side, device=device)
        cond = text[:1]
        result["sample_ms"] = timed(
            device,
            memory,
            args.sample_iters,
            lambda: sample(model, start, cond, args.steps, args.cfg, amp=amp),
            warmup=lambda: sample(model, start, cond, 2, args.cfg, amp=amp),
        )

    result["peak_rss_kib"] = vm_hwm_kib()
    result["gpu_peak_bytes"] = memory.peak
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
