"""runwire: a streaming API for AI agent runs on AWS Lambda.

`runwire.core` is the pure core (models, run state machine, chunk coalescing, agent loop);
`runwire.formats` holds one module per wire format; `runwire.adapters` holds the AWS, Anthropic
and JWT adapters; `runwire.http` holds the two FastAPI apps. `runwire.wiring` builds them from
`runwire.settings`.
"""
