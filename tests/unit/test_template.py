"""template.yaml is valid SAM, valid CloudFormation once translated, and builds.

`sam validate --lint` and `sam build` need the SAM CLI (`$SAM_CLI`, else `sam` on PATH); those
tests skip when it is missing. The translate-and-lint check (devstack.template_check) needs only
the dev dependencies and always runs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devstack.resources import load_template
from devstack.template_check import check_translated, find_sam, sam_validate_lint

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"


@pytest.fixture(scope="module")
def sam() -> str:
    executable = find_sam()
    if executable is None:
        pytest.skip("SAM CLI not found: set SAM_CLI or put `sam` on PATH (CI installs it)")
    return executable


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(TEMPLATE)


def _errors(path: Path) -> list[str]:
    return [str(finding) for finding in check_translated(path) if finding.is_error]


def _mutated_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = TEMPLATE.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"the mutation needs exactly one {old!r} in template.yaml"
    copy = tmp_path / "template.yaml"
    copy.write_text(text.replace(old, new), encoding="utf-8")
    return copy


def test_sam_validate_lint_passes(sam: str) -> None:
    completed = sam_validate_lint(TEMPLATE, sam)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_translated_template_has_no_cfn_lint_errors() -> None:
    assert _errors(TEMPLATE) == []


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("InvokeMode: RESPONSE_STREAM", "InvokeMode: BOGUS", "BOGUS"),
        ("Runtime: python3.12", "Runtime: python9.9", "python9.9"),
    ],
    ids=["function-url-invoke-mode", "runtime"],
)
def test_translated_lint_reports_invalid_pass_through_property(tmp_path: Path, old: str, new: str, named: str) -> None:
    errors = _errors(_mutated_copy(tmp_path, old, new))
    assert any(named in error for error in errors), errors


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("InvokeMode: RESPONSE_STREAM", "InvokeMode: BOGUS"),
        ("Runtime: python3.12", "Runtime: python9.9"),
    ],
    ids=["function-url-invoke-mode", "runtime"],
)
def test_sam_validate_lint_misses_invalid_pass_through_property(sam: str, tmp_path: Path, old: str, new: str) -> None:
    # Why devstack.template_check exists. If this starts failing, `sam validate --lint` has caught
    # up and the translate-and-lint check may be redundant.
    completed = sam_validate_lint(_mutated_copy(tmp_path, old, new), sam)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_worker_always_finishes_a_run_before_its_message_reappears(template: dict) -> None:
    resources = template["Resources"]
    max_run_seconds = template["Parameters"]["MaxRunSeconds"]["MaxValue"]
    worker_timeout = resources["WorkerFunction"]["Properties"]["Timeout"]
    visibility_timeout = resources["RunQueue"]["Properties"]["VisibilityTimeout"]
    assert max_run_seconds < worker_timeout < visibility_timeout
    assert template["Parameters"]["StreamRetentionSeconds"]["MinValue"] >= max_run_seconds


def test_a_dead_workers_message_reappears_after_its_lease_and_before_its_run_expires(template: dict) -> None:
    from runwire.settings import Settings
    from runwire.wiring import worker_policy

    resources = template["Resources"]
    queue = resources["RunQueue"]["Properties"]
    worker = resources["WorkerFunction"]["Properties"]
    worker_env = worker["Environment"]["Variables"]
    # Lambda refuses an event source mapping whose queue hides messages for less than the function may run.
    assert queue["VisibilityTimeout"] >= worker["Timeout"]
    assert int(worker_env["RUN_QUEUE_VISIBILITY_SECONDS"]) == queue["VisibilityTimeout"]
    # The delivery after MAX_ATTEMPTS dead workers must still find the message, to end the run.
    assert queue["RedrivePolicy"]["maxReceiveCount"] > int(worker_env["MAX_ATTEMPTS"]) + 1
    parameters = template["Parameters"]
    for max_run in (parameters["MaxRunSeconds"]["MinValue"], parameters["MaxRunSeconds"]["MaxValue"]):
        shared = template["Globals"]["Function"]["Environment"]["Variables"]
        settings = Settings.from_environ({
            **{k: str(v) for k, v in {**shared, **worker_env}.items() if isinstance(v, str | int)},
            "MAX_RUN_SECONDS": str(max_run),
            "STREAM_RETENTION_SECONDS": str(max(max_run, parameters["StreamRetentionSeconds"]["MinValue"])),
        })
        policy = worker_policy(settings)
        lease = policy.lease
        # Renewed several times per lease; the message reappears only once the lease has lapsed.
        assert lease.renew_seconds * 3 <= lease.lease_seconds < lease.message_visibility_seconds
        claimed_at = 1000.0
        # The latest a run can end: its deadline, then a take-over per allowed death, then one slow
        # redelivery (a worker that died before it could shorten its message's visibility).
        latest_end = claimed_at + max_run + lease.max_attempts * (lease.lease_seconds + lease.message_visibility_seconds) \
            + queue["VisibilityTimeout"]
        assert policy.claimed_expiry(claimed_at) >= latest_end + policy.retention_seconds - 1


def test_load_template_reads_short_form_intrinsics_as_long_form(tmp_path: Path) -> None:
    source = tmp_path / "short.yaml"
    source.write_text(
        "AWSTemplateFormatVersion: 2010-09-09\n"
        "Resources:\n"
        "  R:\n"
        "    Type: X\n"
        "    Properties:\n"
        "      A: !Ref P\n"
        "      B: !GetAtt Fn.Url.FunctionUrl\n"
        "      C: !GetAtt [Q, Arn]\n"
        "      D: !Sub '${AWS::Region}-x'\n"
        "      E: !If [Cond, !Select [0, !Split [',', !Ref L]], !Ref AWS::NoValue]\n"
        "      F: !Join ['', [a, !Base64 b]]\n"
        "      G: !Not [!Equals [!Ref P, '']]\n",
        encoding="utf-8",
    )
    loaded = load_template(source)
    assert loaded["AWSTemplateFormatVersion"] == "2010-09-09"
    assert loaded["Resources"]["R"]["Properties"] == {
        "A": {"Ref": "P"},
        "B": {"Fn::GetAtt": ["Fn", "Url.FunctionUrl"]},
        "C": {"Fn::GetAtt": ["Q", "Arn"]},
        "D": {"Fn::Sub": "${AWS::Region}-x"},
        "E": {"Fn::If": ["Cond", {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "L"}]}]}, {"Ref": "AWS::NoValue"}]},
        "F": {"Fn::Join": ["", ["a", {"Fn::Base64": "b"}]]},
        "G": {"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, ""]}]},
    }


def test_make_build_packages_layer_and_stream_start_script(sam: str, tmp_path: Path) -> None:
    # `make build` finds the runtime's Python by itself (devstack.deploy): no PYENV_VERSION, no Docker.
    from devstack.deploy import find_interpreter, runtime_version

    environment = {k: v for k, v in os.environ.items() if k != "PYENV_VERSION"} | {"SAM_CLI": sam}
    if find_interpreter(runtime_version(load_template(TEMPLATE)), environment) is None:
        pytest.skip("no Python of the functions' runtime version on this machine (tests/functional/test_deploy.py "
                    "checks the message make build gives then)")
    build_dir = tmp_path / "build"
    completed = subprocess.run(
        # --no-cached: samconfig.toml turns the cache on, and it would write .aws-sam/ into the repo.
        ["make", "--no-print-directory", "build", f"SAM={sam}", f"SAM_ARGS=--build-dir {build_dir} --no-cached"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr

    layer = build_dir / "CommonLayer" / "python"
    assert (layer / "runwire" / "__init__.py").is_file()
    # Dependencies were fetched for the functions' architecture, not the build machine's.
    assert list(layer.glob("pydantic_core/*aarch64*.so")), sorted(p.name for p in layer.glob("pydantic_core/*"))
    run_script = build_dir / "StreamFunction" / "run.sh"
    assert run_script.is_file() and os.access(run_script, os.X_OK)
    assert (build_dir / "SweepFunction" / "app.py").is_file()


# --- the sweep that ends runs left waiting for their client ----------------------------------------
@pytest.fixture(scope="module")
def translated(template: dict) -> dict:
    from devstack.template_check import translate

    return translate(template)


def _of_type(cloudformation: dict, resource_type: str) -> dict[str, dict]:
    return {name: r for name, r in cloudformation["Resources"].items() if r["Type"] == resource_type}


def _statements(cloudformation: dict, function: str) -> list[dict]:
    """The function's unconditional policy statements (those under an `Fn::If` are left out)."""
    role = cloudformation["Resources"][f"{function}Role"]["Properties"]
    statements = [statement for policy in role.get("Policies", []) for statement in policy["PolicyDocument"]["Statement"]]
    return [statement for statement in statements if "Effect" in statement]


