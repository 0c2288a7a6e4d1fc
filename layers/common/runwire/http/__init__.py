"""The HTTP edge: the API app (behind Mangum) and the stream app (uvicorn behind the Lambda Web Adapter)."""
