"""The pure core: no boto3, FastAPI, anthropic or os.environ here (tests/unit/test_core_purity.py)."""
