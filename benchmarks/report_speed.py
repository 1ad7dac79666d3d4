"""Time ``modalens report`` on a folder holding every kind of artefact.

Runs the command ``--repeats`` times in fresh processes (wall time, including Python start-up and
the imports of torch and Lightning that the report's readers pull in), and times
:func:`modalens.report.build_report` alone in this process after a warm-up, so that the two
costs are told apart::

    python benchmarks/report_speed.py [--folder DIR] [--repeats 5] [--json out.json]

Without ``--folder`` it reports on the artefacts the tests use (tests/report/fixtures/studies:
attribution, strategies, views, strata, ablation, agreement, pruning, faithfulness, multitask
comparison). Give a folder such as ``modalens-demo`` after ``modalens demo --validate`` for a
real one. The target is under 10 s for a folder with all artefacts; the machine's load (printed)
changes the import time most.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modalens.report import build_report, collect

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "report" / "fixtures" / "studies"


def main() -> None:
    """Parse the arguments, time the command and the build, print (and write) the results."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", help="results folder (default: the test fixtures, copied)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder) if args.folder else Path(tmp) / "studies"
        if not args.folder:
            shutil.copytree(FIXTURES, folder)
        out = Path(tmp) / "report.html"
        command = [sys.executable, "-m", "modalens.cli", "report", str(folder), "--out", str(out)]
        walls = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            walls.append(time.perf_counter() - t)
        build_report(folder, out=out)  # warm-up: imports done
        builds = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            build_report(folder, out=out)
            builds.append(time.perf_counter() - t)
        result = {
            "folder": str(args.folder or FIXTURES),
            "kinds": collect(folder).kinds(),
            "load_average": os.getloadavg(),
            "command_wall_s_median": statistics.median(walls),
            "command_wall_s": walls,
            "build_s_median": statistics.median(builds),
            "html_bytes": out.stat().st_size,
        }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
