"""Running the command line in-process, and what a clean user-facing error looks like."""

from __future__ import annotations

from sensorium.cli import main


def run_cli(args: list, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """Exit status 2, no traceback, the last line a `sensorium: error:` naming `needles`."""
    assert code == 2
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("sensorium: error: ")
    for needle in needles:
        assert needle in last, last
