"""Run the suite with the Docker engine hidden, again and again, and keep a line per run.

    python benchmarks/repeat_suite.py [--runs 50] [--log benchmarks/results/suite_runs.txt] [--follow REPO]

A flaky test blocks every submission, so "the suite passes" is a claim about many runs, not one:
each run is the README's test command with ``DOCKER_HOST`` pointing nowhere (docker tests skip,
everything else must pass), under ``nice`` so the machine's other work goes on. The runs stop at
the first failure, whose output is kept beside the log. ``--follow REPO`` fast-forwards this
checkout from REPO's main before each run, so a long series follows the code as it lands (each
line names the commit it ran on).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HIDDEN = "unix:///nonexistent.sock"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()


def one_run(out: Path) -> tuple[int, float, str]:
    """The suite once, engine hidden; its exit code, wall seconds and summary line."""
    env = {k: v for k, v in os.environ.items() if k != "B00T_REQUIRE_DOCKER"}
    env["DOCKER_HOST"] = HIDDEN
    t0 = time.monotonic()
    with open(out, "w") as fh:
        rc = subprocess.call(["nice", "-n", "10", sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                              "--durations=20"], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    took = time.monotonic() - t0
    lines = [ln for ln in out.read_text(errors="replace").splitlines() if ln.strip()]
    return rc, took, (lines[-1].strip("= ") if lines else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--log", type=Path, default=ROOT / "benchmarks" / "results" / "suite_runs.txt")
    ap.add_argument("--follow", metavar="REPO", help="fast-forward from REPO's main before each run")
    args = ap.parse_args(argv)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "a") as log:
        log.write(f"# series of up to {args.runs} on {os.cpu_count()} cores, started "
                  f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    for i in range(1, args.runs + 1):
        if args.follow:
            _git("pull", "-q", "--ff-only", args.follow, "main")
        out = args.log.with_name(f"{args.log.stem}.last.txt")
        rc, took, summary = one_run(out)
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "-"
        with open(args.log, "a") as log:
            log.write(f"run {i} {_git('rev-parse', '--short', 'HEAD')} {'pass' if rc == 0 else f'FAIL rc={rc}'} "
                      f"{took:.0f}s load {load} {datetime.now(UTC):%H:%M} UTC: {summary}\n")
        if rc != 0:
            print(f"run {i} failed; its output: {out}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