def _allows(statement: dict, action: str) -> bool:
    actions = statement["Action"]
    return statement["Effect"] == "Allow" and action in ([actions] if isinstance(actions, str) else actions)


def test_a_schedule_invokes_the_sweep_every_minute(translated: dict) -> None:
    rules = [
        (name, rule["Properties"]) for name, rule in _of_type(translated, "AWS::Events::Rule").items()
        if {"Fn::GetAtt": ["SweepFunction", "Arn"]} in [t["Arn"] for t in rule["Properties"]["Targets"]]
    ]
    assert [(p["ScheduleExpression"], p["State"]) for _, p in rules] == [("rate(1 minute)", "ENABLED")]
    (rule_name, _), = rules
    permissions = [p["Properties"] for p in _of_type(translated, "AWS::Lambda::Permission").values()]
    assert {
        "Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "SweepFunction"},
        "Principal": "events.amazonaws.com", "SourceArn": {"Fn::GetAtt": [rule_name, "Arn"]},
    } in permissions


def test_the_sweep_finishes_within_its_schedule_period(template: dict) -> None:
    # A sweep outliving its minute would overlap the next one: harmless (conditional writes), but wasted.
    assert template["Resources"]["SweepFunction"]["Properties"]["Timeout"] <= 60


def test_the_sweep_may_query_the_indexes_it_reads(template: dict, translated: dict) -> None:
    from runwire.adapters.dynamodb import LEASED_INDEX, WAITING_INDEX

    indexes = template["Resources"]["RunsTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert {WAITING_INDEX, LEASED_INDEX} <= {index["IndexName"] for index in indexes}
    queries = [s["Resource"] for s in _statements(translated, "SweepFunction") if _allows(s, "dynamodb:Query")]
    index_queries = [resource for resource in queries if isinstance(resource, list)]
    assert index_queries == [[{"Fn::Sub": f"${{RunsTable.Arn}}/index/{name}"} for name in (WAITING_INDEX, LEASED_INDEX)]]


def test_the_sweep_writes_runs_only_inside_a_transaction(translated: dict) -> None:
    # What ending a run is (DynamoDBRunStore.finish): chunk Puts + a run Update in one TransactWriteItems.
    statements = _statements(translated, "SweepFunction")
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem"):
        (writes,) = [s for s in statements if _allows(s, action)]
        assert writes["Resource"] == {"Fn::GetAtt": ["RunsTable", "Arn"]}
        assert writes.get("Condition") == {"StringEquals": {"dynamodb:EnclosingOperation": "TransactWriteItems"}}
    assert not [s for s in statements if _allows(s, "dynamodb:DeleteItem") or _allows(s, "dynamodb:BatchWriteItem")]


@pytest.mark.parametrize("function", ["StartRunFunction", "StreamFunction", "WorkerFunction", "SweepFunction"])
def test_every_function_that_ends_runs_may_write_their_terminal_transaction(translated: dict, function: str) -> None:
    # TransactWriteItems has no IAM action of its own: each Put and Update in it needs PutItem and
    # UpdateItem on the table (DynamoDB developer guide, "Using IAM with DynamoDB transactions").
    table = {"Fn::GetAtt": ["RunsTable", "Arn"]}
    statements = [s for s in _statements(translated, function) if s["Resource"] == table]
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"):
        assert any(_allows(s, action) for s in statements), (function, action)


# The worker re-sends the message of a run queued behind another run of its conversation.
@pytest.mark.parametrize("function", ["StartRunFunction", "StreamFunction", "WorkerFunction"])
def test_functions_that_answer_runs_may_requeue_them(translated: dict, function: str) -> None:
    sends = [s["Resource"] for s in _statements(translated, function) if _allows(s, "sqs:SendMessage")]
    assert {"Fn::GetAtt": ["RunQueue", "Arn"]} in sends
    assert all(send in ({"Fn::GetAtt": ["RunQueue", "Arn"]}, {"Fn::GetAtt": ["WebhookQueue", "Arn"]}) for send in sends)


def test_action_timeout_reaches_the_worker_as_its_setting(template: dict, translated: dict) -> None:
    from runwire.settings import Settings

    worker_env = translated["Resources"]["WorkerFunction"]["Properties"]["Environment"]["Variables"]
    assert worker_env["ACTION_TIMEOUT_SECONDS"] == {"Ref": "ActionTimeoutSeconds"}
    default = template["Parameters"]["ActionTimeoutSeconds"]["Default"]
    assert default == 3600
    settings = Settings.from_environ({"ACTION_TIMEOUT_SECONDS": str(default)})
    assert settings.action_timeout_seconds == default


def test_the_sweep_judges_a_lost_message_by_the_workers_own_lease_settings(template: dict) -> None:
    resources = template["Resources"]
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    for function in ("WorkerFunction", "SweepFunction"):
        own = resources[function]["Properties"]["Environment"]["Variables"]
        assert {"LEASE_SECONDS", "MESSAGE_VISIBILITY_SECONDS"} <= shared.keys() and not own.keys() & {
            "LEASE_SECONDS", "MESSAGE_VISIBILITY_SECONDS"}, "one place for the lease's settings"
    assert resources["SweepFunction"]["Properties"]["Environment"]["Variables"]["RUN_QUEUE_URL"] == {"Ref": "RunQueue"}


def test_the_worker_may_do_every_item_write_its_transactions_hold(translated: dict) -> None:
    # TransactWriteItems is authorized item by item: the claim Puts the fence, a chunk write checks it,
    # an ending Deletes it (DynamoDBRunStore._hand_to, _held_check, finish/suspend).
    statements = _statements(translated, "WorkerFunction")
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem"):
        assert [s for s in statements if _allows(s, action) and s["Resource"] == {"Fn::GetAtt": ["RunsTable", "Arn"]}], action


# --- listing runs and conversations (issue 12, point 4) -------------------------------------------
def _index(template: dict, name: str) -> dict:
    (index,) = [i for i in template["Resources"]["RunsTable"]["Properties"]["GlobalSecondaryIndexes"]
                if i["IndexName"] == name]
    return index


def test_the_api_may_query_the_listing_indexes(template: dict, translated: dict) -> None:
    from runwire.adapters.dynamodb import CONVERSATION_RUNS_INDEX, ORG_LISTING_INDEX

    names = (ORG_LISTING_INDEX, CONVERSATION_RUNS_INDEX)
    for name in names:
        _index(template, name)
    table = {"Fn::GetAtt": ["RunsTable", "Arn"]}
    queries = [s["Resource"] for s in _statements(translated, "StartRunFunction")
               if _allows(s, "dynamodb:Query") and s["Resource"] != table]
    assert queries == [[{"Fn::Sub": f"${{RunsTable.Arn}}/index/{name}"} for name in names]]


def test_the_api_batch_deletes_conversations_items_only(translated: dict) -> None:
    from runwire.adapters.dynamodb import run_key
    from runwire.adapters.dynamodb_conversations import conversation_key

    (batch,) = [s for s in _statements(translated, "StartRunFunction") if _allows(s, "dynamodb:BatchWriteItem")]
    assert batch["Resource"] == {"Fn::GetAtt": ["RunsTable", "Arn"]}
    ((operator, condition),) = batch["Condition"].items()
    assert operator == "ForAllValues:StringLike"
    (pattern,) = condition["dynamodb:LeadingKeys"]
    assert pattern.endswith("*") and conversation_key("acme", "c-1").startswith(pattern[:-1])
    assert not run_key("acme", "run_1").startswith(pattern[:-1])


@pytest.mark.parametrize("index_name", ["OrgListing", "ConversationRuns"])
def test_a_run_summary_reads_the_same_from_a_listing_index_as_from_the_run(template: dict, index_name: str) -> None:
    # DynamoDB returns only what an index projects: an attribute left out would vanish from listings.
    from runwire.adapters.dynamodb import _decode_summary, _encode_run
    from runwire.core.models import RunError, RunRecord, RunRequest, RunStatus, RunSummary, Usage

    run = RunRecord(
        run_id="run_1", org_id="acme", user_id="u1", agent_id="ag_chat", status=RunStatus.FAILED,
        request=RunRequest(task="hi", conversation_id="c-1"), created_at=1.5, expires_at=9, started_at=2.5,
        finished_at=3.5, cancel_requested=True, usage=Usage(model="m", input_tokens=1, output_tokens=2),
        error=RunError(code="model_error", message="no"),
    )
    index = _index(template, index_name)
    projected = {*index["Projection"]["NonKeyAttributes"], *(k["AttributeName"] for k in index["KeySchema"]), "pk", "sk"}
    item = _encode_run(run)
    assert all(k["AttributeName"] in item for k in index["KeySchema"])
    assert _decode_summary({name: value for name, value in item.items() if name in projected}) == RunSummary.of(run)
