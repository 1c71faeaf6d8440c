"""``medllm studio``: a local web UI over run folders — prepare data, launch and watch runs,
compare evaluations, chat with a run's model. FastAPI + plain HTML/JS (no CDN), sharing the
server's key store, audit log and loopback rule (see docs/studio.md)."""
