"""Local stand-ins for the deployed stack, built from `template.yaml` itself so they cannot drift."""
