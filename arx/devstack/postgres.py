"""A private PostgreSQL cluster on loopback, for the demo and the tests.

``LocalPostgres`` owns one directory tree, the parent of its data directory::

    <base>/                     0755; created here
    ├── data/                   the cluster (PGDATA), 0700, owned by the cluster owner
    ├── arx_admin.password      0600, owned by whoever runs this code
    ├── cluster.json            {"port": N}: a restarted demo finds its cluster again
    ├── postgres.log            server log (pg_ctl -l)
    └── run/                    Unix socket directory (TCP on 127.0.0.1 is what ARX uses)

Guarantees: the server listens on 127.0.0.1 only; TCP logins need a
SCRAM-SHA-256 password; the superuser is ``arx_admin`` with a random password
that exists only in the 0600 file; ``fsync`` is off only when ``fast=True``
(tests), never for the demo.

Running as root: initdb and postgres refuse to run as root, so the cluster is
owned by, and every server command runs as, the ``postgres`` OS user (or the
existing owner of the data directory). That user must be able to traverse every
ancestor of the data directory; directories created here get mode 0755, and a
pre-existing ancestor that it cannot enter (``/root``, or pytest's 0700
``/tmp/pytest-of-root``) is reported with the fix rather than silently chmod-ed,
because widening someone else's directory is not ours to decide.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import stat
import subprocess
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Literal, Self
from urllib.parse import quote, urlsplit, urlunsplit

from arx.devstack.ports import LOOPBACK, free_port
from arx.devstack.process import DevstackError, log_tail, run_command

ADMIN_USER = "arx_admin"
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
# sun_path is 108 bytes on Linux (104 on macOS), including the trailing NUL.
_MAX_SOCKET_PATH = 103

StopMode = Literal["smart", "fast", "immediate"]


def find_pg_bindir() -> Path:
    """Return the directory holding the PostgreSQL server binaries.

    Looks at ``pg_config --bindir``, then ``/usr/lib/postgresql/<version>/bin``
    (highest version first, the Debian layout), then wherever ``initdb`` is on
    PATH. A directory counts only if it has initdb, pg_ctl and postgres: Debian's
    ``pg_config`` comes with libpq-dev and names a bindir even without a server.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    candidates.extend(
        sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    )
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in SERVER_BINARIES):
            return bindir
    raise DevstackError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; looked in "
        "`pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH. Run scripts/bootstrap.sh "
        "(as root it installs the Debian 'postgresql' package), install a PostgreSQL >= 15 "
        "server yourself, or set ARX_DATABASE_URL to a server you already run."
    )


def _version_key(bindir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name)) or (0,)


