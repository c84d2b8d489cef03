"""Tests of the reference evaluation worker's parts: the metrics, and the
dataset read from an Iceberg table (a SQL catalog on SQLite with a local
warehouse, configured through pyiceberg's environment variables as a
deployment would). Run by tests/evals.rs."""

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import worker  # noqa: E402


def test_metrics():
    rows = [{"question": "q1", "answer": "Paris"}, {"question": "q2", "answer": "4"}]
    assert worker.score("accuracy", ["It is Paris.", "five"], rows) == 0.5
    assert worker.score("exact-match", ["paris", "4"], rows) == 1.0
    assert worker.score("exact-match", ["It is Paris.", "4"], rows) == 0.5
    assert 0 < worker.score("rouge-l", ["the capital is paris", "4"], rows) < 1
    assert worker.rouge_l("a b c", "a b c") == 1.0
    assert worker.score("accuracy", ["14", "4"], [{"question": "q", "answer": "4"}] * 2) == 0.5
    assert not worker.contains_words("anything", "")


def test_a_metric_it_cannot_compute_fails_the_run_by_name():
    with pytest.raises(worker.ApplicationError, match="hallucination-rate"):
        worker.score("hallucination-rate", ["x"], [{"question": "q", "answer": "a"}])


def test_a_dataset_outside_a_ledger_is_read_from_jsonl(tmp_path, monkeypatch):
    (tmp_path / "smoke.jsonl").write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    monkeypatch.setenv("SOVEREIGN_EVAL_DATASETS", str(tmp_path))
    rows, snapshot = worker.read_dataset({"name": "smoke", "ledger": None, "table": None})
    assert rows == [{"question": "q", "answer": "a"}]
    assert snapshot.startswith("file:smoke.jsonl@sha256:")


def test_a_ledger_dataset_is_read_from_its_iceberg_table(tmp_path, monkeypatch):
    uri, warehouse = f"sqlite:///{tmp_path}/catalog.db", f"file://{tmp_path}/warehouse"
    # pyiceberg reads its environment once, when it is first imported.
    monkeypatch.setenv("PYICEBERG_CATALOG__LAKE__TYPE", "sql")
    monkeypatch.setenv("PYICEBERG_CATALOG__LAKE__URI", uri)
    monkeypatch.setenv("PYICEBERG_CATALOG__LAKE__WAREHOUSE", warehouse)
    if os.environ.get("SOVEREIGN_EXPECT_PYICEBERG"):
        import pyarrow as pa
    else:
        pa = pytest.importorskip("pyarrow")
        pytest.importorskip("pyiceberg")
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("lake", uri=uri, warehouse=warehouse)
    catalog.create_namespace("evals")
    data = pa.table({"question": ["What is 1 plus 1?", "What is 2 plus 2?"], "answer": ["2", "4"]})
    table = catalog.create_table("evals.golden", schema=data.schema)
    table.append(data)
    rows, snapshot = worker.read_dataset({"name": "golden", "ledger": "lake", "table": "evals.golden"})
    assert sorted(row["answer"] for row in rows) == ["2", "4"]
    assert snapshot == f"iceberg:evals.golden@{table.refresh().current_snapshot().snapshot_id}"
