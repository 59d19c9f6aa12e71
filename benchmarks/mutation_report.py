"""Write ``benchmarks/MUTATION.md`` from the results of ``mutmut run`` (the last step of ``make mutate``).

    python benchmarks/mutation_report.py                # the report, from mutants/*.meta
    python benchmarks/mutation_report.py --save-before  # record the current results as the baseline
    python benchmarks/mutation_report.py --attribute    # also name the test that now kills each
                                                        # baseline survivor (one pytest session)

The baseline (``results/mutation_before.json``) is the score of the pure core before the tests
written for mutation testing; the report shows it next to the current score. Every mutant that
survived the baseline, and every one that survives now, is listed with what became of it: the test
that kills it now (``results/mutation_killers.json``, written by ``--attribute``), or why it is
equivalent (``mutation_notes.toml``: reviewed by hand, keyed by mutmut's mutant name).
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
KILLERS = HERE / "results" / "mutation_killers.json"
NOTES = HERE / "mutation_notes.toml"
RUNTIME = HERE / "results" / "mutation_runtime.txt"

MODULES = ["scheduler", "envsubst", "graph", "readiness", "runtimes/dockerargs"]
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


def save_before() -> None:
    os.chdir(ROOT)
    results = load_results()
    data: dict[str, Any] = {"modules": {}, "open": {}}
    for mod, res in results.items():
        data["modules"][mod] = counts(res)
        data["open"][mod] = {k: {"status": s, "diff": diff_of(k, mod)}
                             for k, s in sorted(res.items()) if s != "killed"}
    BEFORE.parent.mkdir(exist_ok=True)
    BEFORE.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"baseline saved to {BEFORE.relative_to(ROOT)}")


def attribute(names: list[str]) -> dict[str, str]:
    """For each mutant, the first test that fails with it active (empty when none does).

    One pytest session inside ``mutants/``: mutmut's trampolines pick the active mutant from
    ``MUTANT_UNDER_TEST`` at each call, so each test is simply run again per mutant, limited to the
    tests mutmut recorded as reaching the mutated function.
    """
    import pytest
    from _pytest.runner import runtestprotocol

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    stats = json.loads((ROOT / "mutants" / "mutmut-stats.json").read_text())["tests_by_mangled_function_name"]
    found: dict[str, str] = {}

    class Plugin:
        @pytest.hookimpl(tryfirst=True)
        def pytest_runtestloop(self, session: pytest.Session) -> bool:
            by_test: dict[str, list[pytest.Item]] = {}
            for item in session.items:
                by_test.setdefault(item.nodeid.split("[")[0], []).append(item)
            for name in names:
                func = name.rsplit("__mutmut_", 1)[0]
                tests = sorted(stats.get(func, ()))
                os.environ["MUTANT_UNDER_TEST"] = name
                found[name] = ""
                for test in tests:
                    if any(r.failed for item in by_test.get(test, ())
                           for r in runtestprotocol(item, nextitem=None, log=False)):
                        found[name] = test
                        break
            os.environ.pop("MUTANT_UNDER_TEST", None)
            return True

    cwd = Path.cwd()
    os.chdir(ROOT / "mutants")
    # the mutated package, not the original, must be imported (as mutmut itself arranges)
    sys.path[:] = [str(ROOT / "mutants"), *(p for p in sys.path if Path(p or ".").resolve() != ROOT)]
    try:
        pytest.main([*cfg["pytest_add_cli_args_test_selection"], *cfg.get("pytest_add_cli_args", []),
                     "-p", "no:randomly", "-q"], plugins=[Plugin()])
    finally:
        os.chdir(cwd)
    return found


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "—"


def fence(text: str) -> str:
    return "```diff\n" + text + "\n```"


def write_report() -> None:
    os.chdir(ROOT)
    results = load_results()
    before = json.loads(BEFORE.read_text()) if BEFORE.exists() else {"modules": {}, "open": {}}
    killers: dict[str, str] = json.loads(KILLERS.read_text()) if KILLERS.exists() else {}
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
        f"Runtime of the last `make mutate` on the 2-core machine: {runtime}.",
        "",
        "## Score per module",
        "",
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

    lines += [
        "",
        "## Mutants that survive now",
        "",
        "Each was reviewed; none changes behaviour that a test could observe, for the reason given.",
        "",
    ]
    unreviewed = 0
    for mod in MODULES:
        open_now = {k: s for k, s in sorted(results[mod].items()) if s not in ("killed", "timeout")}
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
    if not any(s not in ("killed", "timeout") for res in results.values() for s in res.values()):
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
                how = f"killed by `{killers[name]}`" if killers.get(name) else "killed"
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
    ap.add_argument("--save-before", action="store_true", help="record the current results as the baseline")
    ap.add_argument("--attribute", action="store_true",
                    help="find the test that kills each baseline survivor (writes results/mutation_killers.json)")
    args = ap.parse_args()
    if args.save_before:
        save_before()
        return
    if args.attribute:
        os.chdir(ROOT)
        results = load_results()
        before = json.loads(BEFORE.read_text())
        names = [n for mod in MODULES for n in before["open"].get(mod, {}) if results[mod].get(n) == "killed"]
        found = attribute(names)
        KILLERS.write_text(json.dumps(dict(sorted(found.items())), indent=1, ensure_ascii=False) + "\n")
        print(f"attributed {sum(1 for v in found.values() if v)} of {len(names)} kills")
    write_report()


if __name__ == "__main__":
    main()
