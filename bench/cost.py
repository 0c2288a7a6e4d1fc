"""Infrastructure cost per 1,000 runs, from the measured counts and durations, at AWS list prices.

Prices: us-east-1 list prices (checked against published price lists of 2025); DynamoDB's are
on-demand prices in effect since its throughput price cut of 2024-11-01 (half the earlier
$1.25 / $0.25 per million units). Free tiers,
storage (items live for `STREAM_RETENTION_SECONDS`), logs and data transfer out (the same bytes
reach the client either way) are left out.

The pipeline, per run: one API Gateway HTTP API request (the POST; the stream is read from the
stream function's URL, which costs no request fee), three Lambda invocations (start_run for the
POST's duration, the worker for its invocation, the stream function for the stream's connection),
its SQS requests and its DynamoDB request units. Memory sizes are template.yaml's.

The baseline, per run: one Lambda invocation of a streaming function (a Function URL, as the
stream function) that calls the model itself, for as long as its response streams.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Prices:
    region: str = "us-east-1"
    as_of: str = "list prices checked 2025; DynamoDB on-demand as cut on 2024-11-01"
    lambda_arm64_gb_second: float = 0.0000133334
    lambda_request: float = 0.20 / 1e6
    http_api_request: float = 1.00 / 1e6
    sqs_request: float = 0.40 / 1e6
    dynamodb_write_request_unit: float = 0.625 / 1e6
    dynamodb_read_request_unit: float = 0.125 / 1e6


@dataclass(frozen=True)
class MemorySizes:
    """MB, from template.yaml (Globals: 512; WorkerFunction: 1024)."""

    start_run: int = 512
    worker: int = 1024
    stream: int = 512
    baseline: int = 512


@dataclass(frozen=True)
class PipelineRun:
    """Mean per-run measurements of the pipeline."""

    start_run_seconds: float
    worker_seconds: float
    stream_seconds: float
    sqs_requests: float
    write_request_units: float
    read_request_units: float


def pipeline_cost(run: PipelineRun, prices: Prices = Prices(), memory: MemorySizes = MemorySizes()) -> dict[str, float]:
    gb_seconds = (memory.start_run * run.start_run_seconds + memory.worker * run.worker_seconds
                  + memory.stream * run.stream_seconds) / 1024
    per_run = {
        "api_gateway": prices.http_api_request,
        "lambda_requests": 3 * prices.lambda_request,
        "lambda_duration": gb_seconds * prices.lambda_arm64_gb_second,
        "sqs": run.sqs_requests * prices.sqs_request,
        "dynamodb_writes": run.write_request_units * prices.dynamodb_write_request_unit,
        "dynamodb_reads": run.read_request_units * prices.dynamodb_read_request_unit,
    }
    per_thousand = {k: round(v * 1000, 6) for k, v in per_run.items()}
    per_thousand["total"] = round(sum(per_run.values()) * 1000, 6)
    return per_thousand


def baseline_cost(run_seconds: float, prices: Prices = Prices(), memory: MemorySizes = MemorySizes()) -> dict[str, float]:
    per_run = {
        "lambda_requests": prices.lambda_request,
        "lambda_duration": memory.baseline / 1024 * run_seconds * prices.lambda_arm64_gb_second,
    }
    per_thousand = {k: round(v * 1000, 6) for k, v in per_run.items()}
    per_thousand["total"] = round(sum(per_run.values()) * 1000, 6)
    return per_thousand


def price_sheet(prices: Prices = Prices(), memory: MemorySizes = MemorySizes()) -> dict[str, Any]:
    return {"prices_usd": asdict(prices), "memory_mb": asdict(memory)}
