#!/bin/bash
# Start command for the Lambda Web Adapter (/opt/bootstrap runs it in place of the Python runtime).
# That bypasses the runtime's own bootstrap, which is what puts layers (/opt/python) and the
# runtime's boto3 ($LAMBDA_RUNTIME_DIR) on sys.path, so put them there ourselves.
export PYTHONPATH="/opt/python:${LAMBDA_RUNTIME_DIR:-/var/runtime}${PYTHONPATH:+:$PYTHONPATH}"
exec python -m uvicorn --host 0.0.0.0 --port "${PORT:-8080}" --no-access-log app:app
