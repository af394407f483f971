"""A background server process with a pid file and a log file under one run directory."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from crypto_platform.errors import StackError

log = logging.getLogger(__name__)


def process_alive(pid: int) -> bool:
    """Tell whether `pid` runs, reaping it first if it is our own exited child (a zombie)."""
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z" or _threads_running(pid)


def _threads_running(pid: int) -> bool:
    """Whether a zombie leader's other threads still run (its ports and files still open).

    A process whose main thread has exited shows as a zombie until its last thread ends:
    the broker does so while a thread still saves its state, its port still listening.
    """
    try:
        tasks = [task for task in Path(f"/proc/{pid}/task").iterdir() if task.name != str(pid)]
    except OSError:
        return False
    for task in tasks:
        try:
            if (task / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                return True
        except (OSError, IndexError):
            continue
    return False


def session_processes(session_ids: Collection[int]) -> list[psutil.Process]:
    """Every live process of these sessions: children outlive their parent, not their session."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) in session_ids and process_alive(process.pid):
                found.append(process)
        except (OSError, psutil.Error):
            continue
    return found


def _outlast(sessions: set[int], timeout: float) -> list[psutil.Process]:
    """Wait up to `timeout` s for the sessions to end; return what still runs."""
    deadline = time.monotonic() + timeout
    while (members := session_processes(sessions)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return members


def stop_sessions(leaders: Sequence[int], grace: float) -> int:
    """Wait up to `grace` s for the leaders' sessions to end, then SIGTERM and SIGKILL the rest.

    Returns how many processes needed SIGKILL. Zombies count as ended (their parent reaps)
    once their last thread has.
    """
    sessions = set(leaders)
    left = _outlast(sessions, grace)
    for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 2.0)):
        if not left:
            return 0
        for process in left:
            with contextlib.suppress(psutil.Error):
                process.send_signal(sig)
        killed = len(left)
        left = _outlast(sessions, wait)
    return killed


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether something already listens on (or holds) `host:port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def port_holders(port: int) -> list[str]:
    """Who holds local `port`, as "pid N (name, STATUS)", for an error a user can act on."""
    holders = set()
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port:
                with contextlib.suppress(psutil.Error):
                    name = psutil.Process(conn.pid).name() if conn.pid else "unknown"
                    holders.add(f"pid {conn.pid} ({name}, {conn.status})")
    return sorted(holders)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Tell whether a TCP connection to `host:port` is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_for_exec(process: subprocess.Popen[bytes], argv: list[str], timeout: float = 10) -> None:
    """Wait until the child runs `argv`: until then it shows our command line, or none.

    A pid file written earlier would be judged foreign by `ServerProcess.pid` (which
    compares command lines) if read in that instant, and the server taken for dead.
    """
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(process.pid).cmdline() == argv:
                return
        time.sleep(0.005)


@dataclass(frozen=True)
class ServerProcess:
    """One long-running server: `<run_dir>/<name>.pid` and `<run_dir>/<name>.log`."""

    name: str
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our running server, or None (a stale pid file is removed).

        A pid file only names a number: after a reboot (or a long time) that number can
        belong to an unrelated process. It counts as ours only when the process has the
        start time and command line recorded when we started it.
        """
        try:
            record = json.loads(self.pid_file.read_text())
            pid, started, argv = record["pid"], record["create_time"], record["cmdline"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError):
            self._forget(someone_else=True)
            return None
        try:
            process = psutil.Process(pid)
            foreign = abs(process.create_time() - started) >= 0.1 or process.cmdline() != argv
        except psutil.NoSuchProcess:
            foreign = False  # gone: a plain stale file
        except psutil.Error:
            foreign = True  # not even readable by us
        if not foreign and process_alive(pid):
            return int(pid)
        self._forget(someone_else=foreign)
        return None

    def _forget(self, *, someone_else: bool) -> None:
        """Remove a pid file that names no server of ours; say so if it names another process."""
        if someone_else:
            log.warning(
                f"{self.name}: {self.pid_file} names a process this stack did not start "
                "(a reused pid, or an old pid file): file removed, that process left alone"
            )
        self.pid_file.unlink(missing_ok=True)

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        """Start `argv` in its own session (so it outlives us), logging to the log file."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=dict(env) if env is not None else None,
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as error:
                raise StackError(f"{self.name}: cannot run {argv[0]}: {error}") from None
        _wait_for_exec(process, list(argv))
        record = {
            "pid": process.pid,
            "create_time": psutil.Process(process.pid).create_time(),
            "cmdline": list(argv),
        }
        self.pid_file.write_text(json.dumps(record))
        return process.pid

    def stop(self, timeout: float = 20.0) -> bool:
        """SIGTERM the server's process group, SIGKILL it after `timeout`; True if it ran.

        Only a process `pid()` recognises as ours gets a signal.
        """
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while process_alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the log, for error messages."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log yet)"
        return "\n".join(text.rstrip().splitlines()[-lines:])
