"""medllm: build, evaluate and privately deploy a medical LLM, offline."""
from medllm import offline as _offline  # noqa: F401  (sets offline env before anything else)

__version__ = "0.1.0"
