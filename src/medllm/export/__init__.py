"""Export a trained run or any model: merged HF folder, GGUF (f16/Q8_0/Q4_0), Ollama Modelfile.

Light on import (no torch): heavy work happens inside the functions.
"""
from medllm.export.resolve import ExportError, final_stage, resolve_lineage, resolve_run_model
from medllm.export.bundle import default_sampling, export_model

__all__ = ["ExportError", "final_stage", "resolve_lineage", "resolve_run_model", "default_sampling", "export_model",
           "export_hf", "export_gguf", "write_modelfile"]


def __getattr__(name):
    # The individual exporters load lazily so `import medllm.export` stays cheap.
    if name == "export_hf":
        from medllm.export.hf import export_hf
        return export_hf
    if name == "export_gguf":
        from medllm.export.gguf_llama import export_gguf
        return export_gguf
    if name == "write_modelfile":
        from medllm.export.ollama import write_modelfile
        return write_modelfile
    raise AttributeError(name)
