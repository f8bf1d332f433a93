"""The command line: a database that cannot be opened is one clear line, never a traceback."""

import subprocess
import sys

import pytest

from tests.helpers import free_port_unused


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://x/y", "unsupported URL scheme 'mysql'"),
        ("postgresql://nobody:secret@127.0.0.1:{port}/x", "Connect call failed"),
    ],
)
@pytest.mark.parametrize("command", [["init"], ["demo"], ["serve"]])
def test_unopenable_database_is_explained_in_one_line(command, url, expected):
    url = url.format(port=free_port_unused())
    done = subprocess.run(
        [sys.executable, "-m", "mcp_crm", *command, "--database-url", url],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Cannot open the database" in done.stderr and expected in done.stderr
    assert "Traceback" not in done.stderr and "secret" not in done.stderr
    assert done.stdout == ""
