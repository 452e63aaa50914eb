"""Makes the seed-format PyTorch files the ssdit-import and ssdit-inspect tests read.

Run once, with PyTorch, numpy and safetensors installed (all on PyPI):

    python make_fixtures.py --seed-ref /path/to/the/seed/checkout

The files it writes are committed, so the tests never need PyTorch. Everything is
seeded: running it again writes the same values.

What it writes, beside this script:

cache/         the seed's `cached_data/` layout, one `torch.save`d dict per sample, exactly
               as its preprocess.py saves them ({"latents": [16,h,w], "text_embeds": [L,D],
               "width": int, "height": int}):
                 flower_a.pt  bfloat16, 48x32 bucket (latents [16,4,6])
                 flower_b.pt  float32, 32x48 bucket (latents [16,6,4])
                 flower_c.pt  bfloat16, 32x32 bucket, text_embeds saved as a transposed
                              (non-contiguous) view
               and files the importer must reject:
                 truncated.pt    the first half of flower_a.pt
                 not_a_zip.pt    plain text
                 wrong_keys.pt   "latent" instead of "latents"
                 wrong_shape.pt  latents [16,5,6] for a 48x32 bucket
                 bad_height.pt   height stored as the string "32"
                 nan.pt          latents holding a NaN
captions/      flower_a.txt, flower_b.caption: sidecar captions as in the seed's dataset/
checkpoints/   the seed's train.py outputs for a small SingleStreamDiTV2 (config.json):
                 ema_weights_epoch_3.pt  ema_model.module.state_dict() (torch.compile'd
                                         model, so names carry `_orig_mod.`)
                 full_state_epoch_3.pt   epoch, global_step, model/ema state dicts, the
                                         state dict of torch.optim.AdamW after one step,
                                         and a cosine-with-warmup LambdaLR's state dict
                 full_state_8bit.pt      the same with an optimizer state in
                                         bitsandbytes AdamW8bit's layout (state1/state2,
                                         qmap1/qmap2, absmax1/absmax2 per parameter),
                                         written with torch tensors since bitsandbytes
                                         needs a GPU
expected.safetensors   every value the tests compare, as float32:
                 cache.<file>.latents / cache.<file>.text_embeds,
                 model.<name> / ema.<name> (seed names without `_orig_mod.`),
                 exp_avg.<name> / exp_avg_sq.<name>
expected.json  heights and widths, the parameter order, AdamW steps and
               hyper-parameters, and numpy's latent statistics over the three good samples:
               per-channel mean and std (ddof=0) of every latent value pooled, their
               overall mean and std, and the seed's calculate_cache_statistics.py numbers
               (mean of per-file means, mean of per-file torch .std(), which is ddof=1)
ssim.safetensors / ssim.json   two 24x20 RGB images and their PSNR and luma SSIM
               (11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, data range 1,
               valid region), computed here with numpy
"""

import argparse
import functools
import json
import math
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))

