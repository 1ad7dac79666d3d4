"""Keep what ``modalens demo`` printed and its small result tables in ``docs/benchmarks/demo/``.

The figures the README and the docs quote from the demo are checked against these files by
``tests/test_doc_figures.py``; after a change that moves the demo's numbers, rerun the demo
and this script, then update the quoted figures until that test passes::

    modalens demo --out /tmp/modalens-demo > /tmp/demo.log 2>&1
    python benchmarks/keep_demo_run.py /tmp/modalens-demo /tmp/demo.log

The log is kept without progress bars and Lightning's banners, with the demo's folder written
as ``modalens-demo``.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

KEPT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "demo"
#: demo folder file -> kept name
FILES = {
    "run/metrics_test.csv": "metrics_test.csv",
    "run/stats.json": "stats.json",
    "attribution/summary.csv": "summary.csv",
    "attribution/strategies.csv": "strategies.csv",
    "attribution/concordance.csv": "concordance.csv",
    "attribution/fill_sanity.csv": "fill_sanity.csv",
    "attribution/stratified.csv": "stratified.csv",
    "views/index.csv": "views_index.csv",
}
#: lines of the console log that are progress or third-party banners, not the demo's output
NOISE = re.compile(r"%\|[^|]*\||it/s|s/it|sample/s|batch/s|\x1b\[A|available:|Tip:|^\s*$")


def clean_log(text: str, demo: Path) -> str:
    """The demo's printed lines: progress bars (carriage-return frames) and banners dropped."""
    lines = []
    for raw in text.replace("\r", "\n").splitlines():
        if not NOISE.search(raw):
            lines.append(raw.replace(str(demo), "modalens-demo").rstrip())
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, help="the folder modalens demo wrote (--out)")
    parser.add_argument("log", type=Path, help="what modalens demo printed")
    args = parser.parse_args()
    KEPT.mkdir(parents=True, exist_ok=True)
    for src, name in FILES.items():
        shutil.copyfile(args.demo / src, KEPT / name)
    demo = args.demo.resolve()
    (KEPT / "demo.log").write_text(clean_log(args.log.read_text(), demo))
    print(f"kept {len(FILES) + 1} files in {KEPT}")


if __name__ == "__main__":
    main()
