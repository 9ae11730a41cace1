"""Experiment runners: the table of methods x datasets x seeds."""

from aape_lightning.errors import TableError
from aape_lightning.experiments.table import format_table, run_table

__all__ = ["TableError", "format_table", "run_table"]
