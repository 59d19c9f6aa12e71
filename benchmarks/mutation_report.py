"""Write ``benchmarks/MUTATION.md`` from the results of ``mutmut run`` (the last step of ``make mutate``).

    python benchmarks/mutation_report.py                # the report, from mutants/*.meta
    python benchmarks/mutation_report.py --save-before  # record the current results as the baseline
    python benchmarks/mutation_report.py --save-before capabilities textsafe  # only for these modules
    python benchmarks/mutation_report.py --complete     # exit 1 unless every mutant was checked

The baseline (``results/mutation_before.json``) is the score of the pure core before the tests
written for mutation testing (for a module added later, its first run); the report shows it next
to the current score. Every mutant that
survived the baseline, and every one that survives now, is listed with what became of it: the test
file that kills it now, or why it is equivalent (``mutation_notes.toml``: reviewed by hand, keyed by
mutmut's mutant name).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
REPORT = HERE / "MUTATION.md"
BEFORE = HERE / "results" / "mutation_before.json"
#: where the tests written against each module's survivors are (the tests that kill them now)
NEW_TESTS = {
    "scheduler": "tests/test_scheduler.py (mutation-testing section at its end)",
    "envsubst": "tests/test_envsubst.py (mutation-testing section at its end)",
    "graph": "tests/test_graph.py (mutation-testing section at its end)",
    "readiness": "tests/test_readiness_decisions.py",
    "runtimes/dockerargs": "tests/runtimes/test_dockerargs_mutants.py",
    "capabilities": "tests/test_capabilities.py (mutation-testing section at its end)",
    "textsafe": "tests/test_textsafe.py (mutation-testing section at its end)",
    "dialects": "tests/test_dialects.py (the every-dialect-branch section at its end)",
}
NOTES = HERE / "mutation_notes.toml"
RUNTIME = HERE / "results" / "mutation_runtime.txt"

MODULES = ["scheduler", "envsubst", "graph", "readiness", "runtimes/dockerargs", "capabilities", "textsafe",
           "dialects"]
#: the socket-level HTTP client of readiness.py is excluded from mutation (``# pragma: no mutate block``):
#: it is exercised by the process and Docker tests against real servers, not by pure tests
EXCLUDED = ("ǁ_Httpǁ",)

KILLED = {1, 3, 37}
TIMEOUT = {-24, 24, 152, 255, 36}
NO_TESTS = {5, 33}


def status(code: int | None) -> str:
    if code in KILLED:
        return "killed"
    if code == 0:
        return "survived"
    if code in TIMEOUT:
        return "timeout"
    if code in NO_TESTS:
        return "no tests"
    if code is None:
        return "not checked"
    return "suspicious"


def load_results() -> dict[str, dict[str, str]]:
    """module → {mutant name → status}, from mutmut's meta files."""
    out: dict[str, dict[str, str]] = {}
    for mod in MODULES:
        meta = ROOT / "mutants" / "b00t_graph" / f"{mod}.py.meta"
        if not meta.exists():
            sys.exit(f"{meta} is missing: run `mutmut run` first")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        out[mod] = {k: status(v) for k, v in codes.items() if not any(x in k for x in EXCLUDED)}
    return out


