"""The shipped agents. `agentRole` picks one by role; surfaces that address agents by id use `ag_*`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field, ValidationError, model_validator

from ..errors import ConfigurationError, UnknownAgentError
from .models import WireModel


@dataclass(frozen=True)
class AgentDefinition:
    role: str
    agent_id: str
    description: str
    system_prompt: str
    tools: list[str] = field(default_factory=list)
    model: str | None = None
    """None: the deployment's default model."""
    max_steps: int = 8
    """Model calls per run, counting the calls that follow tool results."""
    approval_required: list[str] = field(default_factory=list)
    """Tools that pause the run for a person's approval before they run."""


CHAT = AgentDefinition(
    role="chat",
    agent_id="ag_chat",
    description="General assistant. Can do exact arithmetic and tell the time.",
    system_prompt=(
        "You are a helpful, concise assistant. Use the calculator tool for any arithmetic "
        "and the current_time tool when the answer depends on today's date."
    ),
    tools=["calculator", "current_time"],
)

SUMMARIZER = AgentDefinition(
    role="summarizer",
    agent_id="ag_summarizer",
    description="Summarises the text or documents it is given, in short bullet points.",
    system_prompt="You summarise what you are given in at most five short bullet points.",
)


class AgentSpec(WireModel):
    """An operator's own agent, from `EXTRA_AGENTS` (a JSON list of these, camelCase)."""

    agent_id: Annotated[str, Field(pattern=r"^ag_[A-Za-z0-9_-]{1,64}$")]
    role: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
    description: str = ""
    system_prompt: Annotated[str, Field(min_length=1)]
    tools: list[str] = Field(default_factory=list)
    model: str | None = None
    approval_required: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _approvals_name_own_tools(self) -> AgentSpec:
        strays = sorted(set(self.approval_required) - set(self.tools))
        if strays:
            raise ValueError(f"approvalRequired names tools the agent does not have: {', '.join(strays)}")
        return self

    def definition(self) -> AgentDefinition:
        return AgentDefinition(
            role=self.role, agent_id=self.agent_id, description=self.description,
            system_prompt=self.system_prompt, tools=list(self.tools), model=self.model,
            approval_required=list(self.approval_required),
        )


def parse_agent_specs(document: str) -> list[AgentDefinition]:
    """`EXTRA_AGENTS`: a JSON list of `AgentSpec`s. A bad document stops the cold start, loudly."""
    try:
        raw = json.loads(document)
        if not isinstance(raw, list):
            raise ValueError("EXTRA_AGENTS must be a JSON list of agents")
        return [AgentSpec.model_validate(item, strict=False).definition() for item in raw]
    except (ValueError, ValidationError) as exc:
        raise ConfigurationError(f"EXTRA_AGENTS is not a valid list of agents: {exc}") from exc


class AgentCatalog:
    def __init__(self, agents: list[AgentDefinition]) -> None:
        self._by_role: dict[str, AgentDefinition] = {}
        self._by_id: dict[str, AgentDefinition] = {}
        for agent in agents:
            if agent.role in self._by_role or agent.agent_id in self._by_id:
                raise ConfigurationError(f"two agents share the role {agent.role!r} or the id {agent.agent_id!r}")
            self._by_role[agent.role] = agent
            self._by_id[agent.agent_id] = agent

    def by_role(self, role: str) -> AgentDefinition:
        try:
            return self._by_role[role]
        except KeyError:
            known = ", ".join(sorted(self._by_role))
            raise UnknownAgentError(f"unknown agentRole {role!r}; known roles: {known}") from None

    def by_id(self, agent_id: str) -> AgentDefinition:
        try:
            return self._by_id[agent_id]
        except KeyError:
            raise UnknownAgentError(f"agent {agent_id!r} not found") from None

    def all(self) -> list[AgentDefinition]:
        return list(self._by_role.values())


def default_catalog(extra: list[AgentDefinition] | None = None) -> AgentCatalog:
    return AgentCatalog([CHAT, SUMMARIZER, *(extra or [])])
