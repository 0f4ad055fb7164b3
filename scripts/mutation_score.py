"""Print the mutation score per module after `mutmut run` (the `make mutate` summary).

Reads `mutmut results --all true` (one ``module.x_function__mutmut_N: status`` line per
mutant) and prints, per mutated module, killed / total and the survivors' names, so the
figures can be copied beside the target in docs/benchmarks.md. A timeout counts as killed
(the mutant made the tests hang, which a test run notices); "no tests" counts as survived.
Exit 1 when a module is under the target (default 90 %).
"""
from __future__ import annotations

import argparse
import collections
import subprocess
import sys
from pathlib import Path

KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target", type=float, default=90.0)
    ap.add_argument("--mutmut", default=str(Path(sys.executable).with_name("mutmut")))
    args = ap.parse_args()
    out = subprocess.run([args.mutmut, "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    per: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    survivors: dict[str, list[str]] = collections.defaultdict(list)
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep or "__mutmut_" not in name:
            continue
        module = name.split(".x", 1)[0] if ".x_" in name or ".xǁ" in name else name.rsplit(".", 1)[0]
        per[module][status] += 1
        if status not in KILLED:
            survivors[module].append(f"{name} ({status})")
    if not per:
        print("no mutation results: run `mutmut run` first", file=sys.stderr)
        return 1
    ok = True
    for module in sorted(per):
        c = per[module]
        total = sum(c.values())
        killed = sum(n for s, n in c.items() if s in KILLED)
        pct = 100.0 * killed / total if total else 100.0
        ok &= pct >= args.target
        print(f"{module}: {killed} / {total} killed ({pct:.1f} %)  {dict(c)}")
        for s in survivors[module]:
            print(f"    survived: {s}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
