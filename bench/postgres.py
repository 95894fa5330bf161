"""A throwaway PostgreSQL cluster on a loopback port, for benchmarks and tests.

``throwaway_cluster()`` runs Debian's ``initdb`` and ``pg_ctl`` (``/usr/lib/postgresql/*/bin``,
from the ``postgresql`` package that ``make system-packages`` installs; the packaged service
itself is never started) into a fresh temporary directory, starts the server listening on
``127.0.0.1`` only, on a free port, with its unix socket inside that directory, creates one
database, and yields a `Cluster` with the SQLAlchemy URL to reach it. On exit the server is
stopped and the directory deleted, whatever happened inside the block.

PostgreSQL refuses to run as root: under root the binaries run as the ``postgres`` OS user
(``runuser``) and the directory is handed to that user; any other user runs them directly.
Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the
data is thrown away anyway, and a crash only loses a cluster nobody keeps.

Usage::

    with throwaway_cluster() as cluster:
        engine = make_engine(cluster.url)
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_SETTINGS",
    "Cluster",
    "PostgresUnavailableError",
    "find_bin_dir",
    "new_database",
    "throwaway_cluster",
]

# Where Debian installs each major version's server binaries.
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# Overrides the search, e.g. for a PostgreSQL built elsewhere.
BIN_DIR_ENV = "MEDIAMILL_PG_BIN"
# The OS user the server runs as when we are root.
SERVER_USER = "postgres"
# The superuser initdb creates; trusted on the loopback, no password.
SUPERUSER = "postgres"

# Settings for a cluster whose data does not matter; callers add or override their own.
DEFAULT_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # A handful of clients at most; a small number keeps shared memory small too.
    "max_connections": "50",
}


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries here, or the cluster would not start."""


@dataclass(frozen=True)
class Cluster:
    """A running throwaway cluster and how to reach its database."""

    host: str
    port: int
    user: str
    database: str
    directory: Path
    """The temporary directory holding the data directory, the socket and the log."""

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the database, for psycopg 3."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def conninfo(self) -> str:
        """The libpq connection string of the database, for psycopg directly."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.database}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        """The server's log: where to look when a statement or the start-up fails."""
        return self.directory / "server.log"


def find_bin_dir() -> Path:
    """The directory with ``initdb`` and ``pg_ctl``: ``$MEDIAMILL_PG_BIN``, else Debian's
    newest ``/usr/lib/postgresql/<major>/bin``, else wherever ``PATH`` has them."""
    candidates: list[Path] = []
    if os.environ.get(BIN_DIR_ENV):
        candidates.append(Path(os.environ[BIN_DIR_ENV]))
    debian = Path(DEBIAN_BIN_GLOB).parent.parent
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.replace(".", "").isdigit()]
        for version in sorted(versions, key=lambda p: float(p.name), reverse=True):
            candidates.append(version / "bin")
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    raise PostgresUnavailableError(
        f"no PostgreSQL server binaries (initdb, pg_ctl) in ${BIN_DIR_ENV}, {DEBIAN_BIN_GLOB} "
        "or PATH: install the Debian package `postgresql` (make system-packages)"
    )


