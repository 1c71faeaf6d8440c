"""Validation: every problem in one pass with file:line, nothing silently dropped."""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from medllm.data import DataError, load_source


def _msgs(q="How is asthma treated?", a="With an inhaled corticosteroid."):
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def good(i):
    return json.dumps({"id": f"ok{i}", "messages": _msgs()})


def planted_file(tmp_path):
    """Ten defects of different kinds between good rows; returns (path, {line: expected words})."""
    lines = [good(0)]  # line 1
    expected = {}

    def add(text, why):
        lines.append(text)
        expected[len(lines)] = why
        lines.append(good(len(lines) + 1))

    add('{"id": "bad1", "messages": [', "malformed JSON")
    add(json.dumps({"id": "bad2", "text_only": "x"}), "missing field 'messages'")
    add(json.dumps({"id": "bad3", "messages": []}), "non-empty list")
    add(json.dumps({"id": "bad4", "messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "q"}]}),
        "wrong role order")
    add(json.dumps({"id": "bad5", "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                                               {"role": "assistant", "content": "c"}]}), "non-alternating")
    add(json.dumps({"id": "bad6", "messages": _msgs(a="   ")}), "empty assistant turn")
    add("@@BADBYTES@@", "non-UTF-8")
    add(json.dumps({"id": "ok0", "messages": _msgs()}), "duplicate id 'ok0'")
    add(json.dumps({"id": "bad9", "messages": _msgs(a="word " * 300)}), "over-long sample")
    add(json.dumps([1, 2, 3]), "must be a JSON object")
    data = "\n".join(lines).encode()
    data = data.replace(b"@@BADBYTES@@", b'{"id": "bad7", "messages": "caf\xe9"}')
    path = tmp_path / "planted.jsonl"
    path.write_bytes(data + b"\n")
    return path, expected


def test_ten_planted_defects_give_ten_problems_with_lines(tmp_path, tiny_tokenizer):
    path, expected = planted_file(tmp_path)
    with pytest.raises(DataError) as err:
        load_source(path, tokenizer=tiny_tokenizer, max_tokens=200)
    problems = err.value.problems
    assert len(problems) == 10
    assert {p.line: p.message for p in problems}.keys() == expected.keys()
    for p in problems:
        assert expected[p.line].lower() in p.message.lower(), (p, expected[p.line])
        assert str(p).startswith(f"{path}:{p.line}: ")
    assert all(f"{path}:{line}:" in str(err.value) for line in expected)


def test_skip_invalid_keeps_good_rows_and_writes_rejects(tmp_path, tiny_tokenizer):
    path, expected = planted_file(tmp_path)
    rejects = tmp_path / "rejects.jsonl"
    got = load_source(path, skip_invalid=True, tokenizer=tiny_tokenizer, max_tokens=200, rejects_path=rejects)
    assert len(got.dataset) == 11 and len(got.problems) == 10
    rows = [json.loads(l) for l in rejects.read_text().splitlines()]
    assert sorted(r["line"] for r in rows) == sorted(expected) and all(r["reason"] for r in rows)


def test_json_array_line_numbers_and_bad_bytes(tmp_path):
    p = tmp_path / "arr.json"
    p.write_bytes(b'[\n  {"text": "fine"},\n  {"text": "caf\xe9"},\n  {"text": ""}\n]\n')
    with pytest.raises(DataError) as err:
        load_source(p)
    assert [(x.line, "UTF-8" in x.message or "empty" in x.message) for x in err.value.problems] == [(3, True), (4, True)]


def test_cli_check_exit_codes(tmp_path):
    from medllm.cli.main import app

    path, expected = planted_file(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["data", "check", str(path)])
    assert res.exit_code == 1
    for line in expected:
        if expected[line] != "over-long sample":  # a problem only with --model/--max-tokens
            assert f"{path}:{line}:" in res.output
    out = tmp_path / "good.jsonl"
    res = runner.invoke(app, ["data", "check", str(path), "--skip-invalid", "--rejects", str(tmp_path / "r.jsonl"),
                              "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert len(out.read_text().splitlines()) == 12  # the over-long row is valid without a tokenizer
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 9


def test_streaming_path_builds_same_dataset(tmp_path, monkeypatch, jsonl):
    import medllm.data.loader as loader

    p = jsonl("big.jsonl", [{"text": f"document number {i}"} for i in range(3000)])
    small = load_source(p)
    monkeypatch.setattr(loader, "STREAM_BYTES", 10)
    big = load_source(p)
    assert big.dataset["text"] == small.dataset["text"]


def test_million_lines_stream_in_bounded_memory(tmp_path):
    """1M JSONL lines validated by streaming: peak memory stays far below what holding them would need."""
    script = textwrap.dedent(f"""
        import json, resource, sys
        import medllm
        from medllm.data.loader import iter_records
        path = {str(tmp_path / "million.jsonl")!r}
        with open(path, "w") as fh:
            for i in range(1_000_000):
                fh.write('{{"text": "line %d of a long corpus with some words in it"}}\\n' % i)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reader, records = iter_records(path)
        n = sum(1 for _ in records)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"n": n, "growth_mb": (peak - base) / 1024, "problems": len(reader.problems)}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["n"] == 1_000_000 and res["problems"] == 0
    assert res["growth_mb"] < 100, res  # the file's rows as Python dicts would take several hundred MB


def test_csv_line_numbers_survive_multiline_cells(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b'instruction,output\nq1,a1\n"q2\nspans two lines",a2\nq3,caf\xe9\nq4,\n')
    with pytest.raises(DataError) as err:
        load_source(p)
    assert [(x.line, x.message) for x in err.value.problems] == [
        (5, "non-UTF-8 bytes in this row"), (6, "empty field 'output'")]
