"""``evaluate()``: run tasks against one model, with a resumable per-example cache."""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from medllm.eval import prompts as P
from medllm.eval.loaders import TaskDataError, load_examples
from medllm.eval.metrics import summarize
from medllm.eval.scoring import LABEL_TYPES, add_corpus_scores, score_generated, score_loglik
from medllm.eval.spec import TaskSpec, load_spec
from medllm.io import atomic_write_json, atomic_write_text, sha256_text

log = logging.getLogger(__name__)
CHUNK = 32  # examples computed between cache flushes: an interrupt loses at most this many
LOGLIK_CHUNK = 256  # loglik rows are cheap; larger chunks sort into batches with less padding


def shared_data_root() -> Path:
    from medllm.paths import medllm_home  # noqa: F401  (keeps env handling in one place)

    env = os.environ.get("MEDLLM_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"


def resolve_path(spec: TaskSpec, path: str | None) -> Path | None:
    if path:
        return Path(path).expanduser()
    if spec.default_path and (shared_data_root() / spec.default_path).exists():
        return shared_data_root() / spec.default_path
    return None


class ResultCache:
    """Append-only JSONL of finished examples, keyed by a hash of (model content, dtype, mode,
    generation settings, prompt) — see ``model_content_id``. A torn
    last line (killed mid-write) is ignored, so a restarted eval continues where it stopped."""

    def __init__(self, path: Path):
        self.path = path
        self.done: dict[str, object] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.done[row["key"]] = row["raw"]
                except (json.JSONDecodeError, KeyError):
                    continue

    def add(self, rows: list[tuple[str, object]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            for key, raw in rows:
                fh.write(json.dumps({"key": key, "raw": raw}) + "\n")
                self.done[key] = raw
            fh.flush()
            os.fsync(fh.fileno())


def task_key(spec: TaskSpec, mode: str, shots: int) -> str:
    return f"{spec.name}:{mode}" + (f":{shots}shot" if shots else "")


def _effective_mode(spec: TaskSpec, mode: str) -> str:
    return mode if getattr(spec, mode) is not None else spec.modes()[0]


def _labels_for(spec: TaskSpec, examples: list[dict]) -> list[str] | None:
    if spec.type in LABEL_TYPES and spec.labels is None:  # open label set: the labels seen in the file
        return sorted({e["label"] for e in examples})
    return None


def _fewshot_pool(spec: TaskSpec, path: Path | None, examples: list[dict], shots: int, notes: list[str]):
    if not shots:
        return []
    if spec.fewshot_path and (shared_data_root() / spec.fewshot_path).exists():
        return load_examples(spec, shared_data_root() / spec.fewshot_path)
    if path is not None:
        dev = path.with_name(path.name.replace("test", "dev"))
        if dev != path and dev.exists():
            return load_examples(spec, dev)
    notes.append("few-shot exemplars drawn from the evaluated file itself (no dev file found); never the example itself")
    return examples


def even_chunks(items: list, most: int) -> list[list]:
    """``items`` in as few chunks of at most ``most`` as possible, of near-equal size: a
    generation batch runs as long as its longest answer, so a small tail batch (150 items in
    48s: 48, 48, 48, 6) costs nearly a whole batch's time."""
    if not items:
        return []
    n = -(-len(items) // max(most, 1))
    size = -(-len(items) // n)
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_task(backend_factory, spec: TaskSpec, mode: str, shots: int, path: Path | None, limit: int | None,
             out_dir: Path, *, max_new_tokens: int, seed: int, judge=None, bertscore_model: str | None = None,
             sample: str = "first") -> dict:
    t0 = time.time()
    notes: list[str] = []
    mode = _effective_mode(spec, mode)
    examples = load_examples(spec, path, limit=limit, sample=sample, seed=seed)
    if limit is not None and sample == "first" and len(examples) == limit:
        from medllm.eval.slices import first_n_problem  # a label-sorted file + first-N = one class scored

        warning = first_n_problem(examples, load_examples(spec, path))
        if warning:
            log.warning("task %s (%s): %s", spec.name, path, warning)
            notes.append("WARNING: " + warning)
    labels = _labels_for(spec, examples)
    pool = _fewshot_pool(spec, path, examples, shots, notes)
    key = task_key(spec, mode, shots)
    cache = ResultCache(out_dir / "cache" / (key.replace(":", "_") + ".jsonl"))
    backend = None

    def get_backend():
        nonlocal backend
        backend = backend or backend_factory()
        return backend

    model_id = backend_factory.model_id
    gen_tokens = (spec.generate.max_new_tokens if spec.generate and spec.generate.max_new_tokens else max_new_tokens)
    # greedy decoding; the token budget changes the answers, so it is part of the key
    gen_settings = json.dumps({"max_new_tokens": gen_tokens, "greedy": True}) if mode == "generate" else ""
    reqs, keys = [], []
    for ex in examples:
        shots_ex = P.pick_shots(pool, shots, seed, ex["id"])
        if mode == "loglik":
            req = P.loglik_request(spec, ex, shots_ex, labels)
            text = json.dumps([req.context, req.continuations])
        else:
            req = P.chat_messages(spec, ex, shots_ex, labels)
            text = json.dumps(req)
        reqs.append(req)
        keys.append(sha256_text(f"{model_id}\n{mode}\n{gen_settings}\n{text}")[:32])
    todo = [i for i, k in enumerate(keys) if k not in cache.done]
    chunk = LOGLIK_CHUNK if mode == "loglik" else max(CHUNK, getattr(backend_factory, "generate_batch_size", 0) or 0)
    for idx in even_chunks(todo, chunk):
        if mode == "loglik":
            raws = get_backend().loglik([reqs[i] for i in idx])
            raws = [[list(x) for x in r] for r in raws]
        else:
            raws = get_backend().generate([reqs[i] for i in idx], gen_tokens)
        cache.add([(keys[i], raw) for i, raw in zip(idx, raws)])
    if len(todo) < len(examples):
        notes.append(f"{len(examples) - len(todo)} of {len(examples)} examples reused from the result cache")
    records, judge_stats = [], {}
    for ex, req, k in zip(examples, reqs, keys):
        raw = cache.done[k]
        if mode == "loglik":
            records.append(score_loglik(spec, ex, raw, req.continuations, labels))
        else:
            records.append(score_generated(spec, ex, raw, labels, judge, judge_stats))
    metric_names = [m for m in spec.metrics if not (mode == "loglik" and m not in ("acc", "acc_norm", "macro_f1"))
                    and not (mode == "generate" and m == "acc_norm")]
    notes += add_corpus_scores(spec, records, metric_names, bertscore_model)
    metrics = summarize(records, metric_names, seed=seed)
    pred_rel = Path("predictions") / (key.replace(":", "_") + ".jsonl")
    atomic_write_text(out_dir / pred_rel, "".join(json.dumps(r, default=str) + "\n" for r in records))
    if spec.type == "diagnosis" and mode == "generate":  # the scorer is part of the number
        from medllm.eval.scoring import judge_description

        notes.append(judge_description(judge, judge_stats))
    return {"task": spec.name, "type": spec.type, "mode": mode, "shots": shots, "n": len(records),
            "path": str(path) if path else (f"builtin:{spec.builtin_data}" if spec.builtin_data else None),
            "metrics": metrics, "predictions": str(pred_rel), "seconds": round(time.time() - t0, 2),
            "notes": notes, **({"judge": judge_stats} if judge_stats else {})}


WEIGHT_FILES = ("*.safetensors", "*.gguf", "config.json", "generation_config.json", "adapter_config.json",
                "model.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                "special_tokens_map.json")


def _folder_content(folder: Path, depth: int = 0) -> dict:
    """sha256 of the files that decide a model's answers (weights, configs, tokenizer, chat
    template), following a lineage ``model.json`` into the base and adapter folders it names.
    Hashes are cached per process while a file's size and mtime stay the same."""
    from medllm.runs.provenance import file_sha256

    if folder.is_file():
        return {folder.name: file_sha256(folder)}
    out = {}
    for pattern in WEIGHT_FILES:
        for f in sorted(folder.glob(pattern)):
            out[f.name] = file_sha256(f)
    lineage = folder / "model.json"
    if lineage.is_file() and depth < 8:
        def walk(v):
            if isinstance(v, dict):
                for x in v.values():
                    yield from walk(x)
            elif isinstance(v, list):
                for x in v:
                    yield from walk(x)
            elif isinstance(v, str) and v:
                yield v
        try:
            refs = list(walk(json.loads(lineage.read_text())))
        except ValueError:
            refs = []
        for ref in refs:
            p = Path(ref) if Path(ref).is_absolute() else folder / ref
            if p.is_dir() and p.resolve() != folder.resolve():
                out[f"lineage:{ref}"] = _folder_content(p, depth + 1)
    return out


def model_content_id(model, adapter=None, dtype: str = "auto", api_model: str | None = None) -> str:
    """What the cache is keyed on: the model's content, not its path — so a stage retrained
    in place (same folder, new weights) is never scored with the previous model's answers.
    An HTTP endpoint can only be named (URL + model name)."""
    from medllm.eval.backends import is_endpoint

    if is_endpoint(model):
        return f"endpoint|{model}|{api_model}"
    from medllm.models import ensure_local, pick_device, pick_dtype

    folder = Path(ensure_local(model))
    parts = {"model": _folder_content(folder),
             "adapter": _folder_content(Path(adapter)) if adapter else None,
             # "auto" resolves per machine (bf16 on AMX CPUs and GPUs): the key holds what loads
             "dtype": str(pick_dtype(dtype, pick_device("auto"))).replace("torch.", "")}
    return sha256_text(json.dumps(parts, sort_keys=True))


class _BackendFactory:
    def __init__(self, model, adapter, batch_size, dtype, api_model=None, generate_batch_size=None):
        self.args = (model, adapter, batch_size, dtype, api_model)
        self.generate_batch_size = generate_batch_size
        self._model_id = None
        self.backend = None

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = model_content_id(*[self.args[i] for i in (0, 1, 3, 4)])
        return self._model_id

    def __call__(self):
        from medllm.eval.backends import make_backend

        if self.backend is None:
            model, adapter, bs, dtype, api_model = self.args
            self.backend = make_backend(model, adapter=adapter, batch_size=bs, dtype=dtype, api_model=api_model,
                                        generate_batch_size=self.generate_batch_size)
        return self.backend


def evaluate(model, tasks, out_dir, *, adapter=None, batch_size: int = 8, max_new_tokens: int = 128,
             seed: int = 1234, label: str | None = None, safety: bool = False, forgetting: dict | None = None,
             dtype: str = "auto", judge=None, api_model: str | None = None, bertscore_model: str | None = None,
             report: bool = True, safety_judge: bool = False, generate_batch_size: int | None = None) -> dict:
    """See the module docstring of ``medllm.eval`` for the returned dict. ``judge``: a backend
    object, or a model spec / endpoint URL (loaded here); ``safety_judge`` also grades the
    safety answers with it."""
    from medllm.eval.report import write_reports

    if isinstance(judge, (str, os.PathLike)):
        from medllm.eval.backends import make_backend

        judge = make_backend(judge, batch_size=batch_size)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    factory = _BackendFactory(model, adapter, batch_size, dtype, api_model, generate_batch_size)
    result = {"model": str(model), "adapter": str(adapter) if adapter else None, "label": label or Path(str(model)).name,
              "dtype": dtype, "seed": seed, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "tasks": {},
              "skipped": {}, "safety": None, "forgetting": None}
    for t in tasks:
        spec = load_spec(t.task)
        path = resolve_path(spec, t.path)
        key = task_key(spec, _effective_mode(spec, t.mode), t.shots)
        if path is not None and not path.exists() or (path is None and not spec.builtin_data):
            if t.optional:
                result["skipped"][key] = f"data not found: {path or spec.default_path}"
                continue
            raise TaskDataError(f"task '{spec.name}': data file not found: {path} ({spec.data_doc})")
        log.info("eval %s on %s", key, model)
        result["tasks"][key] = run_task(factory, spec, t.mode, t.shots, path, t.limit, out_dir,
                                        max_new_tokens=max_new_tokens, seed=seed, judge=judge,
                                        bertscore_model=bertscore_model, sample=t.sample)
    if safety:
        from medllm.eval.safety import run_safety

        result["safety"] = run_safety(factory, out_dir, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                      judge=judge if safety_judge else None)
    if forgetting:
        from medllm.eval.forgetting import run_forgetting

        result["forgetting"] = run_forgetting(factory, **forgetting)
    if factory.backend is not None:
        result["dtype"] = getattr(factory.backend, "dtype", dtype)
    atomic_write_json(out_dir / "results.json", result)
    if report:
        write_reports(result, out_dir)
    return result
