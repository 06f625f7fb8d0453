"""Before the suite: say plainly which service the tests need and cannot reach."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from urllib.parse import urlparse


def reachable(url: str, default_port: int) -> str | None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as exc:
        return f"{host}:{port} ({exc.strerror or exc})"


def ensure_database(url: str) -> None:
    """Create the named database when missing (the tests then make their own test_ copy)."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/") or "sbs"
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def main() -> int:
    problems = []
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith("postgres"):
        failure = reachable(database_url, 5432)
        if failure:
            problems.append(
                f"PostgreSQL is not reachable at {failure}: start it, or set TEST_DATABASE_URL"
            )
        else:
            ensure_database(database_url)
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        failure = reachable(redis_url, 6379)
        if failure:
            problems.append(f"Redis is not reachable at {failure}: start it, or set TEST_REDIS_URL")
    chromium = os.environ.get("SBS_CHROMIUM", "/usr/bin/chromium")
    if not shutil.which(chromium):
        problems.append(
            f"Chromium is missing at {chromium}: `apt-get install chromium` (browser tests)"
        )
    for problem in problems:
        print(f"missing: {problem}", file=sys.stderr)
    if problems:
        print("The test suite needs the services above; nothing was run.", file=sys.stderr)
        return 1
    print("services: PostgreSQL, Redis and Chromium reachable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
