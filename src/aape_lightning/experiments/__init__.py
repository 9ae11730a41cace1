"""Experiment runners: the table of methods x datasets x seeds."""

from aape_lightning.experiments.table import TableError, format_table, run_table

__all__ = ["TableError", "format_table", "run_table"]
