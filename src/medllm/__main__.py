"""``python -m medllm`` (and ``accelerate launch -m medllm run RECIPE``)."""
from medllm.cli.main import app

app(prog_name="medllm")
