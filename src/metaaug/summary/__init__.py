"""`metaaug summarize`: read a sweep's trials (`sweep`), per setting over seeds (`seeds`), and
write the CSV, Markdown and figure (`write`)."""

from metaaug.summary.sweep import Sweep, Trial, collect
from metaaug.summary.write import plot, write_csv, write_markdown

__all__ = ["Sweep", "Trial", "collect", "plot", "write_csv", "write_markdown"]