# The small DiT: the seed's constructor arguments (rope_base is fixed by its Config).
DIT_CONFIG = {
    "in_channels": 16,
    "patch_size": 2,
    "hidden_size": 16,
    "num_heads": 2,
    "depth": 1,
    "refiner_depth": 1,
    "text_embed_dim": 16,
    "max_token_length": 8,
    "rope_base": 10000,
    "dropout": 0.0,
}
TEXT_TOKENS = 8
TEXT_DIM = 16


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def sample(generator, width, height, dtype):
    latents = torch.randn(16, height // 8, width // 8, generator=generator) * 1.3 + 0.2
    embeds = torch.randn(TEXT_TOKENS, TEXT_DIM, generator=generator)
    return {
        "latents": latents.to(dtype),
        "text_embeds": embeds.to(dtype),
        "width": width,
        "height": height,
    }


def make_cache(expected, info):
    cache = os.path.join(HERE, "cache")
    captions = os.path.join(HERE, "captions")
    os.makedirs(cache, exist_ok=True)
    os.makedirs(captions, exist_ok=True)
    g = torch.Generator().manual_seed(1234)

    good = {
        "flower_a": sample(g, 48, 32, torch.bfloat16),
        "flower_b": sample(g, 32, 48, torch.float32),
        "flower_c": sample(g, 32, 32, torch.bfloat16),
    }
    # A non-contiguous tensor: text_embeds saved as the transpose of a [D, L] tensor.
    transposed = torch.randn(TEXT_DIM, TEXT_TOKENS, generator=g).to(torch.bfloat16)
    good["flower_c"]["text_embeds"] = transposed.t()
    assert not good["flower_c"]["text_embeds"].is_contiguous()

    info["cache"] = {}
    for name, data in good.items():
        torch.save(data, os.path.join(cache, name + ".pt"))
        expected[f"cache.{name}.pt.latents"] = data["latents"].float().numpy()
        expected[f"cache.{name}.pt.text_embeds"] = data["text_embeds"].float().contiguous().numpy()
        info["cache"][name + ".pt"] = {"height": data["height"], "width": data["width"]}

    with open(os.path.join(captions, "flower_a.txt"), "w") as f:
        f.write("a pink rose with dew drops on its petals\n")
    with open(os.path.join(captions, "flower_b.caption"), "w") as f:
        f.write("a tall sunflower against a blue sky")

    with open(os.path.join(cache, "flower_a.pt"), "rb") as f:
        full = f.read()
    write(os.path.join(cache, "truncated.pt"), full[: len(full) // 2])
    write(os.path.join(cache, "not_a_zip.pt"), b"this is a caption, not a checkpoint\n")
    wrong_keys = sample(g, 48, 32, torch.bfloat16)
    wrong_keys["latent"] = wrong_keys.pop("latents")
    torch.save(wrong_keys, os.path.join(cache, "wrong_keys.pt"))
    wrong_shape = sample(g, 48, 32, torch.bfloat16)
    wrong_shape["latents"] = torch.randn(16, 5, 6, generator=g).to(torch.bfloat16)
    torch.save(wrong_shape, os.path.join(cache, "wrong_shape.pt"))
    bad_height = sample(g, 48, 32, torch.bfloat16)
    bad_height["height"] = "32"
    torch.save(bad_height, os.path.join(cache, "bad_height.pt"))
    nan = sample(g, 48, 32, torch.float32)
    nan["latents"][3, 1, 2] = float("nan")
    torch.save(nan, os.path.join(cache, "nan.pt"))

    # numpy's statistics of the good samples' latents.
    latents = [good[n]["latents"].float().numpy().astype(np.float64) for n in sorted(good)]
    pooled = np.concatenate([l.reshape(16, -1) for l in latents], axis=1)
    info["stats"] = {
        "samples": len(latents),
        "channel_mean": pooled.mean(axis=1).tolist(),
        "channel_std": pooled.std(axis=1).tolist(),
        "mean": float(pooled.mean()),
        "std": float(pooled.std()),
        "seed_mean": float(np.mean([l.mean() for l in latents])),
        "seed_std": float(np.mean([l.std(ddof=1) for l in latents])),
    }


def cosine_with_warmup(step, warmup, total):
    """transformers' get_cosine_schedule_with_warmup lambda (a module-level function
    wrapped in functools.partial, so the scheduler's state dict has the same layout)."""
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def make_checkpoints(expected, info, seed_ref):
    sys.path.insert(0, seed_ref)
    from model import SingleStreamDiTV2
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    out = os.path.join(HERE, "checkpoints")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(DIT_CONFIG, f, indent=2)

    torch.manual_seed(7)
    args = {k: v for k, v in DIT_CONFIG.items() if k != "rope_base"}
    model = SingleStreamDiTV2(gradient_checkpointing=False, **args)
    # Non-trivial values everywhere (the seed zero-initialises some tensors).
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    # The seed compiles its model on Linux; wrapping is enough for the names.
    model = torch.compile(model)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))

    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(cosine_with_warmup, warmup=2, total=40)
    )
    # One training step on random data, with a parameter left without gradient
    # (x_pad_token is never used in the forward pass, so AdamW keeps no state for it).
    x1 = torch.randn(2, 16, 4, 6)
    noise = torch.randn_like(x1)
    t = torch.rand(2)
    text = torch.randn(2, TEXT_TOKENS, TEXT_DIM)
    xt = (1 - t.view(-1, 1, 1, 1)) * noise + t.view(-1, 1, 1, 1) * x1
    v = model._orig_mod(xt, t, text)
    loss = torch.nn.functional.mse_loss(v, x1 - noise)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    ema.update_parameters(model)
    ema.update_parameters(model)

    model_state = model.state_dict()
    ema_state = ema.module.state_dict()
    assert all(k.startswith("_orig_mod.") for k in model_state)
    torch.save(ema_state, os.path.join(out, "ema_weights_epoch_3.pt"))
    full = {
        "epoch": 3,
        "global_step": 12,
        "model_state_dict": model_state,
        "ema_state_dict": ema_state,
        "optimizer_state_dict": optimizer.state_dict(),
        "scheduler_state_dict": scheduler.state_dict(),
    }
    torch.save(full, os.path.join(out, "full_state_epoch_3.pt"))

    names = [k[len("_orig_mod."):] for k in model_state]
    params = dict(model._orig_mod.named_parameters())
    assert names == list(params), "state dict order is the parameter order (no buffers)"
    for name in names:
        expected[f"model.{name}"] = model_state["_orig_mod." + name].float().numpy()
        expected[f"ema.{name}"] = ema_state["_orig_mod." + name].float().numpy()
    opt = optimizer.state_dict()
    steps = {}
    for index, name in enumerate(names):
        state = opt["state"].get(index)
        if state is None:
            continue
        expected[f"exp_avg.{name}"] = state["exp_avg"].numpy()
        expected[f"exp_avg_sq.{name}"] = state["exp_avg_sq"].numpy()
        steps[name] = int(state["step"].item())
    group = opt["param_groups"][0]
    info["checkpoint"] = {
        "config": DIT_CONFIG,
        "epoch": 3,
        "global_step": 12,
        "parameter_order": names,
        "without_state": [n for n in names if n not in steps],
        "steps": steps,
        "lr": group["lr"],
        "betas": list(group["betas"]),
        "eps": group["eps"],
        "weight_decay": group["weight_decay"],
        "scheduler_last_epoch": scheduler.state_dict()["last_epoch"],
    }

    # bitsandbytes AdamW8bit's state layout: blockwise 8-bit for tensors of at least
    # 4096 elements, 32-bit state1/state2 below.
    state8 = {}
    for index, name in enumerate(names):
        p = params[name]
        if p.numel() >= 4096:
            blocks = (p.numel() + 255) // 256
            state8[index] = {
                "step": 1,
                "state1": torch.randint(0, 255, p.shape, dtype=torch.uint8),
                "state2": torch.randint(0, 255, p.shape, dtype=torch.uint8),
                "qmap1": torch.linspace(-1, 1, 256),
                "qmap2": torch.linspace(0, 1, 256),
                "absmax1": torch.rand(blocks),
                "absmax2": torch.rand(blocks),
            }
        else:
            state8[index] = {
                "step": 1,
                "state1": torch.zeros_like(p, dtype=torch.float32),
                "state2": torch.zeros_like(p, dtype=torch.float32),
            }
    group8 = {
        "lr": 2e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.05,
        "amsgrad": False, "optim_bits": 8, "min_8bit_size": 4096,
        "percentile_clipping": 100, "block_wise": True, "max_unorm": 0.0,
        "skip_zeros": False, "is_paged": False, "params": list(range(len(names))),
    }
    full8 = dict(full)
    full8["optimizer_state_dict"] = {"state": state8, "param_groups": [group8]}
    torch.save(full8, os.path.join(out, "full_state_8bit.pt"))


