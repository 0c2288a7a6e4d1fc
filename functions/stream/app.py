"""StreamFunction: Server-Sent Events, run by uvicorn behind the Lambda Web Adapter (see run.sh)."""

from runwire.observability import configure_lambda_logging
from runwire.wiring import build_stream_app

logger = configure_lambda_logging("runwire-stream")
app = build_stream_app()
