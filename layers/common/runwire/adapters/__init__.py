"""Adapters at the edge: AWS, Anthropic, JWT, and in-memory fakes that pass the same contract tests."""
