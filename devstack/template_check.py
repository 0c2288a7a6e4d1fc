"""Check `template.yaml` the way CloudFormation will receive it: SAM-translate it, then cfn-lint that.

Why not `sam validate --lint` alone: cfn-lint (which it runs) checks SAM resources against SAM's
own schemas without running the SAM transform, so what SAM only passes through to the resources it
generates is never checked against the CloudFormation schemas: `FunctionUrlConfig.InvokeMode: BOGUS`
(for `AWS::Lambda::Url`) or `Runtime: python9.9` (for `AWS::Lambda::Function`) pass it and fail at
deploy time. Translating with samtranslator first and linting the resulting CloudFormation catches
them. Nothing here calls AWS: the managed policy map is empty (name managed policies by ARN) and the
region is given, not read from the caller's AWS configuration.

    python -m devstack.template_check [template.yaml]

prints each check's result and exits non-zero when one fails. `sam validate --lint` runs too when a
`sam` executable is found (`$SAM_CLI`, else `sam` on PATH); it is reported as skipped otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import cfnlint.api
from samtranslator.model.exceptions import InvalidDocumentException, InvalidTemplateException
from samtranslator.parser.parser import Parser
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.translator import Translator

from devstack.resources import load_template

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
DEFAULT_REGION = "us-east-1"
# Local paths that `sam package` would upload; the translator only accepts S3 locations.
_ARTIFACT_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}
_PLACEHOLDER_BUCKET = "template-check-artifacts"


@dataclass(frozen=True)
class Finding:
    """One problem found in a template. `rule_id` is cfn-lint's (E..., W..., I...) or "SAM"."""

    rule_id: str
    message: str
    location: str = ""

    @property
    def is_error(self) -> bool:
        return self.rule_id == "SAM" or self.rule_id.startswith("E")

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"[{self.rule_id}]{where}: {self.message}"


class OfflineManagedPolicyLoader(ManagedPolicyLoader):
    """Knows no managed policies by name, so translation never lists them through IAM."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return {}


def find_sam() -> str | None:
    """The SAM CLI to run: `$SAM_CLI` when set, else `sam` on PATH."""
    return os.environ.get("SAM_CLI") or shutil.which("sam")


def translate(
    template: Mapping[str, Any],
    region: str = DEFAULT_REGION,
    parameter_values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """SAM-translate a template (as `load_template` returns it) into plain CloudFormation.

    Raises samtranslator's InvalidDocumentException when the template is not valid SAM.
    """
    sam_template = json.loads(json.dumps(template))  # a deep copy: the translator edits in place
    _point_local_artifacts_at_s3(sam_template)
    # Translator rather than samtranslator's transform(): transform() builds a default boto3
    # session, which would make the result depend on the caller's AWS region configuration.
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=region),
    )
    policies = OfflineManagedPolicyLoader()
    return translator.translate(
        sam_template,
        parameter_values=dict(parameter_values or {}),
        get_managed_policy_map=policies.load,
    )


def lint(cloudformation: Mapping[str, Any], region: str = DEFAULT_REGION) -> list[Finding]:
    """cfn-lint a plain CloudFormation template (a translated one) for one region."""
    matches = cfnlint.api.lint(json.dumps(cloudformation), regions=[region])
    return [
        Finding(
            rule_id=match.rule.id,
            message=match.message,
            location="/".join(str(part) for part in getattr(match, "path", None) or ()),
        )
        for match in matches
    ]


def check_translated(path: str | Path = DEFAULT_TEMPLATE, region: str = DEFAULT_REGION) -> list[Finding]:
    """Translate the template at `path` and lint the result; translation errors are findings too."""
    try:
        cloudformation = translate(load_template(path), region=region)
    except (InvalidDocumentException, InvalidTemplateException) as error:
        return list(_translation_findings(error))
    return lint(cloudformation, region=region)


def sam_validate_lint(path: str | Path, sam: str, region: str = DEFAULT_REGION) -> subprocess.CompletedProcess[str]:
    """Run `sam validate --lint` on the template at `path`."""
    environment = {**os.environ, "AWS_DEFAULT_REGION": region, "SAM_CLI_TELEMETRY": "0"}
    return subprocess.run(
        [sam, "validate", "--lint", "--template-file", str(path), "--region", region],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    arguments.add_argument("template", nargs="?", default=str(DEFAULT_TEMPLATE))
    arguments.add_argument("--region", default=DEFAULT_REGION)
    options = arguments.parse_args(argv)
    failed = False

    sam = find_sam()
    if sam is None:
        print("sam validate --lint: skipped (no sam executable: set SAM_CLI or put sam on PATH)")
    else:
        completed = sam_validate_lint(options.template, sam, options.region)
        status = "ok" if completed.returncode == 0 else f"FAILED (exit {completed.returncode})"
        print(f"sam validate --lint: {status}")
        if completed.returncode != 0:
            failed = True
            print((completed.stdout + completed.stderr).rstrip())

    findings = check_translated(options.template, options.region)
    errors = [finding for finding in findings if finding.is_error]
    notes = [finding for finding in findings if not finding.is_error]
    status = "ok" if not errors else f"FAILED ({len(errors)} errors)"
    print(f"samtranslator + cfn-lint: {status}, {len(notes)} warnings")
    for finding in errors + notes:
        print(f"  {finding}")
    failed = failed or bool(errors)
    return 1 if failed else 0


def _point_local_artifacts_at_s3(template: dict[str, Any]) -> None:
    for logical_id, resource in template.get("Resources", {}).items():
        name = _ARTIFACT_PROPERTIES.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        if name and _is_local_path(properties.get(name)):
            properties[name] = f"s3://{_PLACEHOLDER_BUCKET}/{logical_id}.zip"
    function_globals = template.get("Globals", {}).get("Function", {})
    if _is_local_path(function_globals.get("CodeUri")):
        function_globals["CodeUri"] = f"s3://{_PLACEHOLDER_BUCKET}/globals.zip"


def _is_local_path(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith("s3://")


def _translation_findings(error: InvalidDocumentException | InvalidTemplateException) -> Iterator[Finding]:
    causes = getattr(error, "causes", None) or [error]
    for cause in causes:
        yield Finding(rule_id="SAM", message=str(getattr(cause, "message", cause)))


if __name__ == "__main__":
    sys.exit(main())
