"""Proves the PyTorch twin computes what ssdit computes: reproduces the golden
fixtures (`shared/fixtures/{dit,sampler,train_step}`) within the tolerances
their `cases.json` state, and prints each measured difference.

    python bench/reference/verify.py [--fixtures ../shared/fixtures]

Exit status 0 when every comparison is within tolerance, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ssdit_twin import TwinConfig, TwinDiT, sample, train_step  # noqa: E402


def default_fixtures() -> Path:
    # The repository sits beside shared/ (docs/DEVELOPING.md).
    return Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def differences(got: torch.Tensor, want: torch.Tensor) -> tuple[float, float]:
    got, want = got.double(), want.double()
    diff = got - want
    return diff.abs().max().item(), (diff.norm() / want.norm().clamp_min(1e-300)).item()


class Report:
    def __init__(self) -> None:
        self.failures = 0

    def check(self, name: str, got: torch.Tensor, want: torch.Tensor, max_abs=None, max_rel_l2=None) -> None:
        if tuple(got.shape) != tuple(want.shape):
            print(f"FAIL {name}: shape {tuple(got.shape)} vs expected {tuple(want.shape)}")
            self.failures += 1
            return
        abs_err, rel_err = differences(got, want)
        ok = (max_abs is None or abs_err <= max_abs) and (max_rel_l2 is None or rel_err <= max_rel_l2)
        self.failures += not ok
        limits = ", ".join(
            f"{k} ≤ {v:g}" for k, v in (("max_abs", max_abs), ("max_rel_l2", max_rel_l2)) if v is not None
        )
        print(f"{'ok  ' if ok else 'FAIL'} {name}: max_abs {abs_err:.3e}, max_rel_l2 {rel_err:.3e} ({limits})")


def load_model(dit_dir: Path) -> TwinDiT:
    cfg = TwinConfig.from_json(json.loads((dit_dir / "config.json").read_text()))
    model = TwinDiT(cfg)
    model.load_state_dict(load_file(dit_dir / "dit.safetensors"), strict=True)
    return model


def check_forward(root: Path, report: Report) -> None:
    folder = root / "dit"
    tol = json.loads((folder / "cases.json").read_text())["tolerance"]
    cases = load_file(folder / "cases.safetensors")
    model = load_model(folder).eval()
    with torch.no_grad():
        v = model(cases["x"], cases["t"], cases["text_embeds"])
    report.check("dit expected_v", v, cases["expected_v"], tol.get("max_abs"), tol.get("max_rel_l2"))


def check_sampler(root: Path, report: Report) -> None:
    folder = root / "sampler"
    spec = json.loads((folder / "cases.json").read_text())
    cases = load_file(folder / "cases.safetensors")
    model = load_model((folder / spec["weights"]).parent).eval()
    tol = spec["tolerance"]
    for name, case in sorted(spec["cases"].items()):
        got = sample(model, cases["x0"], cases["cond"], case["steps"], case["cfg"], case["method"])
        report.check(f"sampler {name}", got, cases[name], tol.get("max_abs"), tol.get("max_rel_l2"))


def check_train_step(root: Path, report: Report) -> None:
    folder = root / "train_step"
    spec = json.loads((folder / "cases.json").read_text())
    cases = load_file(folder / "cases.safetensors")
    model = load_model((folder / spec["weights"]).parent).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=spec["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=spec["weight_decay"]
    )
    loss, norm = train_step(
        model, optimizer, cases["x1"], cases["noise"], cases["t"], cases["text_embeds"], clip=spec["clip"]
    )
    tol = spec["tolerance"]
    report.check("train_step loss", loss.reshape(1), cases["expected_loss"].reshape(1), max_rel_l2=tol["loss_rel"])
    report.check(
        "train_step grad norm", norm.reshape(1), cases["expected_grad_norm"].reshape(1), max_rel_l2=tol["grad_norm_rel"]
    )
    worst = ("", 0.0)
    state = model.state_dict()
    expected = {k[len("after.") :]: v for k, v in cases.items() if k.startswith("after.")}
    if set(expected) != set(state):
        print(f"FAIL train_step parameters: names differ: {sorted(set(expected) ^ set(state))[:5]}")
        report.failures += 1
        return
    for name, want in expected.items():
        err = (state[name].double() - want.double()).abs().max().item()
        worst = max(worst, (name, err), key=lambda p: p[1])
    ok = worst[1] <= tol["param_max_abs"]
    report.failures += not ok
    print(
        f"{'ok  ' if ok else 'FAIL'} train_step {len(expected)} parameters after AdamW: "
        f"max_abs {worst[1]:.3e} (worst {worst[0]}; max_abs ≤ {tol['param_max_abs']:g})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, default=default_fixtures(), help="the shared fixtures folder")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, fixtures {args.fixtures}")
    report = Report()
    check_forward(args.fixtures, report)
    check_sampler(args.fixtures, report)
    check_train_step(args.fixtures, report)
    print("all within tolerance" if report.failures == 0 else f"{report.failures} comparison(s) out of tolerance")
    return 0 if report.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
