"""Run the benches in bench/ one after another, each in its own process (``make bench``).

    python bench/run_all.py [--only votes,generation] [--quick] [--list]

Each bench prints its own tables. ``--quick`` is passed on as the bench's own quick mode
where it has one (votes, generation), maps to fewer training steps for adaptation and to
two sizes with a sampled baseline for report, and is ignored by bradley_terry (which has
no smaller mode). The exit status is non-zero when a bench failed; the others still run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average  # noqa: E402

HERE = Path(__file__).resolve().parent
ORDER = ["votes", "generation", "bradley_terry", "report", "adaptation"]
QUICK_ARGS = {
    "votes": ["--quick"],
    "generation": ["--quick"],
    "ensemble": ["--quick"],
    "adaptation": ["--train-steps", "2", "--lora-steps", "3"],
    "report": ["--sizes", "50,300", "--max-full-pairs", "3000"],
    "forgetting": ["--quick"],
    "choice_scoring": ["--quick"],
    "coverage": ["--quick"],
    "init_methods": ["--quick"],
}


def discover() -> list[str]:
    found = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    return [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default="", help="comma-separated bench names, e.g. votes,generation"
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs where a bench has them")
    parser.add_argument("--list", action="store_true", help="list the benches and exit")
    args = parser.parse_args()
    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    if args.only:
        wanted = [n.strip().removeprefix("bench_") for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            parser.error(f"unknown bench {', '.join(unknown)}; have {', '.join(names)}")
        names = [n for n in names if n in wanted]

    outcomes = []
    for name in names:
        cmd = [sys.executable, str(HERE / f"bench_{name}.py")]
        if args.quick:
            cmd += QUICK_ARGS.get(name, [])
        print(
            f"\n## bench_{name} ({' '.join(cmd[1:])}; load average {load_average()})\n", flush=True
        )
        began = time.perf_counter()
        code = subprocess.call(cmd, cwd=HERE.parent)
        outcomes.append((name, code, time.perf_counter() - began))

    print("\n## Summary\n")
    for name, code, seconds in outcomes:
        print(f"- bench_{name}: {'ok' if code == 0 else f'FAILED (exit {code})'}, {seconds:.0f} s")
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
