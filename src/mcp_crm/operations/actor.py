from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Actor:
    """Who is acting, where: every read and write is scoped to `workspace_id`."""

    workspace_id: str
    user_id: str | None
    via: str  # stdio | http | cli
    tool: str | None = None

    def using(self, tool: str) -> "Actor":
        return replace(self, tool=tool)
