"""`metaaug summarize` given bad input: usage errors and a summary file that is not a file are
one `metaaug: error:` line each, exit code 2 (argparse's own two lines and an
IsADirectoryError traceback before)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Runner, assert_one_line_error


def _sweep(root: Path) -> Path:
    """The least a sweep folder holds: one job folder whose metrics.json is a failed trial."""
    (root / "0").mkdir(parents=True)
    (root / "0" / "metrics.json").write_text("[1, 2, 3]")
    return root


def test_summarize_usage_errors_are_one_line(refused: Runner, tmp_path: Path) -> None:
    fix = "summarize takes one multirun folder: metaaug summarize [--force] DIR"
    proc = refused("summarize")
    assert_one_line_error(proc, fix, "multirun_dir")
    assert "usage:" not in proc.stderr
    proc = refused("summarize", str(tmp_path / "a"), str(tmp_path / "b"))
    assert_one_line_error(proc, fix, f"unrecognized arguments: {tmp_path / 'b'}")
    assert_one_line_error(refused("summarize", "--forse", str(tmp_path)), fix, "--forse")
    proc = refused("summarize", "--help")  # help is no error
    assert proc.returncode == 0 and "--force" in proc.stdout and proc.stderr == ""


def test_a_summary_file_that_is_a_folder_is_refused(refused: Runner, tmp_path: Path) -> None:
    sweep = _sweep(tmp_path / "sweep")
    (sweep / "summary.csv" / "inner").mkdir(parents=True)
    for force in ((), ("--force",)):
        proc = refused("summarize", *force, str(sweep))
        assert_one_line_error(
            proc, f"'{sweep / 'summary.csv'}' is a folder, not a summary file", "move it aside"
        )
        assert (sweep / "summary.csv" / "inner").is_dir()  # nothing touched
        assert not (sweep / "summary.md").exists()
    (sweep / "summary.csv" / "inner").rmdir()
    (sweep / "summary.csv").rmdir()
    proc = refused("summarize", str(sweep))  # what the message says: then it is written
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (sweep / "summary.csv").is_file()
