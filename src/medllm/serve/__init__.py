"""Private deployment: OpenAI-compatible server, web chat, security.

Imports are lazy so ``medllm --help`` does not load torch."""
from __future__ import annotations

__all__ = ["create_app", "load_served", "load_pool", "ModelPool", "ServedModel", "AuditLog", "verify_audit_log",
           "KeyStore", "add_key", "SafetyLayer"]

_WHERE = {
    "create_app": "medllm.serve.app", "load_served": "medllm.serve.models", "load_pool": "medllm.serve.models", "ModelPool": "medllm.serve.models",
    "ServedModel": "medllm.serve.models", "AuditLog": "medllm.serve.audit",
    "verify_audit_log": "medllm.serve.audit", "KeyStore": "medllm.serve.security",
    "add_key": "medllm.serve.security", "SafetyLayer": "medllm.serve.safety",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
