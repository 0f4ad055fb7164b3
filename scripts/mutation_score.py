"""Print the mutation score per module after `mutmut run` (the `make mutate` summary).

Reads `mutmut results --all true` (one ``module.x_function__mutmut_N: status`` line per
mutant) and prints, per mutated module, killed / total and the survivors' names, so the
figures can be copied beside the target in docs/benchmarks.md. A timeout counts as killed
(the mutant made the tests hang, which a test run notices); "no tests" counts as survived.
Exit 1 when a module is under the target (default 90 %). With ``--survivors-md FILE`` it also
writes the survivors as a Markdown list (name, the mutated line, and a reason when the mutant is
of a class known to be equivalent), for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

KILLED = {"killed", "timeout", "caught by type check", "segfault"}
_SQL = re.compile(r"\b(SELECT|UPDATE|INSERT|DELETE|PRAGMA|WHERE|SET|FROM|BEGIN|COMMIT|ROLLBACK)\b", re.IGNORECASE)
_LITERAL = re.compile(r"'[^']*'")


def changed_lines(mutmut: str, name: str) -> tuple[str, str]:
    """The first removed and added line of a mutant's diff."""
    out = subprocess.run([mutmut, "show", name], capture_output=True, text=True).stdout
    minus = [ln[1:].strip() for ln in out.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln[1:].strip() for ln in out.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    return (minus[0] if minus else ""), (plus[0] if plus else "")


def reason(old: str, new: str) -> str:
    """Why a surviving mutant is equivalent, for the classes that are equivalent by construction."""
    if old.lower() == new.lower() and _SQL.search(old) and _LITERAL.findall(old) == _LITERAL.findall(new):
        return "SQL text in another letter case: SQLite keywords and identifiers are case-insensitive"
    if old.lstrip().startswith("log.") or ".exception(" in old:
        return "log wording or arguments only"
    if old.startswith("def "):
        return "a default every caller overrides"
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target", type=float, default=90.0)
    ap.add_argument("--mutmut", default=str(Path(sys.executable).with_name("mutmut")))
    ap.add_argument("--survivors-md", default=None, help="write the survivors as Markdown to this file")
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
            survivors[module].append(name)
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
    if args.survivors_md:
        lines = []
        for module in sorted(survivors):
            lines.append(f"\n**{module}** ({len(survivors[module])} survivors)\n")
            for name in survivors[module]:
                old, new = changed_lines(args.mutmut, name)
                why = reason(old, new)
                short = name.split("__mutmut_")[0].rsplit(".", 1)[-1].replace("xǁ", "").replace("ǁ", ".")
                short = short[2:] if short.startswith("x_") else short
                lines.append(f"- `{short}` #{name.rsplit('_', 1)[-1]}: `{new[:110]}`" + (f" — {why}" if why else ""))
        Path(args.survivors_md).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