def diff_of(name: str, mod: str) -> str:
    """The changed lines of one mutant, as mutmut shows them (run from the project root)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=Path("b00t_graph") / f"{mod}.py")
    return "\n".join(line for line in diff.splitlines()
                     if line.startswith(("+", "-")) and not line.startswith(("+++", "---")))


def counts(results: dict[str, str]) -> dict[str, int]:
    c = Counter(results.values())
    return {"total": len(results), "killed": c["killed"], "survived": c["survived"], "timeout": c["timeout"],
            "no tests": c["no tests"], "other": len(results) - c["killed"] - c["survived"] - c["timeout"]
            - c["no tests"]}


def save_before(only: list[str]) -> None:
    """Record the current results as the baseline: of every module, or only of ``only`` (the others' kept)."""
    os.chdir(ROOT)
    results = load_results()
    unknown = set(only) - set(results)
    if unknown:
        sys.exit(f"not mutated: {', '.join(sorted(unknown))}")
    data: dict[str, Any] = {"modules": {}, "open": {}}
    if only and BEFORE.exists():
        data = json.loads(BEFORE.read_text())
    for mod, res in results.items():
        if only and mod not in only:
            continue
        data["modules"][mod] = counts(res)
        data["open"][mod] = {k: {"status": s, "diff": diff_of(k, mod)}
                             for k, s in sorted(res.items()) if s != "killed"}
    BEFORE.parent.mkdir(exist_ok=True)
    BEFORE.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"baseline saved to {BEFORE.relative_to(ROOT)}")


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "—"


def fence(text: str) -> str:
    return "```diff\n" + text + "\n```"


