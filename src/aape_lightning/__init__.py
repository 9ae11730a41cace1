"""AAPE for frozen CLIP, as Lightning modules."""
__version__ = "0.1.0"
