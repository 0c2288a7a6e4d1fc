"""`python -m runwire_client`: the `runwire` command."""

from __future__ import annotations

from .cli import main

main()
