"""Experiment runners: tables of methods x datasets x seeds, their cost, and the attention figure."""

from aape_lightning.errors import TableError
from aape_lightning.experiments.table import TableSpec, format_table, run_table

__all__ = ["TableError", "TableSpec", "format_table", "run_table"]
