"""Training throughput of the paper's U-Net (14 channels, width 64, 17.27 M parameters).

Runs the real :class:`modalens.training.TaskModule` loss (masked MSE through ``compute``) with
Adam on random 256x256 tensors, batch 4, for every combination of precision (fp32,
bf16-mixed autocast) and memory format (contiguous, channels-last), and prints samples/s::

    python benchmarks/training_speed.py [--steps 3] [--warmup 2] [--size 256] [--batch 4]
        [--device cpu|cuda] [--width 64] [--json out.json]

The step is what Lightning runs for ``precision: bf16-mixed`` / ``channels_last: true``:
``autocast(bfloat16)`` around the forward pass, float32 loss, optimizer step in float32.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from modalens.training import TaskModule


def bench(
    precision: str,
    channels_last: bool,
    steps: int,
    warmup: int,
    size: int,
    batch: int,
    device: str,
    width: int,
) -> dict[str, float | str | bool]:
    torch.manual_seed(0)
    module = TaskModule(
        "regression",
        in_channels=14,
        out_channels=1,
        base_width=width,
        depth=4,
        channels_last=channels_last,
    ).to(device)
    module.train()
    opt = torch.optim.Adam(module.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    b = {
        "image": torch.randn(batch, 14, size, size, generator=g).to(device),
        "target": torch.rand(batch, 1, size, size, generator=g).to(device),
        "valid": (torch.rand(batch, size, size, generator=g) > 0.05).to(device),
    }
    bf16 = precision == "bf16-mixed"

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = module.compute(b)["loss"]
        loss.backward()
        opt.step()
        return float(loss.detach())

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {
        "precision": precision,
        "channels_last": channels_last,
        "seconds_per_step": dt / steps,
        "samples_per_s": batch * steps / dt,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args()
    print(
        f"U-Net width {args.width}, 14 ch, {args.size}x{args.size}, batch {args.batch}, "
        f"{args.device} ({torch.get_num_threads()} threads, {platform.processor() or 'cpu'}), "
        f"torch {torch.__version__}"
    )
    results = []
    for precision in ("32-true", "bf16-mixed"):
        for cl in (False, True):
            r = bench(
                precision,
                cl,
                args.steps,
                args.warmup,
                args.size,
                args.batch,
                args.device,
                args.width,
            )
            results.append(r)
            print(
                f"{precision:>10}  channels_last={str(cl):5}  "
                f"{r['seconds_per_step']:7.3f} s/step  {r['samples_per_s']:7.2f} samples/s",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
