"""The pytest plugin, driven as a user drives it: pytest in a real subprocess on a test file and datums.

Services are real local processes (the shared tiny HTTP service) that append ``start``/``term`` lines to a
mark file, so each test can count how often every service was started and stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.procutil import Reaper, alive, free_port, marks, process_datum, records, stack_datum, wait_for


def _pytest(folder: Path, state_dir: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("B00T_PYTEST_", "PYTEST_"))}
    env.pop("_B00T_Path", None)
    env["B00T_GRAPH_STATE_DIR"] = str(state_dir)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def project(tmp_path: Path, svc: Path, write_datums: Callable[..., Path], reaper: Reaper
            ) -> tuple[Path, Path, Path, dict[str, int]]:
    """A user's project: ``datums/`` with db ← api (+ a stack), a mark file, and a folder for test files."""
    mark = tmp_path / "marks.txt"
    ports = {"db": free_port(), "api": free_port()}
    datums = write_datums({
        "db.process": process_datum("db", svc, f"--mark={mark}", port=ports["db"], env={
            "DB_URL": f"http://127.0.0.1:{ports['db']}"}),
        "api.process": process_datum("api", svc, f"--mark={mark}", port=ports["api"], deps=["db.process"], env={
            "API_URL": f"http://127.0.0.1:{ports['api']}"}),
        "app.stack": stack_datum("app", ["api.process"]),
    })
    reaper.down_on_exit(["app.stack"], datums)
    reaper.mark_files.append(mark)
    tests = tmp_path / "proj"
    tests.mkdir()
    return tests, datums, mark, ports


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(textwrap.dedent(text))


