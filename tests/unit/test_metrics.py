"""Run metrics: the EMF adapter writes valid CloudWatch EMF, one invocation's metrics never leak into
another's, the in-memory fake counts what it is told, and the failed-runs alarm watches what the
adapter writes."""

from __future__ import annotations

import inspect
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.resources import load_template
from runwire.adapters.emf_metrics import (
    RUNS_ENDED,
    STATUS_DIMENSION,
    PowertoolsRunMetrics,
    invocation_metrics,
    metrics_per_invocation,
)
from runwire.core.metrics import NullMetrics, RecordingMetrics, RunMetrics
from runwire.core.models import RunStatus
from runwire.settings import Settings
from runwire.wiring import run_metrics

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(autouse=True)
def metrics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)


def emf_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def metric_names(blob: dict[str, Any]) -> list[str]:
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    return [metric["Name"] for metric in directive["Metrics"]]


def value(blob: dict[str, Any], metric: str) -> float:
    """A metric's value: Powertools writes a list of values (EMF allows either); CloudWatch sums them."""
    values = blob[metric]
    return sum(values) if isinstance(values, list) else values


def find(blobs: list[dict[str, Any]], metric: str, **dimensions: str) -> list[dict[str, Any]]:
    return [b for b in blobs if metric in metric_names(b) and all(b.get(k) == v for k, v in dimensions.items())]


