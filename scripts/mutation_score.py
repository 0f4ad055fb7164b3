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


def _diff(mutmut: str, name: str) -> str:
    """A mutant's diff: in this process when mutmut is importable (9 s for 260 survivors instead of minutes),
    else through `mutmut show`."""
    try:
        import mutmut.__main__ as mm  # noqa: PLC0415 - a dev tool, needed only for --survivors-md

        return str(mm.get_diff_for_mutant(name, path=mm.find_mutant(name).path))
    except (ImportError, AttributeError, KeyError, FileNotFoundError):
        return subprocess.run([mutmut, "show", name], capture_output=True, text=True).stdout


def changed_lines(mutmut: str, name: str) -> tuple[str, str]:
    """The first removed and added line of a mutant's diff."""
    out = _diff(mutmut, name)
    minus = [ln[1:].strip() for ln in out.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln[1:].strip() for ln in out.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    return (minus[0] if minus else ""), (plus[0] if plus else "")


#: Survivors judged equivalent one by one (docs/benchmarks.md, "Mutation testing", has the argument for each
#: class): (function, a regular expression the mutated line matches, the reason). Keyed by the mutated line,
#: not by mutmut's number, which moves when the function changes.
EQUIVALENT: list[tuple[str, str, str]] = [
    ("CapturedMaterial.wipe", r'b"XX', "the overwrite is for freed memory, which Python cannot observe"),
    ("Session.__init__", r"_last_activity = None|_warned = (None|True)|_token = 2",
     "an initial value every way out of IDLE resets (tokens are only compared for equality)"),
    ("Session._touch_locked", r"_warned = None", "None is as false as False"),
    ("Session.end", r"_token (-= 1|\+= 2)", "tokens are only compared for equality; each end still makes a new one"),
    ("Session._wipe_locked", r"REDACTOR\.discard",
     "REDACTOR.clear() right after moves every held name to the hashed memory anyway"),
    ("Session.tick", r"left >= 0", "at 0 the visit ends, and the end resets the warning"),
    ("Drainer.__init__", r"max_backoff_s: float = 301\.0",
     "a 0-300 s jittered delay cannot be told from a 0-301 s one"),
    ("Drainer.__init__", r'_thread: .* = ""', "an empty string is as false as None"),
    ("Drainer.__init__", r"_last_purge = 1\.0", "the clock is epoch seconds: the first pass purges either way"),
    ("Drainer._deliver", r'return "(XXfailedXX|FAILED|XXdeferredXX|DEFERRED|XXdoneXX|DONE)"',
     'a pass compares the outcome with "retry" only'),
    ("Drainer._deliver", r"_note\(True, None, None\)", "with no error the report is not touched"),
    ("Drainer._send", r"isinstance\(tn, str\) or is_tracking_no",
     "a platform number is never a local record's id: the look-up finds nothing either way"),
    ("Drainer._send", r"outbox\.get\(tn, (decrypt=None|decrypt=True|)\)",
     "only the state and the platform number are read, which decrypting does not change"),
    ("Drainer._send", r'PermanentError\((None, |status=404|"XXrated|"RATED)',
     "the message of this error is not stored: the dead letter keeps its detail, status and code"),
    ("Drainer._send", r'target\.state != "done" and not target\.platform_ref',
     "a delivered application always has the platform's number (a delivery without one raises)"),
    ("Drainer.request_for", r"raise ValueError\(None\)",
     "only the type of this error is kept (the record is retried as `internal error ValueError`)"),
    ("Outbox.__init__", r"busy_timeout_ms: int = 10001", "a default every caller keeps: 1 ms more patience when busy"),
    ("Outbox.__init__", r"hex\[:9\]", "the owner's random part is only compared whole"),
    ("Outbox._move_aside", r"why\[:201\]", "log wording or arguments only"),
    ("Outbox._check_key", r"^row = None$|^row = self\._db\.execute\(\"SELECT V FROM META WHERE K='KEY_CHECK'\"\)",
     "the first read of the check value: after INSERT OR IGNORE the second read finds the same row"),
    ("Outbox._connect", r"connect\(self\.path, (isolation_level|timeout=self\._busy_timeout_ms (\* 1000|/ 1001))",
     "PRAGMA busy_timeout right after the connect sets the wait again"),
    ("_fsync_dir", r"O_RDONLY & os\.O_DIRECTORY", "Linux fsyncs a directory opened read-only either way"),
    ("_pid_alive", r"return False", "the PermissionError branch: the tests run as root, who may signal any process"),
    ("lease_expired", r"rsplit|split\(\":\", (2|)\)", "an owner is host:pid:hex8 and the hex part holds no colon"),
    ("_sqlite_code", r'"sqlite_errorcode", (\+1|-2)\)', "any default outside 11/13/26 means the same"),
    ("_write_all", r"ENOSPC, (None|\"XXno|\"NO)", "the text of an error that becomes OutboxFullError's cause"),
    ("Outbox._enqueue", r"if idempotency_key is None:$|existing = None$|_id_for_key\(None\)$",
     "the first idempotency check: the insert's own check gives the same answer"),
    ("Outbox._enqueue", r"_group_key\(None,", "_group_key does not use the kind"),
    ("Outbox._enqueue", r"if \(shas\) or True", 'json.dumps([]) is "[]"'),
    ("Outbox._group_key", r"a\.get\(('id_type', None|''|'id_type', |'id_type', 'XXXX')\)",
     "a missing id_type becomes another constant: records without one still share one key"),
    ("Outbox._record", r"log\.warning", "log wording or arguments only"),
    ("Outbox.mark_done", r"ensure_ascii|json\.dumps\(result, \)|\(result is not None\) or True",
     "the sealed JSON reads back to the same value (a sealed null reads back as None)"),
    ("Outbox.purge", r"gone = \[r\[1\]", "only the number of purged records is used"),
    ("Outbox.purge", r"missing_ok=(None|False)|^break$",
     "only a concurrent delete between listing and unlink could tell"),
    ("Outbox.claim_next", r"limit: int = 17|lease_s: float = 121\.0", "a default every caller overrides"),
]


def reason(old: str, new: str, function: str = "") -> str:
    """Why a surviving mutant is equivalent: the classes equivalent by construction, then EQUIVALENT."""
    quoted = re.findall(r'"[^"]*"', old)
    if (old.lower() == new.lower() and any(_SQL.search(q) for q in quoted)
            and _LITERAL.findall(old) == _LITERAL.findall(new)):
        return "SQL text in another letter case: SQLite keywords and identifiers are case-insensitive"
    if old.lstrip().startswith("log.") or ".exception(" in old:
        return "log wording or arguments only"
    if old.startswith("def "):
        return "a default every caller overrides"
    for fn, pattern, why in EQUIVALENT:
        if fn == function and re.search(pattern, new):
            return why
    return ""


def short_name(name: str) -> str:
    """``offline_cache.outbox.xǁOutboxǁ_record__mutmut_6`` -> ``Outbox._record``."""
    func = name.split("__mutmut_")[0].rsplit(".", 1)[-1]
    if func.startswith("xǁ"):
        return ".".join(func[2:].split("ǁ"))
    return func[2:] if func.startswith("x_") else func


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
                short = short_name(name)
                why = reason(old, new, short)
                lines.append(f"- `{short}` #{name.rsplit('_', 1)[-1]}: `{new[:110]}`" + (f" — {why}" if why else ""))
        Path(args.survivors_md).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
