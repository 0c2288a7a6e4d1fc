"""`make token ORG=my-org`: print a dev JWT signed with the local stack's JWT_SECRET."""

from __future__ import annotations

import argparse
import os
import time

from runwire.adapters.tokens import issue_token

DEV_JWT_SECRET = "runwire-local-dev-secret-change-me"


def dev_secret() -> str:
    return os.environ.get("JWT_SECRET") or DEV_JWT_SECRET


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--org", default=os.environ.get("ORG", "my-org"))
    parser.add_argument("--sub", default="dev-user")
    parser.add_argument("--hours", type=float, default=12)
    args = parser.parse_args()
    print(issue_token(dev_secret(), subject=args.sub, org=args.org, lifetime_seconds=int(args.hours * 3600), now=time.time()))


if __name__ == "__main__":
    main()
