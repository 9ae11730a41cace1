"""The plugin packages, whose classes YAML and the command line may name by their short name (``AAPEHead``)."""

from __future__ import annotations

from importlib import import_module

# Packages whose classes YAML may name by their short name (each lists them in ``__all__``).
PLUGIN_PACKAGES = ("aape_lightning.tasks", "aape_lightning.heads", "aape_lightning.core", "aape_lightning.data",
                   "aape_lightning.demo", "aape_lightning.callbacks")


def load_plugins() -> None:
    """Import every class the plugin packages export: jsonargparse resolves short names among loaded subclasses."""
    for package in PLUGIN_PACKAGES:
        module = import_module(package)
        for name in module.__all__:
            getattr(module, name)


def known_classes() -> dict[str, list[str]]:
    """Short names YAML and the command line accept, per kind (from each subpackage's ``__all__``)."""
    core, data, demo, heads, tasks = (import_module(f"aape_lightning.{n}") for n in ("core", "data", "demo", "heads", "tasks"))

    def names(module, base: type) -> list[str]:
        return sorted(n for n in module.__all__ if isinstance(getattr(module, n), type)
                      and issubclass(getattr(module, n), base) and getattr(module, n) is not base)

    return {
        "tasks": names(tasks, tasks.FrozenBackboneTask),
        "heads": names(heads, heads.ClassificationHead),
        "aggregators": names(core, core.Aggregator),
        "readers": names(data, data.DatasetReader) + names(demo, data.DatasetReader),
    }
