"""Data in, clean de-identified mixtures out: ``load_source`` turns any supported file,
folder or ``builtin:demo/<kind>`` set into a canonical ``datasets.Dataset`` (see docs/architecture.md)."""
from medllm.data.loader import Loaded, load_source
from medllm.data.problems import DataError, Problem

__all__ = ["DataError", "Loaded", "Problem", "load_source"]
