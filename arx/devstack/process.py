"""Run the child processes of the dev stack, and fail with their own words.

``ManagedProcess`` starts a long-running service with stdout and stderr going
to a log file, polls a readiness probe until a deadline, and stops it with
SIGTERM, then SIGKILL if it lingers. ``run_command`` runs a short tool to
completion. Both raise ``DevstackError`` on failure with the tail of what the
program printed, so a broken start-up explains itself without opening a file.

    DevstackError (RuntimeError)      a service cannot be found, set up or stopped
    └── ReadinessError                 it started but never became ready
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

TAIL_LINES = 40


class DevstackError(RuntimeError):
    """A local service could not be found, set up, started or stopped."""


class ReadinessError(DevstackError):
    """A service was started but did not pass its readiness probe in time."""


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """Return the last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """Return the last ``lines`` lines of the file at ``path`` (empty if unreadable)."""
    try:
        return tail(path.read_text(encoding="utf-8", errors="replace"), lines)
    except OSError:
        return ""


def run_command(
    argv: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> str:
    """Run ``argv`` to completion and return its stdout.

    ``user`` runs the command as that OS user (only possible as root; the
    supplementary groups become that user's own, not root's). On a non-zero
    exit or a timeout, raise ``DevstackError`` naming ``what`` was attempted
    and quoting the tail of the program's output.
    """
    uid, gid, groups = _identity(user)
    try:
        done = subprocess.run(
            [os.fspath(a) for a in argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            check=False,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
    except subprocess.TimeoutExpired as exc:
        raise DevstackError(f"{what}: timed out after {timeout:.0f} s") from exc
    except OSError as exc:
        raise DevstackError(f"{what}: cannot run {os.fspath(argv[0])!r}: {exc}") from exc
    if done.returncode != 0:
        output = tail(f"{done.stdout}\n{done.stderr}")
        raise DevstackError(f"{what}: exit status {done.returncode}\n{output}")
    return done.stdout


def _identity(user: str | None) -> tuple[int | None, int | None, list[int] | None]:
    """uid, gid and supplementary groups for Popen to switch to ``user`` (all None: stay)."""
    if user is None:
        return None, None, None
    import pwd  # noqa: PLC0415 (POSIX only; imported where it is needed)

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid, os.getgrouplist(user, entry.pw_gid)


class ManagedProcess:
    """One long-running child process with a log file and a readiness probe.

    ``ready`` is polled until it returns True; an ``OSError`` from it (say, a
    refused connection) counts as "not yet". If the process exits or the
    deadline passes first, it is stopped and ``ReadinessError`` carries the
    tail of its log.
    """

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        name: str,
        log_path: Path,
        ready: Callable[[], bool],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = [os.fspath(a) for a in argv]
        self.name = name
        self.log_path = log_path
        self._ready = ready
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, timeout: float = 15.0, interval: float = 0.02) -> None:
        """Start the process and block until ``ready()`` passes or ``timeout`` elapses."""
        if self.is_running():
            raise DevstackError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            try:
                # A new session keeps a terminal's Ctrl-C from reaching the child
                # before we stop it in order.
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env,
                    cwd=self._cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise DevstackError(f"{self.name}: cannot run {self.argv[0]!r}: {exc}") from exc
        deadline = time.monotonic() + timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise ReadinessError(self._failure(f"exited with status {code} before ready"))
            if self._probe():
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise ReadinessError(self._failure(f"not ready after {timeout:.1f} s"))
            time.sleep(interval)

    def _probe(self) -> bool:
        try:
            return self._ready()
        except OSError:
            return False

    def _failure(self, reason: str) -> str:
        logged = log_tail(self.log_path) or "(log is empty)"
        command = " ".join(self.argv)
        return f"{self.name} {reason}\ncommand: {command}\nlog {self.log_path}:\n{logged}"

    def stop(self, *, timeout: float = 5.0) -> int | None:
        """Stop the process: SIGTERM, then SIGKILL after ``timeout``. Return its exit status."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
