"""Print one table of side-by-side ratios: what ``make bench`` runs.

    python benchmarks/run_all.py                 # the full table (several minutes on 2 cores)
    python benchmarks/run_all.py --quick         # one short round of each (seconds)
    python benchmarks/run_all.py --experiments   # also measure candidate fixes
    python benchmarks/run_all.py --only train,coding --json out.json

Each ratio is the median of per-round ratios of two arms interleaved in this process (see
``benchlib``); absolute figures describe the machine at that moment, not acbench.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
from benchlib import MEASUREMENTS, PROFILES, Row  # noqa: E402


def _fmt(x: float, unit: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if unit in ("runs", "fits"):
        return f"{x:,.0f}"
    if unit == "s":
        return f"{x:.2f} s"
    if unit == "%":
        return f"{x:.1f} %"
    if unit == "ms":
        return f"{x:.1f} ms"
    return f"{x:,.1f}" if x >= 10 else f"{x:.2f}"


def table(rows: list[Row]) -> str:
    """Markdown table with notes as numbered footnotes."""
    lines = [
        "| measurement | acbench | reference | ratio (median, min-max) | target | met |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    notes = []
    for r in rows:
        ratio = "" if math.isnan(r.ratio) else f"{r.ratio:.2f}x"
        if ratio and not math.isnan(r.ratio_lo) and r.ratio_lo != r.ratio_hi:
            ratio += f" ({r.ratio_lo:.2f}-{r.ratio_hi:.2f})"
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        name = r.name
        if r.note:
            notes.append(r.note)
            name += f" [{len(notes)}]"
        unit = "" if r.unit in ("%", "ms", "s") or not r.unit else f" {r.unit}"
        ours, ref = (_fmt(v, r.unit) for v in (r.acbench, r.reference))
        ours, ref = (v + unit if v else v for v in (ours, ref))
        lines.append(f"| {name} | {ours} | {ref} | {ratio} | {r.target} | {met} |")
    lines.append("")
    lines += [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
    return "\n".join(lines)


def collect(profile: benchlib.Profile, only: list[str] | None = None, log=print) -> list[Row]:
    """Run the measurements; one that fails becomes a row saying why, the others go on."""
    rows: list[Row] = []
    for name, fn in MEASUREMENTS.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        try:
            got = fn(profile)
        except Exception as e:
            traceback.print_exc()
            got = [Row(f"{name}: failed ({type(e).__name__}: {e})"[:200], math.nan, group=name)]
        log(f"# {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        rows += got
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one short round of each measurement")
    ap.add_argument("--profile", choices=sorted(PROFILES), help="full | quick | smoke (tiny sizes)")
    ap.add_argument("--experiments", action="store_true", help="also measure candidate fixes")
    ap.add_argument("--rounds", type=int, help="override the number of interleaved rounds")
    ap.add_argument("--only", help=f"comma-separated subset of: {', '.join(MEASUREMENTS)}")
    ap.add_argument("--json", type=Path, help="also write rows and machine info as JSON")
    args = ap.parse_args(argv)
    profile = PROFILES[args.profile or ("quick" if args.quick else "full")]
    if args.experiments:
        profile = dataclasses.replace(profile, experiments=True)
    if args.rounds:
        profile = dataclasses.replace(profile, rounds=args.rounds)
    only = args.only.split(",") if args.only else None
    info = benchlib.machine()
    t0 = time.perf_counter()
    rows = collect(profile, only)
    info["loadavg_end"] = __import__("os").getloadavg()
    print(
        f"acbench benchmarks, profile {profile.name} ({profile.rounds} interleaved rounds), "
        f"{time.perf_counter() - t0:.0f} s\n"
        f"machine: {info['nproc']} x {info['cpu']}, torch {info['torch']} ({info['threads']} threads), "
        f"python {info['python']}, load average {info['loadavg'][0]:.1f} at start / "
        f"{info['loadavg_end'][0]:.1f} at end\n"
    )
    print(table(rows))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "profile": dataclasses.asdict(profile),
                    "machine": info,
                    "rows": [dataclasses.asdict(r) for r in rows],
                },
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
