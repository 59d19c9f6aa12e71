"""The error hierarchy, grouped by how a caller reacts.

Bad input (exit 2) is fixed by editing a datum or the command line; runtime
failures (exit 1) are fixed by looking at the service, the engine or the host.
The CLI maps each class to its exit code and prints ``str(exc)``, which is
written to be read by a person.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


class B00tGraphError(Exception):
    """Base of every error b00t-graph raises on purpose."""

    exit_code = EXIT_RUNTIME


# --- bad input: exit 2 ---------------------------------------------------------------------------


class InputError(B00tGraphError):
    """Something the user wrote is wrong: a datum, a target, an option. Fix the input and retry."""

    exit_code = EXIT_INPUT


@attrs.frozen
class Problem:
    """One thing wrong with one datum file: where, which key, what was expected."""

    path: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: {self.key}" if self.key else self.path
        return f"{where}: {self.message}"


class DatumError(InputError):
    """One or more datum files cannot be read or do not fit the model.

    Raised by loading or compiling when a datum needed for the request is broken.
    Every problem of the folder is listed at once, each naming the file and key.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems in datums:"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class EnvError(DatumError):
    """A ``${VAR}`` reference cannot be resolved, found before anything starts."""


class StateDirError(InputError):
    """The state directory (``--state-dir``, ``$B00T_GRAPH_STATE_DIR``) cannot be used: it lies under a
    file or is not writable. Point it at a folder you can write to."""


class GraphError(InputError):
    """The datums do not form a valid graph for the requested targets."""


class CycleError(GraphError):
    """Dependencies loop back on themselves; the message prints the loop."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("dependency cycle: " + " → ".join(self.cycle))


class MissingDependencyError(GraphError):
    """A target or a ``depends_on``/``members`` entry names a datum that is not in any folder."""

    def __init__(self, missing: str, wanted_by: str | None, suggestions: Sequence[str] = (),
                 note: str = "") -> None:
        self.missing = missing
        self.wanted_by = wanted_by
        self.suggestions = list(suggestions)
        who = f"{wanted_by} depends on" if wanted_by else "target"
        msg = f"{who} {missing!r}, which no datum provides"
        if self.suggestions:
            msg += f" (did you mean {', '.join(repr(s) for s in self.suggestions)}?)"
        if note:  # e.g. why nothing was found at all: a datum folder that does not exist
            msg += f"; {note}"
        super().__init__(msg)


class AmbiguousTargetError(GraphError):
    """A short target name (``grok``) matches several datums; write ``name.type``."""


# --- runtime failures: exit 1 --------------------------------------------------------------------


class RuntimeUnavailable(B00tGraphError):
    """The runtime a node needs cannot be reached (no Docker engine, no socket).

    ``tried`` lists what was attempted so the user can fix the right thing.
    """

    def __init__(self, runtime: str, tried: Sequence[str], reason: str = "") -> None:
        self.runtime = runtime
        self.tried = list(tried)
        msg = f"{runtime} runtime unavailable"
        if reason:
            msg += f": {reason}"
        if self.tried:
            msg += "; tried " + ", ".join(self.tried)
        super().__init__(msg)


class NodeError(B00tGraphError):
    """A node failed; ``node`` is its identity, ``log_tail`` its last log lines if any."""

    def __init__(self, node: str, message: str, log_tail: str = "") -> None:
        self.node = node
        self.reason = message
        self.log_tail = log_tail
        text = f"{node}: {message}"
        if log_tail.strip():
            tail = "\n".join("    " + line for line in log_tail.rstrip().splitlines())
            text += f"\n  last log lines:\n{tail}"
        super().__init__(text)


class StartError(NodeError):
    """The runtime could not create or start the node (bad image, bad command, engine refused)."""


class ConflictError(StartError):
    """Something b00t-graph did not create already holds the node's name; it is left untouched."""


class ReadinessTimeout(NodeError):
    """The node started but its readiness probe never passed in time. Check the probe and the log."""


class NodeExited(NodeError):
    """The node's process or container exited while it was starting or being waited on."""


class StopError(NodeError):
    """The runtime could not stop or remove the node."""


class UpFailed(B00tGraphError):
    """``up``/``ensure`` finished with failed nodes; ``failures`` maps node → its error."""

    def __init__(self, failures: dict[str, B00tGraphError], skipped: dict[str, str]) -> None:
        self.failures = failures
        self.skipped = skipped
        lines = [f"{len(failures)} node(s) failed" + (f", {len(skipped)} skipped" if skipped else "")]
        for err in failures.values():
            lines.append(f"  ✗ {err}")
        for node, why in skipped.items():
            lines.append(f"  - {node}: skipped ({why})")
        super().__init__("\n".join(lines))


class LockTimeout(B00tGraphError):
    """Another b00t-graph process held a node's lock for too long."""