# --- the EMF adapter --------------------------------------------------------------------------------
def test_an_invocation_writes_one_valid_emf_line_per_dimension_value(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = PowertoolsRunMetrics(namespace="RunwireTest", service="svc")
    with invocation_metrics():
        metrics.run_ended(RunStatus.FAILED)
        metrics.run_ended("failed")
        metrics.run_ended("succeeded")
        metrics.run_started("ag_chat")
        metrics.tokens_streamed(5)
        metrics.tokens_streamed(7)
        metrics.run_recovered()
        assert capsys.readouterr().out == ""  # nothing before the invocation ends

    blobs = emf_lines(capsys.readouterr().out)
    assert len(blobs) == 4
    for blob in blobs:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "RunwireTest"
        assert blob["service"] == "svc"
        assert isinstance(blob["_aws"]["Timestamp"], int)
        assert all(metric["Unit"] == "Count" for metric in directive["Metrics"])

    (failed,) = find(blobs, "RunsEnded", status="failed")
    assert value(failed, "RunsEnded") == 2
    assert failed["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"], ["service", "status"]]
    (succeeded,) = find(blobs, "RunsEnded", status="succeeded")
    assert value(succeeded, "RunsEnded") == 1
    (started,) = find(blobs, "RunsStarted", agent_id="ag_chat")
    assert started["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"], ["service", "agent_id"]]
    (undimensioned,) = [b for b in blobs if "TokensStreamed" in metric_names(b)]
    assert sorted(metric_names(undimensioned)) == ["RunsRecovered", "TokensStreamed"]
    assert value(undimensioned, "TokensStreamed") == 12 and value(undimensioned, "RunsRecovered") == 1
    assert undimensioned["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]


def test_every_port_method_names_its_own_metric(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = PowertoolsRunMetrics(namespace="RunwireTest", service="svc")
    metrics.run_started("ag_chat")
    metrics.run_ended("cancelled")
    metrics.run_recovered()
    metrics.model_retried("overloaded")
    metrics.storage_retried()
    metrics.tokens_streamed(3)
    metrics.waited_for_client()

    blobs = emf_lines(capsys.readouterr().out)
    assert [name for blob in blobs for name in metric_names(blob)] == [
        "RunsStarted", "RunsEnded", "RunsRecovered", "ModelRetries", "StorageRetries", "TokensStreamed", "ClientWaits",
    ]
    assert find(blobs, "ModelRetries", code="overloaded")
    assert find(blobs, "RunsEnded", status="cancelled")


def test_outside_an_invocation_each_call_is_written_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = PowertoolsRunMetrics(namespace="RunwireTest", service="svc")
    metrics.run_ended("expired")
    (blob,) = emf_lines(capsys.readouterr().out)
    assert value(blob, "RunsEnded") == 1 and blob["status"] == "expired"


def test_a_handler_that_raises_still_writes_what_it_recorded(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = PowertoolsRunMetrics(namespace="RunwireTest", service="svc")

    @metrics_per_invocation
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.run_ended("failed")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        handler({}, None)
    (blob,) = emf_lines(capsys.readouterr().out)
    assert value(blob, "RunsEnded") == 1 and blob["status"] == "failed"


def test_a_decorated_handler_returns_what_the_handler_returns(capsys: pytest.CaptureFixture[str]) -> None:
    @metrics_per_invocation
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"echo": event}

    assert handler({"a": 1}, None) == {"echo": {"a": 1}}
    assert handler.__name__ == "handler"


def test_an_invocation_that_records_nothing_writes_and_warns_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Powertools warns "No application metrics to publish" on an empty flush
        with invocation_metrics():
            pass
    assert capsys.readouterr().out == ""


def test_an_empty_dimension_value_is_written_as_unknown_not_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PowertoolsRunMetrics(namespace="RunwireTest", service="svc").model_retried("")
    (blob,) = emf_lines(capsys.readouterr().out)
    assert blob["code"] == "unknown" and value(blob, "ModelRetries") == 1


@pytest.mark.parametrize("variable", ["POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"])
def test_disabled_metrics_write_nothing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       variable: str) -> None:
    monkeypatch.setenv(variable, "true")
    metrics = PowertoolsRunMetrics(namespace="RunwireTest", service="svc")
    metrics.run_ended("failed")
    with invocation_metrics():
        metrics.tokens_streamed(4)
    assert capsys.readouterr().out == ""


def test_concurrent_invocations_in_one_process_write_only_their_own_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    # devstack's worker loop calls the worker handler from a thread pool: every invocation is open
    # at once here (the barrier), and each must write exactly what it recorded, as one clean line each.
    metrics = PowertoolsRunMetrics(namespace="RunwireTest", service="svc")
    invocations, calls = 16, 25
    barrier = threading.Barrier(invocations)

    @metrics_per_invocation
    def handler(number: int) -> None:
        barrier.wait()
        for _ in range(calls):
            metrics.run_started(f"ag_{number}")
            metrics.tokens_streamed(number + 1)
        barrier.wait()  # nobody's invocation ends before every one has recorded everything

    threads = [threading.Thread(target=handler, args=(n,)) for n in range(invocations)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    blobs = emf_lines(capsys.readouterr().out)  # a line mixed with another would not parse
    assert len(blobs) == 2 * invocations
    started = {blob["agent_id"]: value(blob, "RunsStarted") for blob in find(blobs, "RunsStarted")}
    assert started == {f"ag_{n}": calls for n in range(invocations)}
    tokens = sorted(value(blob, "TokensStreamed") for blob in find(blobs, "TokensStreamed"))
    assert tokens == [calls * (n + 1) for n in range(invocations)]


def test_threads_the_invocation_did_not_start_write_at_once_rather_than_into_another_invocation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = PowertoolsRunMetrics(namespace="RunwireTest", service="svc")
    with invocation_metrics():
        helper = threading.Thread(target=metrics.model_retried, args=("rate_limited",))
        helper.start()
        helper.join()
        (written,) = emf_lines(capsys.readouterr().out)
        assert written["code"] == "rate_limited"
        metrics.run_recovered()
    (blob,) = emf_lines(capsys.readouterr().out)
    assert metric_names(blob) == ["RunsRecovered"]


# --- the factory --------------------------------------------------------------------------------------
def test_the_factory_takes_namespace_and_service_from_powertools_variables(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_environ({})
    run_metrics(settings, {"POWERTOOLS_METRICS_NAMESPACE": "MyStack", "POWERTOOLS_SERVICE_NAME": "mine"}).run_recovered()
    run_metrics(settings, {}).run_recovered()
    configured, default = emf_lines(capsys.readouterr().out)
    assert (configured["_aws"]["CloudWatchMetrics"][0]["Namespace"], configured["service"]) == ("MyStack", "mine")
    assert (default["_aws"]["CloudWatchMetrics"][0]["Namespace"], default["service"]) == ("runwire", "runwire")


# --- the port and its fakes ---------------------------------------------------------------------------
def _port_methods() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(RunMetrics).items()
            if callable(member) and not name.startswith("_")}


@pytest.mark.parametrize("implementation", [PowertoolsRunMetrics, NullMetrics, RecordingMetrics])
def test_every_implementation_has_every_port_method_with_its_signature(implementation: type) -> None:
    methods = _port_methods()
    assert set(methods) == {"run_started", "run_ended", "run_recovered", "model_retried", "storage_retried",
                            "tokens_streamed", "waited_for_client"}
    for name, signature in methods.items():
        assert inspect.signature(getattr(implementation, name)) == signature, name


def test_recording_metrics_totals_calls_by_name_and_dimension() -> None:
    metrics = RecordingMetrics()
    metrics.run_ended(RunStatus.FAILED)
    metrics.run_ended("failed")
    metrics.run_ended("succeeded")
    metrics.tokens_streamed(10)
    metrics.tokens_streamed(5)
    metrics.model_retried("overloaded")
    metrics.waited_for_client()

    assert metrics.count("run_ended", "failed") == 2
    assert metrics.count("run_ended", "succeeded") == 1
    assert metrics.total("run_ended") == 3
    assert metrics.count("tokens_streamed") == 15
    assert metrics.count("model_retried", "overloaded") == 1
    assert metrics.count("run_recovered") == 0
    assert dict(metrics.counts) == {
        ("run_ended", "failed"): 2, ("run_ended", "succeeded"): 1, ("tokens_streamed", None): 15,
        ("model_retried", "overloaded"): 1, ("waited_for_client", None): 1,
    }


def test_recording_metrics_loses_no_count_under_threads() -> None:
    metrics = RecordingMetrics()

    def record() -> None:
        for _ in range(2000):
            metrics.tokens_streamed(1)

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert metrics.count("tokens_streamed") == 16_000


def test_null_metrics_records_nothing_and_raises_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    metrics: RunMetrics = NullMetrics()
    metrics.run_started("ag_chat")
    metrics.run_ended("failed")
    metrics.tokens_streamed(3)
    assert capsys.readouterr().out == ""


# --- the alarms watch what the adapter writes ---------------------------------------------------------
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _metric_stats(alarm: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for query in alarm["Properties"]["Metrics"]:
        if "MetricStat" in query:
            yield query["MetricStat"]["Metric"]


def test_failed_runs_alarm_watches_the_metric_and_dimensions_the_adapter_writes(template: dict[str, Any]) -> None:
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    watched = list(_metric_stats(template["Resources"]["FailedRunsAlarm"]))
    assert {m["MetricName"] for m in watched} == {RUNS_ENDED}
    assert all(m["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
               for m in watched)
    dimension_sets = [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in watched]
    service = environment["POWERTOOLS_SERVICE_NAME"]
    assert sorted(dimension_sets, key=len) == [
        {"service": service}, {"service": service, STATUS_DIMENSION: RunStatus.FAILED.value},
    ]


def test_each_alarm_watches_its_resource_and_notifies_only_a_given_topic(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {"DeadLetterQueueAlarm", "WorkerErrorsAlarm", "WorkerThrottlesAlarm",
                           "RunsTableThrottlesAlarm", "FailedRunsAlarm", "WebhookDeadLetterQueueAlarm"}
    assert alarms["DeadLetterQueueAlarm"]["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert alarms["WebhookDeadLetterQueueAlarm"]["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["WebhookDeadLetterQueue", "QueueName"]}}]
    assert resources["RunQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    for name, metric in (("WorkerErrorsAlarm", "Errors"), ("WorkerThrottlesAlarm", "Throttles")):
        assert (alarms[name]["Namespace"], alarms[name]["MetricName"]) == ("AWS/Lambda", metric)
        assert alarms[name]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "WorkerFunction"}}]
    table_metrics = list(_metric_stats(resources["RunsTableThrottlesAlarm"]))
    assert {m["MetricName"] for m in table_metrics} == {"ReadThrottleEvents", "WriteThrottleEvents"}
    assert all({"Name": "TableName", "Value": {"Ref": "RunsTable"}} in m["Dimensions"] for m in table_metrics)
    for properties in alarms.values():
        assert properties["ComparisonOperator"] == "GreaterThanThreshold"
        assert properties["TreatMissingData"] == "notBreaching"
        for actions in ("AlarmActions", "OKActions"):
            assert properties[actions] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert template["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
