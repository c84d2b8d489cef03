"""The reference evaluation worker for sovereign's evaluation gates.

Run it as it is next to a Temporal server that sovereign applied a fabric
to: it polls the task queue the eval schedules start their workflows on,
and for each run reads the eval's dataset, asks the served model every
question through its OpenAI-compatible endpoint, computes the metrics the
spec names, and returns them. `sovereign apply` reads the latest completed
run before it updates a serve the eval gates (docs/evals.md has the
contract).

    python3 examples/evals/worker.py --address temporal-frontend:7233 --namespace evals

The dataset is the eval's Iceberg table (`dataset ... ledger="lake"
table="evals.golden"`), read with pyiceberg from the catalog named as the
ledger, configured the way pyiceberg reads catalogs (`~/.pyiceberg.yaml`,
or `PYICEBERG_CATALOG__LAKE__URI` and friends). A dataset without a ledger
is read from `$SOVEREIGN_EVAL_DATASETS/<dataset>.jsonl`. Rows have a
`question` and an `answer` column.

Metrics: `accuracy` (the expected answer's words appear in the reply,
whole and in order, after normalising case and punctuation), `exact-match` (the normalised reply is the
expected answer), `rouge-l` (the F-measure of the longest common word
subsequence). Any other metric fails the run, naming it: this worker does
not make up a value it cannot compute.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import urllib.request
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

# The names sovereign's eval schedules use (targets/temporal/src/lib.rs).
WORKFLOW = "sovereign.Eval"
TASK_QUEUE = "sovereign-evals"
ACTIVITY = "sovereign.eval.run"

METRICS = ("accuracy", "exact-match", "rouge-l")


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def contains_words(reply: str, expected: str) -> bool:
    """Whether the expected answer's words appear in the reply, in order and
    whole ("4" is not in "14"); an empty expected answer never matches."""
    want, have = normalise(expected).split(), normalise(reply).split()
    return bool(want) and any(have[i : i + len(want)] == want for i in range(len(have) - len(want) + 1))


def rouge_l(reply: str, expected: str) -> float:
    a, b = normalise(reply).split(), normalise(expected).split()
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def score(metric: str, replies: list[str], rows: list[dict]) -> float:
    pairs = list(zip(replies, (str(row["answer"]) for row in rows)))
    if not pairs:
        raise ApplicationError("the dataset has no rows", non_retryable=True)
    if metric == "accuracy":
        return sum(contains_words(r, e) for r, e in pairs) / len(pairs)
    if metric == "exact-match":
        return sum(normalise(e) == normalise(r) for r, e in pairs) / len(pairs)
    if metric == "rouge-l":
        return sum(rouge_l(r, e) for r, e in pairs) / len(pairs)
    raise ApplicationError(
        f"the reference worker cannot compute metric {metric!r} (it computes {', '.join(METRICS)})",
        non_retryable=True,
    )


def read_dataset(dataset: dict) -> tuple[list[dict], str]:
    """The rows and the snapshot they were read at."""
    if dataset.get("ledger") and dataset.get("table"):
        from pyiceberg.catalog import load_catalog

        table = load_catalog(dataset["ledger"]).load_table(dataset["table"])
        snapshot = table.current_snapshot()
        rows = table.scan().to_arrow().to_pylist()
        return rows, f"iceberg:{dataset['table']}@{snapshot.snapshot_id if snapshot else 'empty'}"
    folder = os.environ.get("SOVEREIGN_EVAL_DATASETS")
    if not folder:
        raise ApplicationError(
            f"dataset {dataset['name']!r} has no ledger, and SOVEREIGN_EVAL_DATASETS is not set", non_retryable=True
        )
    path = Path(folder) / f"{dataset['name']}.jsonl"
    text = path.read_bytes()
    rows = [json.loads(line) for line in text.decode().splitlines() if line.strip()]
    return rows, f"file:{path.name}@sha256:{hashlib.sha256(text).hexdigest()[:16]}"


def ask(endpoint: str, model: str, question: str) -> str:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": question}], "temperature": 0}).encode()
    request = urllib.request.Request(
        f"{endpoint.rstrip('/')}/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.load(response)
    return answer["choices"][0]["message"]["content"] or ""


@activity.defn(name=ACTIVITY)
def run_eval(request: dict) -> dict:
    rows, snapshot = read_dataset(request["dataset"])
    endpoint = os.environ.get("SOVEREIGN_EVAL_ENDPOINT", request["target"]["endpoint"])
    replies = [ask(endpoint, request["target"]["serve"], str(row["question"])) for row in rows]
    metrics = {t["metric"]: score(t["metric"], replies, rows) for t in request["thresholds"]}
    return {"eval": request["eval"], "metrics": metrics, "dataset": {"name": request["dataset"]["name"], "snapshot": snapshot}, "samples": len(rows)}


@workflow.defn(name=WORKFLOW)
class Eval:
    @workflow.run
    async def run(self, request: dict) -> dict:
        return await workflow.execute_activity(
            ACTIVITY,
            request,
            start_to_close_timeout=timedelta(hours=2),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )


async def main() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.client import Client
    from temporalio.worker import Worker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"))
    parser.add_argument("--namespace", default=os.environ.get("TEMPORAL_NAMESPACE", "default"))
    args = parser.parse_args()
    client = await Client.connect(args.address, namespace=args.namespace)
    with ThreadPoolExecutor(max_workers=4) as pool:
        worker = Worker(client, task_queue=TASK_QUEUE, workflows=[Eval], activities=[run_eval], activity_executor=pool)
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
