"""StartRunFunction: the JSON API behind API Gateway (FastAPI under Mangum)."""

from mangum import Mangum

from runwire.adapters.emf_metrics import metrics_per_invocation
from runwire.observability import configure_lambda_logging
from runwire.wiring import build_api_app

logger = configure_lambda_logging("runwire-api")
app = build_api_app()
# Metrics the request records are written when the invocation ends (runwire.adapters.emf_metrics).
handler = logger.inject_lambda_context(metrics_per_invocation(Mangum(app, lifespan="off")))
