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
    """A target or a ``depends_on``/``members`` entry names a datum that is not in any folder.

    ``path`` and ``key`` say where the entry is written (``b00t.depends_on[2]``) when it comes
    from a datum; a name written without its type (``node``) suggests the typed datum (``node.cli``).
    """

    def __init__(self, missing: str, wanted_by: str | None, suggestions: Sequence[str] = (),
                 note: str = "", *, path: str | None = None, key: str | None = None) -> None:
        self.missing = missing
        self.wanted_by = wanted_by
        self.suggestions = list(suggestions)
        self.path = path
        self.key = key
        who = f"{wanted_by} depends on" if wanted_by else "target"
        if "." not in missing and self.suggestions and wanted_by:
            msg = f"{who} {missing!r}, written without its type"
        else:
            msg = f"{who} {missing!r}, which no datum provides"
        if self.suggestions:
            msg += f" (did you mean {', '.join(repr(s) for s in self.suggestions)}?)"
        elif "." not in missing and wanted_by:
            msg += " (write name.type, e.g. qdrant.docker)"
        if note:  # e.g. why nothing was found at all: a datum folder that does not exist
            msg += f"; {note}"
        where = ": ".join(x for x in (path, key) if x)
        super().__init__(f"{where}: {msg}" if where else msg)


class MissingDependencies(MissingDependencyError):
    """Several missing dependencies, all reported at once; ``missing``/``wanted_by`` are the first's."""

    def __init__(self, errors: Sequence[MissingDependencyError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.missing, first.wanted_by, first.suggestions, path=first.path, key=first.key)
        self.args = (f"{len(self.errors)} missing dependencies:\n" + "\n".join(f"  {e}" for e in self.errors),)

    def __str__(self) -> str:
        return str(self.args[0])


class CapabilityError(GraphError):
    """A ``[b00t.requires.<slot>]`` cannot be filled, or a ``--use SLOT=NAME`` names no provider of it.

    Every candidate is listed with why it was passed over: set the missing variable, start the
    engine, fix the broken datum, or choose a provider with ``--use SLOT=NAME``.
    """

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        if len(self.messages) == 1:
            text = self.messages[0]
        else:
            text = f"{len(self.messages)} capability problems:\n" + "\n".join(f"  {m}" for m in self.messages)
        super().__init__(text)


class PortConflictError(GraphError):
    """Two nodes of one graph publish the same host port; found before anything starts.

    Each conflict names both datums and their files: change one port, or leave one datum out.
    """

    def __init__(self, conflicts: Sequence[str]) -> None:
        self.conflicts = list(conflicts)
        if len(self.conflicts) == 1:
            text = self.conflicts[0]
        else:
            text = f"{len(self.conflicts)} host port conflicts:\n" + "\n".join(f"  {c}" for c in self.conflicts)
        super().__init__(text)


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


class EngineUnavailable(RuntimeUnavailable):
    """A named Docker engine (``[b00t] engine``, ``--engine``) cannot be reached.

    Only the nodes on that engine fail (and what depends on them); ``tried`` says which address, and
    where it was configured, so the right file or daemon gets fixed.
    """

    def __init__(self, engine: str, tried: Sequence[str], reason: str = "") -> None:
        super().__init__("docker", tried, reason)
        self.engine = engine
        self.args = (f"engine {engine} unavailable" + (f": {reason}" if reason else "")
                     + ("; tried " + ", ".join(self.tried) if self.tried else ""),)


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


class PortInUse(StartError):
    """A fixed host port the node needs is held by another program; the message names it when it can.

    Raised before anything is started for the node: stop the other program, or change the port.
    """


class PresenceError(NodeError):
    """A presence check failed: the command is missing, timed out or printed no matching version.

    The message shows the datum's ``install`` command; ``up --install-missing`` runs it.
    """


class ReadinessTimeout(NodeError):
    """The node started but its readiness probe never passed in time. Check the probe and the log."""


class NodeExited(NodeError):
    """The node's process or container exited: while starting, or after it was ready (the message says which)."""


class NodePaused(NodeExited):
    """The node's container is paused: no probe can pass, so ``up`` fails it at once. ``docker unpause`` it."""


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


class SupervisorError(B00tGraphError):
    """The detached supervisor (``b00t-graph supervise``) could not do its work: nothing of the targets
    runs to supervise (``up`` them first), it ended as soon as it started, or it did not end after SIGTERM.
    Its log (``<state dir>/supervisor/log``) says more."""
