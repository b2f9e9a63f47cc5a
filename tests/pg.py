"""A throwaway PostgreSQL server on loopback for the multi-worker tests (Debian's postgresql).

The server runs from a temporary data directory on a free port and is stopped afterwards. As root
it runs as the ``postgres`` system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["postgres_bin", "running_postgres"]


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str]) -> None:
    done = subprocess.run(_as_owner(cmd), capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a server; yield a SQLAlchemy URL of an empty database; stop and remove it."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    # Its own folder under /tmp: the postgres user cannot enter pytest's private temp folders.
    workdir = Path(tempfile.mkdtemp(prefix="split-opt-pg-"))
    data = workdir / "pgdata"
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
    port = _free_port()
    subprocess.run(
        _as_owner([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off"
    subprocess.run(
        _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(workdir / "log"), "start"]),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            _as_owner([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "splitopt"]),
            check=True,
            capture_output=True,
        )
        # The plain URL the README gives: SQLAlchemy picks psycopg 3, which split-opt[postgres] installs.
        yield f"postgresql://postgres@127.0.0.1:{port}/splitopt"
    finally:
        subprocess.run(
            _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