def _starts(mark: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for what, name, _ in marks(mark):
        if what == "start":
            out[name] = out.get(name, 0) + 1
    return out


def _running_pids(mark: Path) -> list[int]:
    return [pid for what, _, pid in marks(mark) if what == "start" and alive(pid)]


def test_marked_tests_get_the_env_services_up_once_and_gone_after(project: tuple[Path, Path, Path, dict[str, int]],
                                                                   state_dir: Path) -> None:
    folder, datums, mark, ports = project
    _write(folder, "test_use.py", f"""
        import urllib.request, pytest

        @pytest.mark.b00t("app.stack")
        def test_one(b00t_env):
            assert b00t_env["API_URL"] == "http://127.0.0.1:{ports['api']}"
            assert urllib.request.urlopen(b00t_env["DB_URL"] + "/health").status == 200

        @pytest.mark.b00t("app.stack")
        def test_two(b00t_env):
            assert urllib.request.urlopen(b00t_env["API_URL"] + "/health").status == 200

        def test_unmarked_gets_nothing(request):
            assert request.node.get_closest_marker("b00t") is None
    """)
    res = _pytest(folder, state_dir, "--b00t-datums", str(datums))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 passed" in res.stdout
    assert _starts(mark) == {"db": 1, "api": 1}  # once for both tests
    assert _running_pids(mark) == []  # gone after the session
    assert records(state_dir) == {}


def test_what_ran_before_the_session_stays(project: tuple[Path, Path, Path, dict[str, int]], state_dir: Path) -> None:
    folder, datums, _, _ = project
    _write(folder, "test_db.py", """
        import pytest

        @pytest.mark.b00t("db.process")
        def test_db(b00t_env):
            assert "DB_URL" in b00t_env
    """)
    _write(folder, "test_app.py", """
        import pytest

        @pytest.mark.b00t("app.stack")
        def test_app(b00t_env):
            assert "API_URL" in b00t_env
    """)
    first = _pytest(folder, state_dir, "--b00t-datums", str(datums), "--b00t-keep", "test_db.py")
    assert first.returncode == 0, first.stdout + first.stderr
    db_pid = records(state_dir)["db.process"]["pid"]
    second = _pytest(folder, state_dir, "--b00t-datums", str(datums), "test_app.py")
    assert second.returncode == 0, second.stdout + second.stderr
    assert alive(db_pid)  # started before this session: not this session's to stop
    assert set(records(state_dir)) == {"db.process"}  # api, started by the session, is gone


def test_keep_leaves_services_for_the_next_run_which_reuses_them(
        project: tuple[Path, Path, Path, dict[str, int]], state_dir: Path) -> None:
    folder, datums, mark, _ = project
    _write(folder, "test_k.py", """
        import pytest

        @pytest.mark.b00t("app.stack")
        def test_k(b00t_env):
            assert b00t_env
    """)
    for _ in range(2):
        res = _pytest(folder, state_dir, "--b00t-datums", str(datums), "--b00t-keep")
        assert res.returncode == 0, res.stdout + res.stderr
    assert _starts(mark) == {"db": 1, "api": 1}  # the second run reused them
    assert len(_running_pids(mark)) == 2


def test_a_session_that_dies_has_its_services_taken_down(project: tuple[Path, Path, Path, dict[str, int]],
                                                         state_dir: Path) -> None:
    folder, datums, mark, _ = project
    _write(folder, "test_die.py", """
        import os, pytest

        @pytest.mark.b00t("app.stack")
        def test_dies(b00t_env):
            os._exit(3)
    """)
    res = _pytest(folder, state_dir, "--b00t-datums", str(datums))
    assert res.returncode == 3
    assert _starts(mark) == {"db": 1, "api": 1}
    wait_for(lambda: _running_pids(mark) == [], timeout=60, what="the reaper to take the services down")
    wait_for(lambda: records(state_dir) == {}, timeout=60, what="process records removed")
    # the reaper forgets the run once everything is down: just after the last record goes
    wait_for(lambda: not list((state_dir / "pytest").glob("*/started.json")), what="the run's record removed")


def test_xdist_workers_share_one_up_and_one_down(project: tuple[Path, Path, Path, dict[str, int]],
                                                 state_dir: Path) -> None:
    folder, datums, mark, _ = project
    body = "\n".join(f"""
        @pytest.mark.b00t("app.stack")
        def test_{i}(b00t_env):
            assert urllib.request.urlopen(b00t_env["API_URL"] + "/health").status == 200
    """ for i in range(6))
    _write(folder, "test_x.py", "import urllib.request, pytest\n" + textwrap.dedent(body))
    res = _pytest(folder, state_dir, "--b00t-datums", str(datums), "-n", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "6 passed" in res.stdout
    assert _starts(mark) == {"db": 1, "api": 1}
    terms = [name for what, name, _ in marks(mark) if what == "term"]
    assert sorted(terms) == ["api", "db"]  # each taken down once
    assert _running_pids(mark) == []


def test_bad_datum_errors_the_marked_tests_only(tmp_path: Path, state_dir: Path,
                                                write_datums: Callable[..., Path]) -> None:
    datums = write_datums({"broken.process": '[b00t]\nname = "broken"\ntype = "process"\n'})
    folder = tmp_path / "p"
    folder.mkdir()
    _write(folder, "test_b.py", """
        import pytest

        @pytest.mark.b00t("broken.process")
        def test_marked(b00t_env):
            pass

        @pytest.mark.b00t("broken.process")
        def test_marked_too():
            pass

        def test_plain():
            pass
    """)
    res = _pytest(folder, state_dir, "--b00t-datums", str(datums))
    assert res.returncode == 1
    assert "1 passed, 2 errors" in res.stdout, res.stdout
    assert "b00t-graph: " in res.stdout and "b00t.command: required for a process datum" in res.stdout
    assert "Traceback" not in res.stdout


def test_services_factory_scopes(project: tuple[Path, Path, Path, dict[str, int]], state_dir: Path) -> None:
    folder, datums, mark, _ = project
    _write(folder, "test_f.py", """
        import urllib.request
        from b00t_graph.pytest import services

        db = services("db.process", scope="module")

        def test_a(db):
            assert urllib.request.urlopen(db["DB_URL"] + "/health").status == 200

        def test_b(db):
            assert "DB_URL" in db
    """)
    _write(folder, "test_g.py", """
        import os, signal
        from b00t_graph.pytest import services

        db = services("db.process", scope="module")

        def test_c(db):
            assert "DB_URL" in db
    """)
    res = _pytest(folder, state_dir, "--b00t-datums", str(datums), "-p", "no:randomly")
    assert res.returncode == 0, res.stdout + res.stderr
    assert _starts(mark) == {"db": 2}  # once per module: down after the first module, up again for the second
    assert _running_pids(mark) == []
