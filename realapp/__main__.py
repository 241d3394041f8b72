"""``python -m realapp SCENARIO... --out DIR`` (or ``all``); ``python -m realapp faults --out DIR``."""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from .scenarios import load_all

    SCENARIOS = load_all()

    p = argparse.ArgumentParser(prog="python -m realapp", description=__doc__)
    p.add_argument("scenarios", nargs="+", help=f"scenario names, 'all' or 'faults'; scenarios: {', '.join(SCENARIOS)}")
    p.add_argument("--out", required=True, type=Path, help="root directory (e.g. tests/data/realapp)")
    p.add_argument("--cases", default="", help="faults only: comma-separated case ids (default: all)")
    p.add_argument("--keep-work", action="store_true", help="keep the work directory (process logs, raw bodies)")
    args = p.parse_args(argv)

    names = list(SCENARIOS) if args.scenarios == ["all"] else args.scenarios
    for name in names:
        work = Path(tempfile.mkdtemp(prefix=f"realapp-{name}-"))
        t0 = time.monotonic()
        try:
            if name == "faults":
                from .faults import generate

                generate(args.out / "faults", work, [c for c in args.cases.split(",") if c])
                size = sum(f.stat().st_size for f in (args.out / "faults").rglob("*") if f.is_file())
            elif name in SCENARIOS:
                from .capture import Capture

                cap = Capture(args.out, name)
                cap.write_truth(SCENARIOS[name](cap, work))
                size = cap.size_bytes()
            else:
                p.error(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}, faults, all")
        finally:
            if args.keep_work:
                print(f"{name}: work directory kept: {work}", file=sys.stderr)
            else:
                shutil.rmtree(work, ignore_errors=True)
        print(f"{name}: {size / 1024:.0f} KiB in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
