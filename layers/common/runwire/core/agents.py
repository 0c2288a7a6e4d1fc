"""The shipped agents. `agentRole` picks one by role; surfaces that address agents by id use `ag_*`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UnknownAgentError


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


class AgentCatalog:
    def __init__(self, agents: list[AgentDefinition]) -> None:
        self._by_role = {agent.role: agent for agent in agents}
        self._by_id = {agent.agent_id: agent for agent in agents}

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


def default_catalog() -> AgentCatalog:
    return AgentCatalog([CHAT, SUMMARIZER])
