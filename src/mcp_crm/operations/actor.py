from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Actor:
    """Who is acting, where: every read and write is scoped to `workspace_id`."""

    workspace_id: str
    user_id: str | None
    via: str  # stdio | http | cli | worker
    tool: str | None = None
    credential_id: str | None = None  # the API key acting (hosted mode)

    def using(self, tool: str) -> "Actor":
        return replace(self, tool=tool)
