"""`make bench`: what the pipeline adds (latency, requests, cost, cold start) beside a pipeline-less
baseline, measured on the local stack. See `bench/__main__.py`."""