def psql_url_with(
    url: str,
    *,
    user: str | None = None,
    password: str | None = None,
    dbname: str | None = None,
) -> str:
    """Return ``url`` (a postgresql:// URL) with its user, password or database replaced.

    The new values are percent-quoted; anything not passed is kept as it was,
    including host, port and query parameters.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgresql", "postgres"}:
        raise ValueError("expected a postgresql:// URL")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        hostport = parts.netloc
    old_user, colon, old_password = userinfo.partition(":")
    new_user = quote(user, safe="") if user is not None else old_user
    if password is not None:
        new_password: str | None = quote(password, safe="")
    else:
        new_password = old_password if colon else None
    if new_password is not None and not new_user:
        raise ValueError("a password needs a user in a postgresql:// URL")
    if new_user:
        userinfo = new_user if new_password is None else f"{new_user}:{new_password}"
        netloc = f"{userinfo}@{hostport}"
    else:
        netloc = hostport
    path = "/" + quote(dbname, safe="") if dbname is not None else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


class LocalPostgres:
    """One PostgreSQL cluster in ``data_dir``, listening on ``127.0.0.1:<port>``.

    ``port=None`` reuses the port recorded beside the cluster, else picks a free
    one. ``fast=True`` turns durability off (fsync, synchronous_commit,
    full_page_writes) for test clusters that are thrown away anyway.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        fast: bool = False,
        bindir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir.absolute()
        self.base_dir = self.data_dir.parent
        self.password_file = self.base_dir / f"{ADMIN_USER}.password"
        self.state_file = self.base_dir / "cluster.json"
        self.log_path = self.base_dir / "postgres.log"
        self.socket_dir = self.base_dir / "run"
        self.fast = fast
        self._port = port
        self._bindir = bindir

    # -- identity and paths ------------------------------------------------------

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_pg_bindir()
        return self._bindir

    @property
    def owner(self) -> str | None:
        """OS user that runs the server commands; None means the current user."""
        if os.geteuid() != 0:
            return None
        with suppress(FileNotFoundError):
            uid = self.data_dir.stat().st_uid
            if uid != 0:
                import pwd  # noqa: PLC0415 (POSIX only)

                return pwd.getpwuid(uid).pw_name
        return "postgres"

    @property
    def port(self) -> int:
        """The cluster's port: as given, else as recorded, else a fresh free port."""
        if self._port is None:
            self._port = self._recorded_port() or free_port()
        return self._port

    @property
    def password(self) -> str:
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise DevstackError(
                f"no admin password at {self.password_file}; run init() first"
            ) from None

    @property
    def admin_url(self) -> str:
        """``postgresql://arx_admin:<password>@127.0.0.1:<port>/postgres``."""
        return (
            f"postgresql://{ADMIN_USER}:{quote(self.password, safe='')}"
            f"@{LOOPBACK}:{self.port}/postgres"
        )

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    # -- lifecycle ---------------------------------------------------------------

    def init(self) -> None:
        """Create the cluster with initdb: UTF8, peer for sockets, SCRAM for TCP."""
        if self.is_initialized():
            raise DevstackError(f"{self.data_dir} already holds a cluster")
        owner = self.owner
        # Check before creating anything: directories made by _make_dirs are 0755.
        existing = next(p for p in (self.base_dir, *self.base_dir.parents) if p.exists())
        check_traversable(existing, owner)
        _make_dirs(self.base_dir)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if any(self.data_dir.iterdir()):
            raise DevstackError(f"{self.data_dir} is not empty and holds no cluster")
        self._give_to_owner(self.data_dir, 0o700)

        password = secrets.token_urlsafe(24)
        _write_private(self.password_file, password + "\n")
        # initdb reads the password as the cluster owner, so it gets its own
        # short-lived copy; the kept file stays readable by us alone.
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self._give_to_owner(self.socket_dir, 0o700)
        pwfile = self.socket_dir / "initdb.pw"
        _write_private(pwfile, password + "\n")
        self._give_to_owner(pwfile, 0o600)
        try:
            self._run(
                "initdb",
                "-D",
                self.data_dir,
                "-U",
                ADMIN_USER,
                f"--pwfile={pwfile}",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                # C collation: always available and deterministic; ARX sorts nothing
                # by locale-aware text order.
                "--no-locale",
                # The data is rebuilt by a new init(), never recovered after a crash.
                "--no-sync",
                what=f"initdb {self.data_dir}",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the server and return once it accepts connections."""
        if self.is_running():
            return
        port = self.port
        self._record_port(port)
        if not self.log_path.exists():
            self.log_path.touch(mode=0o600)
        self._give_to_owner(self.log_path, 0o600)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self._give_to_owner(self.socket_dir, 0o700)
        if len(str(self.socket_dir / f".s.PGSQL.{port}")) <= _MAX_SOCKET_PATH:
            sockets = str(self.socket_dir)
        else:
            sockets = ""  # path too long for a Unix socket; TCP alone is enough for ARX
        options = [
            f"-p {port}",
            f"-k {shlex.quote(sockets)}",
            f"-c listen_addresses={LOOPBACK}",
        ]
        if self.fast:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        try:
            # pg_ctl -w returns once postmaster.pid says "ready", i.e. the server
            # accepts connections. -o is handed to a shell by pg_ctl, hence quoting.
            self._run(
                "pg_ctl",
                "start",
                "-w",
                "-t",
                str(int(timeout)),
                "-D",
                self.data_dir,
                "-l",
                self.log_path,
                "-o",
                " ".join(options),
                what=f"start PostgreSQL on {LOOPBACK}:{port}",
                timeout=timeout + 10,
            )
        except DevstackError as exc:
            logged = log_tail(self.log_path)
            raise DevstackError(f"{exc}\nserver log {self.log_path}:\n{logged}") from None

    def stop(self, mode: StopMode = "fast", *, timeout: float = 30.0) -> None:
        """Stop the server (no-op if it is not running)."""
        if not self.is_running():
            return
        self._run(
            "pg_ctl",
            "stop",
            "-w",
            "-t",
            str(int(timeout)),
            "-m",
            mode,
            "-D",
            self.data_dir,
            what=f"stop PostgreSQL in {self.data_dir}",
            timeout=timeout + 10,
        )

    def is_running(self) -> bool:
        # Cheap pre-check: without postmaster.pid no server runs on this directory.
        if not self.is_initialized() or not (self.data_dir / "postmaster.pid").exists():
            return False
        try:
            self._run("pg_ctl", "status", "-D", self.data_dir, what="pg_ctl status")
        except DevstackError:
            return False
        return True

    def postmaster_pid(self) -> int:
        """The running server's process id (line 1 of postmaster.pid)."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            raise DevstackError(f"no running server in {self.data_dir}") from None

    def ensure(self) -> Self:
        """Initialise if needed, then start if not running; keeps the recorded port."""
        if not self.is_initialized():
            self.init()
        running_port = self._running_port() if self.is_running() else None
        if running_port is not None:
            if self._port is not None and self._port != running_port:
                raise DevstackError(
                    f"the cluster in {self.data_dir} already runs on port {running_port}, "
                    f"not {self._port}; stop it first"
                )
            self._port = running_port
        else:
            self.start()
        return self

    def __enter__(self) -> Self:
        return self.ensure()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------------

    def _run(self, tool: str, *args: str | Path, what: str, timeout: float = 120.0) -> str:
        return run_command(
            [self.bindir / tool, *args],
            what=what,
            timeout=timeout,
            user=self.owner,
            # The cluster owner may not be allowed into our working directory.
            cwd=self.base_dir,
        )

    def _give_to_owner(self, path: Path, mode: int) -> None:
        os.chmod(path, mode)
        owner = self.owner
        if owner is not None:
            shutil.chown(path, user=owner, group=_primary_group(owner))

    def _recorded_port(self) -> int | None:
        try:
            port = json.loads(self.state_file.read_text(encoding="utf-8"))["port"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return port if isinstance(port, int) else None

    def _record_port(self, port: int) -> None:
        self.state_file.write_text(json.dumps({"port": port}) + "\n", encoding="utf-8")

    def _running_port(self) -> int | None:
        # postmaster.pid line 4 is the port (see PostgreSQL's pidfile.h).
        try:
            lines = (self.data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None


def _primary_group(user: str) -> int:
    import pwd  # noqa: PLC0415 (POSIX only)

    return pwd.getpwnam(user).pw_gid


def _make_dirs(path: Path) -> None:
    """mkdir -p, giving each directory created here mode 0755 whatever the umask."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        # 0755 on purpose: the cluster owner must traverse it; contents stay private.
        os.chmod(directory, 0o755)  # noqa: S103


def check_traversable(path: Path, user: str | None) -> None:
    """Raise unless ``user`` (None: ourselves) may enter ``path`` and all its ancestors."""
    if user is None:
        return
    import pwd  # noqa: PLC0415 (POSIX only)

    entry = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, entry.pw_gid))
    for directory in reversed((path, *path.parents)):
        info = directory.stat()
        if info.st_uid == entry.pw_uid:
            allowed = bool(info.st_mode & stat.S_IXUSR)
        elif info.st_gid in groups:
            allowed = bool(info.st_mode & stat.S_IXGRP)
        else:
            allowed = bool(info.st_mode & stat.S_IXOTH)
        if not allowed:
            raise DevstackError(
                f"PostgreSQL runs as the OS user {user!r} (initdb refuses root), which cannot "
                f"enter {directory} (mode {stat.S_IMODE(info.st_mode):04o}). Put the cluster "
                f"under a directory it can reach (the repository's .arx/, or /tmp), or allow "
                f"it: chmod o+x {shlex.quote(str(directory))}"
            )


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new 0600 file at ``path``, replacing any old one."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
