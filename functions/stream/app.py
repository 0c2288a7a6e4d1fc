"""StreamFunction: Server-Sent Events, run by uvicorn behind the Lambda Web Adapter (see run.sh).

No handler wraps a request here, so each metric a request records is written as it is recorded
(runwire.adapters.emf_metrics): nothing waits for a flush.
"""

from runwire.observability import configure_lambda_logging
from runwire.wiring import build_stream_app

logger = configure_lambda_logging("runwire-stream")
app = build_stream_app()
