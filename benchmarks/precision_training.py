"""Training in fp32 against bf16-mixed on the demo config, side by side in one run.

Trains ``configs/demo.yaml`` (the packaged demo config) on a demo dataset twice with the same
seed -- ``train.precision: fp32`` and ``bf16-mixed`` -- and prints the best and final
validation MAE, the median seconds per epoch and their ratios, and what ``train.precision:
auto`` resolves to on this machine::

    python -m modalens.cli synth /tmp/demo-data --samples 60 --size 128
    python benchmarks/precision_training.py --data /tmp/demo-data [--quick] [--epochs N]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from modalens.threads import configure_threads

configure_threads()  # as the command does, before torch loads (it trains in this process)

import pandas as pd  # noqa: E402

from modalens.precision import native_bf16, resolve_auto  # noqa: E402
from modalens.training import fit  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "src" / "modalens" / "configs" / "demo.yaml"


def train(data: str, precision: str, epochs: int, out: Path) -> dict[str, Any]:
    """One demo training; its validation MAE and seconds per epoch."""
    overrides = {"data": {"root": data}, "train": {"epochs": epochs, "precision": precision}}
    run = fit(str(CONFIG), out=out / precision, progress=False, overrides=overrides)
    m = pd.read_csv(run / "metrics.csv")
    return {
        "precision": precision,
        "epochs": len(m),
        "best_val_mae": float(m["val_mae"].min()),
        "final_val_mae": float(m["val_mae"].iloc[-1]),
        "s_per_epoch": float(m["seconds"].iloc[1:].median() if len(m) > 1 else m["seconds"][0]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a demo dataset (modalens synth)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the config's (60)")
    ap.add_argument("--quick", action="store_true", help="8 epochs")
    ap.add_argument("--keep", default=None, help="keep the run folders here")
    args = ap.parse_args()
    epochs = 8 if args.quick else args.epochs
    if epochs is None:
        import yaml

        epochs = int(yaml.safe_load(CONFIG.read_text())["train"]["epochs"])
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="precision-training-"))
    try:
        rows = [train(args.data, p, epochs, out) for p in ("fp32", "bf16-mixed")]
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    print(
        f"native bf16 on this CPU: {native_bf16('cpu')}; train.precision auto -> "
        f"{resolve_auto('auto', 'cpu')}\n"
    )
    print("| precision | epochs | best val MAE | final val MAE | s/epoch |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['precision']} | {r['epochs']} | {r['best_val_mae']:.4f} | "
            f"{r['final_val_mae']:.4f} | {r['s_per_epoch']:.2f} |"
        )
    a, b = rows
    print(
        f"\nbf16-mixed / fp32: best val MAE x{b['best_val_mae'] / a['best_val_mae']:.3f}, "
        f"speed x{a['s_per_epoch'] / b['s_per_epoch']:.2f}"
    )


if __name__ == "__main__":
    main()
