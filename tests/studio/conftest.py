"""Studio fixtures: a key file, an in-process TestClient over a temporary runs folder."""
from __future__ import annotations

import pytest


@pytest.fixture()
def key_file(tmp_path):
    from medllm.serve.security import add_key

    path = tmp_path / "keys.txt"
    return path, add_key(path, "dr-lee")


@pytest.fixture()
def studio_client(tmp_path):
    """make(keys=None, audit=None) -> TestClient over tmp_path/runs."""
    from fastapi.testclient import TestClient

    from medllm.studio.app import create_studio_app

    made = []

    def make(**kw):
        app = create_studio_app(tmp_path / "runs", **kw)
        c = TestClient(app, raise_server_exceptions=False)
        made.append((c, app))
        return c

    yield make
    for c, app in made:
        c.close()
        app.state.launcher.close()
        app.state.chat.stop()
