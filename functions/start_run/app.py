"""StartRunFunction: the JSON API behind API Gateway (FastAPI under Mangum)."""

from mangum import Mangum

from runwire.observability import configure_lambda_logging
from runwire.wiring import build_api_app

logger = configure_lambda_logging("runwire-api")
app = build_api_app()
handler = logger.inject_lambda_context(Mangum(app, lifespan="off"))
