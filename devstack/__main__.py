"""`make dev`: the whole system on this machine, no AWS account needed.

    moto server (DynamoDB, SQS, S3 over real HTTP)   resources created from template.yaml
    HTTP  http://127.0.0.1:$PORT                     the API app and the stream app, one port
    worker loop                                      SQS → the worker handler, real event shapes;
                                                     the webhook outbox → the webhook sender's;
                                                     a schedule → the sweep handler, every
                                                     SWEEP_INTERVAL_SECONDS (60; 0: off)

Each piece runs in its own process, as each runs in its own Lambda in AWS. A worker process that
dies is replaced (Lambda always has workers for the queue), and the rest of the stack stays up.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .fault_proxy import COUNTERS_PATH, FaultProxy, FaultRates
from .readiness import wait_until_healthy
from .resources import create_local_resources, load_template
from .token import dev_secret

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("devstack")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_environment(port: int, moto_endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("JWT_SECRET", dev_secret())
    env.setdefault("MODEL_PROVIDER", "scripted")
    env.setdefault("STREAM_RETENTION_SECONDS", "300")
    env.setdefault("MAX_RUN_SECONDS", "120")
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("AWS_REGION", "us-east-1")
    env["AWS_DEFAULT_REGION"] = env["AWS_REGION"]
    env["AWS_ENDPOINT_URL"] = moto_endpoint
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env["POWERTOOLS_SERVICE_NAME"] = "runwire-local"
    return env


# --- for `make bench`: an external AWS endpoint, and AWS requests tagged with their process ------
def start_aws_endpoint(external: str, moto_port: int) -> tuple[Any, str]:
    """The embedded moto server (started here), or None and the external endpoint given."""
    if external:
        return None, external.rstrip("/")
    from moto.server import ThreadedMotoServer

    from . import moto_fidelity

    moto_fidelity.apply()  # transactions and deletes as DynamoDB and SQS do them
    moto_port = moto_port or free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    return moto, f"http://127.0.0.1:{moto_port}"


def tagged(env: dict[str, str], role: str) -> dict[str, str]:
    """botocore adds `app/<AWS_SDK_UA_APP_ID>` to every request's User-Agent, so a counting endpoint
    can tell the worker's requests from the HTTP apps' (the benchmark's per-process counts)."""
    return {**env, "AWS_SDK_UA_APP_ID": env.get("AWS_SDK_UA_APP_ID") or f"runwire-{role}"}


# --- for the fault suite: DynamoDB throttling and 5xx between the stack and moto -----------------
def fault_settings() -> tuple[FaultRates, int | None] | None:
    """DYNAMODB_FAULTS (`throttle=0.10,error=0.01,commit_then_error=0.005`; unset or empty: no
    proxy) and DYNAMODB_FAULTS_SEED (an integer, for a repeatable sequence of faults)."""
    spec = os.environ.get("DYNAMODB_FAULTS", "").strip()
    if not spec:
        return None
    seed = os.environ.get("DYNAMODB_FAULTS_SEED", "").strip()
    return FaultRates.parse(spec), int(seed) if seed else None


def start_fault_proxy(endpoint: str, settings: tuple[FaultRates, int | None] | None) -> FaultProxy | None:
    """The worker and the HTTP apps reach AWS through devstack.fault_proxy; the resources were
    created before, against moto itself, so setup never meets a fault."""
    if settings is None:
        return None
    rates, seed = settings
    proxy = FaultProxy(endpoint, rates, seed=seed).start()
    log.info("DYNAMODB_FAULTS: the stack reaches AWS through %s, which fails DynamoDB calls at %s (seed %s; "
             "counters: GET %s%s)", proxy.url, rates, seed, proxy.url, COUNTERS_PATH)
    return proxy


WORKER_RESTARTS_PER_WINDOW = 5
WORKER_RESTART_WINDOW_SECONDS = 60.0
"""More restarts than this within the window: the worker cannot run at all (e.g. a bad setting)."""


def main() -> None:
    parser = argparse.ArgumentParser(description="Run runwire locally.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "0")))
    parser.add_argument("--quiet", action="store_true", help="print only the banner (tests, benchmarks)")
    parser.add_argument(
        "--aws-endpoint", metavar="URL", default="",
        help="use this AWS endpoint (e.g. `make bench`'s request-counting moto server) instead of starting one",
    )
    args = parser.parse_args()
    try:
        faulty = fault_settings()
    except ValueError as exc:
        parser.error(f"DYNAMODB_FAULTS / DYNAMODB_FAULTS_SEED: {exc}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s devstack %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log

    moto, endpoint = start_aws_endpoint(args.aws_endpoint, args.moto_port)
    env = stack_environment(args.port, endpoint)
    log.info("moto server (DynamoDB, SQS, S3) on %s%s", endpoint, " (external)" if moto is None else "")

    import boto3

    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    resources = create_local_resources(load_template(ROOT / "template.yaml"), session, endpoint)
    env["RUNS_TABLE_NAME"] = resources.table_name
    env["RUN_QUEUE_URL"] = resources.queue_url
    # What the worker must outlive: the queue's visibility timeout as the template created it.
    attributes = session.client("sqs", endpoint_url=endpoint).get_queue_attributes(
        QueueUrl=resources.queue_url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    env["RUN_QUEUE_VISIBILITY_SECONDS"] = attributes["VisibilityTimeout"]
    env["FILES_BUCKET_NAME"] = resources.bucket_name
    if resources.webhook_queue_url:  # the webhook outbox; the worker loop runs its sender function
        env["WEBHOOK_QUEUE_URL"] = resources.webhook_queue_url
        env["WEBHOOK_DEAD_LETTER_QUEUE_URL"] = resources.webhook_dead_letter_queue_url or ""
    log.info("created from template.yaml: table %s, queue %s (+ DLQ; visibility %s s), bucket %s",
             resources.table_name, resources.queue_url.rsplit("/", 1)[-1], env["RUN_QUEUE_VISIBILITY_SECONDS"],
             resources.bucket_name)

    faults = start_fault_proxy(endpoint, faulty)
    if faults is not None:
        env["AWS_ENDPOINT_URL"] = faults.url

    output = subprocess.DEVNULL if args.quiet else None

    def start_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "devstack.worker_loop"], env=tagged(env, "worker"), cwd=ROOT,
                                stdout=output, stderr=output)

    children = [
        start_worker(),
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "devstack.gateway:create_gateway", "--host", "127.0.0.1", "--port", str(args.port),
             "--log-level", "warning" if args.quiet else "info", "--timeout-graceful-shutdown", "2"],
            env=tagged(env, "gateway"), cwd=ROOT, stdout=output, stderr=output,
        ),
    ]

    def shutdown(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
        if faults is not None:
            faults.stop()
        if moto is not None:
            moto.stop()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)

    base = f"http://127.0.0.1:{args.port}"
    if not wait_until_healthy(f"{base}/healthz", children[1]):
        log.error("the HTTP server did not become healthy; stopping the stack")
        shutdown()
    from runwire.adapters.tokens import issue_token

    faults_line = f"FAULTS {faults.url}\n" if faults is not None else ""  # where a harness reads the counters
    token = issue_token(env["JWT_SECRET"], subject="dev-user", org="my-org", lifetime_seconds=12 * 3600, now=time.time())
    print(
        f"""
runwire is running on {base}   (model provider: {env['MODEL_PROVIDER']}; API docs: {base}/docs)
Try it in a browser: {base}/playground   (paste the token below)

A dev token for org "my-org" (valid 12 h; `make token ORG=other` makes more):

  export JWT={token}

Start a run, then stream it:

  curl {base}/ai/agent/stream -H "orgid: my-org" -H "Authorization: Bearer $JWT" \\
       -H "Content-Type: application/json" -d '{{"task":"Hello","agentRole":"chat","conversationId":"c1"}}'
  curl -N {base}/ai/stream/<streamId> -H "orgid: my-org" -H "Authorization: Bearer $JWT"

{faults_line}READY {base}
""",
        flush=True,
    )
    restarts: list[float] = []
    while True:
        worker, gateway = children
        if gateway.poll() is not None:
            log.error("the HTTP server exited with code %s; stopping the stack", gateway.returncode)
            shutdown()
        if worker.poll() is not None:
            # Lambda always has workers for its event source mapping: a dead one is replaced and the
            # rest of the stack stays up. A worker that cannot even start stops the stack instead.
            now = time.monotonic()
            restarts[:] = [at for at in restarts if now - at < WORKER_RESTART_WINDOW_SECONDS] + [now]
            if len(restarts) > WORKER_RESTARTS_PER_WINDOW:
                log.error("the worker keeps exiting (code %s); stopping the stack", worker.returncode)
                shutdown()
            log.warning("the worker exited with code %s; starting a new one", worker.returncode)
            children[0] = start_worker()
        time.sleep(0.5)


if __name__ == "__main__":
    main()
