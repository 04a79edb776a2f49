"""Before the tests: is PostgreSQL reachable, is Redis reachable? If not, say which and how to start it."""

import os
import socket
import sys
from urllib.parse import urlsplit

HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
}


def reachable(url: str, default_port: int) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=3):
            return host, port, True
    except OSError:
        return host, port, False


def main() -> int:
    failures = []
    for name, variable, default_port in (("PostgreSQL", "DATABASE_URL", 5432), ("Redis", "REDIS_URL", 6379)):
        url = os.environ.get(variable, "")
        if not url:
            failures.append(f"{variable} is not set")
            continue
        host, port, ok = reachable(url, default_port)
        if not ok:
            failures.append(f"{name} is not answering at {host}:{port} ({variable}). Start it with:\n    {HINTS[name]}")
    for failure in failures:
        print(f"preflight: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
