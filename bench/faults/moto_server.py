"""The fault suite's AWS endpoint: moto's server app, answering a Query by partition.

    python -m bench.faults.moto_server --port 5055        prints `READY http://127.0.0.1:5055`

Stock moto answers every Query by walking the whole table (see `bench.counting`), so a suite that
writes thousands of chunks would slow down round after round; `bench.counting.partition_queries`
makes a Query read only its partition, as DynamoDB does, and `devstack.moto_dynamodb` makes a
transaction (every chunk write is one) cost the items it touches rather than a copy of the table. Unlike `bench.counting`, nothing is
recorded: the suite reads the table itself, and a record of every request would only grow.
"""

from __future__ import annotations

import argparse
import logging

from bench.counting import QueryMode, partition_queries
from devstack import moto_fidelity


def serve(host: str, port: int) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    partition_queries()
    QueryMode.partition = True
    moto_fidelity.apply()  # transactions and deletes as DynamoDB and SQS do them
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"READY http://{host}:{server.server_port}", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="moto, answering a Query by partition (for `make faults`).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
