"""Run every benchmark under bench/ (files named bench_*.py, each with a main() that prints its figures).

Each benchmark measures its own baseline in the same run and prints the ratio, so figures compare like with like on
whatever machine runs them. A benchmark whose main() returns non-zero missed a goal: the run then exits non-zero. `make bench` runs them all; `bench/run.py NAME` runs the ones whose file name contains NAME.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")


def main(argv: list[str]) -> int:
    wanted = argv[1:]
    files = sorted(p for p in HERE.glob("bench_*.py") if not wanted or any(w in p.name for w in wanted))
    if not files:
        print("no benchmark matched", file=sys.stderr)
        return 1
    failed = []
    for path in files:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {path.stem}")
        started = time.perf_counter()
        if module.main():  # a benchmark that missed its goal returns non-zero
            failed.append(path.stem)
        print(f"   ({time.perf_counter() - started:.1f} s)")
    if failed:
        print(f"FAIL: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
