"""``python -m medllm`` (and ``accelerate launch -m medllm run RECIPE``)."""
from medllm.cli.main import run

run()