def write_report() -> None:
    os.chdir(ROOT)
    results = load_results()
    before = json.loads(BEFORE.read_text()) if BEFORE.exists() else {"modules": {}, "open": {}}
    notes: dict[str, dict[str, str]] = tomllib.loads(NOTES.read_text()) if NOTES.exists() else {}
    reasons = {name: text for section in notes.values() for name, text in section.items()}
    runtime = RUNTIME.read_text().strip() if RUNTIME.exists() else "not measured"

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    lines = [
        "# Mutation testing of the pure core",
        "",
        "Generated by `make mutate` (`mutmut run`, then `python benchmarks/mutation_report.py`); do not edit by hand.",
        "",
        "mutmut changes one thing at a time in the code (a comparison, a constant, a string, an argument)",
        "and runs the tests that reach that code: a mutant the tests notice is *killed*; one they do not",
        "notice *survived*, which means a behaviour no test pins down. The tests run under mutation are",
        "the fast, pure ones, never Docker (`-m \"not docker\"`):",
        "",
        *(f"- `{t}`" for t in cfg["pytest_add_cli_args_test_selection"]),
        "",
        "Excluded from mutation: the socket-level HTTP client in `readiness.py` (`_Http`, marked",
        "`# pragma: no mutate block`): it only speaks HTTP over a socket, and it is tested against real",
        "servers by the process and Docker tests, which are too slow to run once per mutant. The probe",
        "decisions around it (`probe_once`, `wait_ready`: backoff, deadline, retries, start period) are",
        "mutated and tested with a test double and a virtual clock.",
        "",
        "`dialects.py` (the datum dialects) is mutated like the rest; its mutants are about as many as",
        "those of all the other modules together, which makes `make mutate` the slowest check of the",
        "project (not in CI).",
        "",
        f"Runtime of the last full mutation run on the 2-core machine: {runtime}.",
        "",
        "## Score per module",
        "",
        "Before = the same mutants, run against the tests as they were before mutation testing began",
        "(for `capabilities.py`, `textsafe.py` and `dialects.py`, added later: their first run, before their",
        "own review).",
        "Score = killed / total. A timeout (the mutant made the tests hang, e.g. an endless loop) is a",
        "detection too but is counted apart; \"no tests\" means no selected test reaches the code.",
        "",
        "| module | before: killed / total | before: survived | before: timeout | before: no tests "
        "| after: killed / total | after: survived | after: timeout | after: no tests |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    tot_b: Counter[str] = Counter()
    tot_a: Counter[str] = Counter()
    for mod in MODULES:
        a = counts(results[mod])
        b = before["modules"].get(mod)
        tot_a.update(a)
        if b:
            tot_b.update(b)
            bcols = (f"{b['killed']} / {b['total']} ({pct(b['killed'], b['total'])}) | {b['survived']} "
                     f"| {b['timeout']} | {b['no tests']}")
        else:
            bcols = "— | — | — | —"
        lines.append(f"| `{mod}.py` | {bcols} | {a['killed']} / {a['total']} ({pct(a['killed'], a['total'])}) "
                     f"| {a['survived']} | {a['timeout']} | {a['no tests']} |")
    lines.append(f"| **all** | {tot_b['killed']} / {tot_b['total']} ({pct(tot_b['killed'], tot_b['total'])}) "
                 f"| {tot_b['survived']} | {tot_b['timeout']} | {tot_b['no tests']} "
                 f"| {tot_a['killed']} / {tot_a['total']} ({pct(tot_a['killed'], tot_a['total'])}) "
                 f"| {tot_a['survived']} | {tot_a['timeout']} | {tot_a['no tests']} |")

    unchecked = sum(Counter(res.values())["not checked"] for res in results.values())
    if unchecked:
        lines += ["", f"**{unchecked} mutants were not checked**: the last run was stopped before its end, and "
                  "they count as not killed above (`mutmut run` resumes it)."]
    lines += [
        "",
        "## Mutants that survive now",
        "",
        "Each was reviewed by hand; the note says why no test kills it (an equivalent mutant, or code",
        "that pure tests cannot reach).",
        "",
    ]
    unreviewed = 0
    for mod in MODULES:
        open_now = {k: s for k, s in sorted(results[mod].items()) if s not in ("killed", "timeout", "not checked")}
        if not open_now:
            continue
        lines += [f"### `{mod}.py`", ""]
        for name, st in open_now.items():
            reason = reasons.get(name)
            if reason is None:
                unreviewed += 1
                reason = "**not reviewed yet**"
            short = name.split(".")[-1]
            lines += [f"- `{short}` ({st}): {reason}", "", fence(diff_of(name, mod)), ""]
    if not any(s not in ("killed", "timeout", "not checked") for res in results.values() for s in res.values()):
        lines += ["None.", ""]

    lines += [
        "## What became of the baseline's survivors",
        "",
        "Every mutant that survived (or that no selected test reached) before the new tests, with the",
        "test that kills it now, or the reason it is equivalent.",
        "",
    ]
    for mod in MODULES:
        open_before: dict[str, dict[str, str]] = before["open"].get(mod, {})
        if not open_before:
            continue
        lines += [f"### `{mod}.py`", "", "| mutant | before | now | how |", "| --- | --- | --- | --- |"]
        for name, info in open_before.items():
            now = results[mod].get(name, "gone")
            short = name.split(".")[-1]
            if now == "killed":
                how = f"killed by the new tests in `{NEW_TESTS[mod]}`"
            elif now == "gone":
                how = "the code it changed was rewritten since: this mutant no longer exists"
            elif now == "timeout":
                how = "the tests now hang on it (detected)"
            else:
                how = reasons.get(name, "**not reviewed yet**").replace("|", "\\|")
            lines.append(f"| `{short}` | {info['status']} | {now} | {how} |")
        lines.append("")

    REPORT.write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote {REPORT.relative_to(ROOT)}; score per module:")
    for mod in MODULES:
        a = counts(results[mod])
        print(f"  {mod:22} {a['killed']:5} / {a['total']:<5} {pct(a['killed'], a['total']):>6}  "
              f"survived {a['survived']}, timeout {a['timeout']}, no tests {a['no tests']}")
    if unreviewed:
        print(f"{unreviewed} surviving mutant(s) have no note in {NOTES.relative_to(ROOT)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--save-before", nargs="*", metavar="MODULE",
                    help="record the current results as the baseline (of the MODULEs only, if given)")
    ap.add_argument("--complete", action="store_true",
                    help="only check that every mutant was checked (exit 1 if not: the run was stopped)")
    args = ap.parse_args()
    if args.complete:
        os.chdir(ROOT)
        left = sum(Counter(res.values())["not checked"] for res in load_results().values())
        if left:
            sys.exit(f"{left} mutants not checked: the run was stopped before its end (`mutmut run` resumes it)")
        return
    if args.save_before is not None:
        save_before(args.save_before)
        return
    write_report()


if __name__ == "__main__":
    main()