def gaussian_window(size=11, sigma=1.5):
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    return g


def filter_valid(image, g):
    """Separable 'valid' correlation with the 1-D window g along both axes."""
    rows = np.stack([np.convolve(r, g[::-1], mode="valid") for r in image])
    return np.stack([np.convolve(c, g[::-1], mode="valid") for c in rows.T]).T


def ssim_luma(a, b):
    luma = lambda x: 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    x, y = luma(a), luma(b)
    g = gaussian_window()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = filter_valid(x, g), filter_valid(y, g)
    sxx = filter_valid(x * x, g) - mx * mx
    syy = filter_valid(y * y, g) - my * my
    sxy = filter_valid(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def make_ssim():
    rng = np.random.default_rng(5)
    h, w = 20, 24
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 3.0)], axis=-1)
    a = np.round(base * 255) / 255
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    b = np.round(b * 255) / 255
    mse = float(np.mean((a - b) ** 2))
    save_file(
        {"a": a.astype(np.float32), "b": b.astype(np.float32)},
        os.path.join(HERE, "ssim.safetensors"),
    )
    with open(os.path.join(HERE, "ssim.json"), "w") as f:
        json.dump(
            {
                "psnr": 10 * math.log10(1.0 / mse),
                "ssim": ssim_luma(a, b),
                "ssim_self": ssim_luma(a, a),
            },
            f,
            indent=2,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-ref", required=True, help="a checkout of the seed (model.py)")
    args = parser.parse_args()
    expected, info = {}, {}
    make_cache(expected, info)
    make_checkpoints(expected, info, args.seed_ref)
    save_file(expected, os.path.join(HERE, "expected.safetensors"))
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(info, f, indent=2)
    make_ssim()


if __name__ == "__main__":
    main()