def free_port() -> int:
    """A TCP port on the loopback nobody listens on right now (another may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def throwaway_cluster(
    database: str = "mediamill",
    *,
    settings: Mapping[str, str] | None = None,
    start_timeout: float = 60.0,
) -> Iterator[Cluster]:
    """Start a fresh cluster with one empty ``database``; stop and delete it on exit.

    ``settings`` are written to the cluster's configuration on top of `DEFAULT_SETTINGS`
    (e.g. ``{"shared_buffers": "512MB"}``). Raises `PostgresUnavailableError` when there are no
    binaries or the server does not start (the message carries the end of its log).
    """
    bin_dir = find_bin_dir()
    run_as = _server_user()
    directory = Path(tempfile.mkdtemp(prefix="mediamill-pg-"))
    cluster: Cluster | None = None
    try:
        (directory / "socket").mkdir()
        if run_as is not None:
            _give_to(directory, run_as)
        _run(
            run_as,
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(directory / "data"),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
                "--no-instructions",
            ],
        )
        config = {**DEFAULT_SETTINGS, **(settings or {})}
        config["listen_addresses"] = "'127.0.0.1'"
        config["unix_socket_directories"] = f"'{directory / 'socket'}'"
        # Two attempts: the free port may be taken between choosing it and binding it.
        for attempt in range(2):
            port = free_port()
            candidate = Cluster("127.0.0.1", port, SUPERUSER, database, directory)
            _write_config(candidate, {**config, "port": str(port)})
            try:
                _run(
                    run_as,
                    [
                        str(bin_dir / "pg_ctl"),
                        "--pgdata",
                        str(candidate.data_dir),
                        "--log",
                        str(candidate.log_file),
                        "--wait",
                        "--timeout",
                        str(int(start_timeout)),
                        "start",
                    ],
                )
            except PostgresUnavailableError:
                if attempt == 1:
                    raise
                continue
            cluster = candidate
            break
        assert cluster is not None
        _create_database(cluster)
        yield cluster
    finally:
        if cluster is not None:
            _stop(bin_dir, run_as, cluster)
        shutil.rmtree(directory, ignore_errors=True)


def _server_user() -> pwd.struct_passwd | None:
    """The OS user to run the server as: ``postgres`` under root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailableError(
            f"running as root, and there is no {SERVER_USER!r} OS user to run PostgreSQL as "
            "(the Debian package `postgresql` creates it)"
        ) from None


def _give_to(directory: Path, user: pwd.struct_passwd) -> None:
    for path in (directory, *directory.rglob("*")):
        os.chown(path, user.pw_uid, user.pw_gid)


def _run(run_as: pwd.struct_passwd | None, args: list[str]) -> None:
    command = args if run_as is None else ["runuser", "-u", run_as.pw_name, "--", *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd="/", check=False)
    if done.returncode != 0:
        log = ""
        if "--log" in args:
            log_path = Path(args[args.index("--log") + 1])
            log = _tail(log_path)
        raise PostgresUnavailableError(
            f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()}"
            + (f"\nserver log:\n{log}" if log else "")
        )


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _write_config(cluster: Cluster, settings: Mapping[str, str]) -> None:
    """Settings go to postgresql.auto.conf, which wins over postgresql.conf."""
    text = "".join(f"{name} = {_quoted(value)}\n" for name, value in settings.items())
    # Rewritten, not appended: a retry on another port replaces the first attempt's port.
    # Writing an existing file keeps its owner (the server user).
    (cluster.data_dir / "postgresql.auto.conf").write_text(text)


def _quoted(value: str) -> str:
    if value.startswith("'") or value.replace(".", "").replace("-", "").isalnum():
        return value
    return "'" + value.replace("'", "''") + "'"


def _create_database(cluster: Cluster) -> None:
    import psycopg
    from psycopg import sql

    maintenance = f"host={cluster.host} port={cluster.port} user={cluster.user} dbname=postgres"
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=10) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(cluster.database)))


def new_database(url: str, name: str) -> str:
    """Create database ``name`` beside the one ``url`` names (same server); its URL.

    A second catalog in a running cluster costs a ``CREATE DATABASE``, not a new cluster.
    """
    import psycopg
    import sqlalchemy as sa
    from psycopg import sql

    parsed = sa.make_url(url)
    maintenance = parsed.set(drivername="postgresql", database="postgres")
    conninfo = maintenance.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return parsed.set(database=name).render_as_string(hide_password=False)


def _stop(bin_dir: Path, run_as: pwd.struct_passwd | None, cluster: Cluster) -> None:
    """Stop at once (nothing to flush: the data is deleted next); kill if pg_ctl cannot."""
    try:
        _run(
            run_as,
            [
                str(bin_dir / "pg_ctl"),
                "--pgdata",
                str(cluster.data_dir),
                "--mode",
                "immediate",
                "--wait",
                "--timeout",
                "30",
                "stop",
            ],
        )
    except PostgresUnavailableError:
        _kill_postmaster(cluster)


def _kill_postmaster(cluster: Cluster) -> None:
    pid_file = cluster.data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError):
        # SIGQUIT is PostgreSQL's immediate shutdown; SIGKILL if it ignores that.
        os.kill(pid, signal.SIGQUIT)
        for _ in range(50):
            time.sleep(0.1)
            os.kill(pid, 0)
        os.kill(pid, signal.SIGKILL)
