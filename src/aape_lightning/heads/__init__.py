"""Task heads, one subpackage per task; each re-exports its heads so YAML names stay short."""

from aape_lightning.heads.classification import *  # noqa: F403
from aape_lightning.heads.classification import __all__ as _classification

__all__ = list(_classification)
