"""Storage retries are counted: a throttled DynamoDB call that botocore retries shows in the metrics."""

from __future__ import annotations

import botocore.session
from botocore.config import Config

from devstack.fault_proxy import FaultProxy, FaultRates
from runwire.adapters.retry_metrics import count_storage_retries
from runwire.core.metrics import RecordingMetrics


def test_every_throttled_attempt_is_counted_and_a_clean_call_counts_nothing(moto_endpoint):
    proxy = FaultProxy(moto_endpoint, FaultRates.parse("throttle=1.0"), seed=3).start()
    try:
        metrics = RecordingMetrics()
        session = botocore.session.get_session()
        throttled = session.create_client("dynamodb", region_name="us-east-1", endpoint_url=proxy.url,
                                          config=Config(retries={"mode": "standard", "total_max_attempts": 3}))
        count_storage_retries(throttled, metrics)
        try:
            throttled.list_tables()
        except throttled.exceptions.ClientError:
            pass
        assert metrics.total("storage_retried") == 3

        clean = session.create_client("dynamodb", region_name="us-east-1", endpoint_url=moto_endpoint)
        count_storage_retries(clean, metrics)
        clean.list_tables()
        assert metrics.total("storage_retried") == 3
    finally:
        proxy.stop()
