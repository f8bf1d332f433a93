from typing import Any, Literal

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field

from mcp_crm.entities.spec import Entity, Record, meta, workspace_indexes

Role = Literal["owner", "admin", "member", "read_only"]


class User(Record, table=True):
    __tablename__ = "users"
    __table_args__ = (
        *workspace_indexes("users", "name", "email", "role"),
        UniqueConstraint("workspace_id", "email", name="uq_users_email"),
    )

    name: str = Field(min_length=1, max_length=200, description="Full name.")
    email: str = Field(
        max_length=320,
        description="Sign-in and notification address; unique in the workspace.",
        schema_extra=meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", unique=True),
    )
    role: Role = Field("member", sa_type=String(20), description="What the user may do in the workspace.")
    active: bool = Field(True, description="False for people who left; they keep their records.")


def _keep_yourself(acting_user_id: str | None, users: list[dict[str, Any]]) -> str | None:
    if any(u["id"] == acting_user_id for u in users):
        return "You cannot delete your own user; another owner or admin can, or set active=false."
    return None


USERS = Entity(
    name="users",
    singular="user",
    table=User,
    description="People on the team who own records and are assigned tasks.",
    search_columns=("name", "email"),
    on_delete="Records they own or are assigned stay, with no owner/assignee until a restore sets it back. "
    "You cannot delete yourself.",
    example={"name": "Grace Hopper", "email": "grace@example.com", "role": "member"},
    example_filter={"field": "role", "op": "in", "value": ["owner", "admin"]},
    refuse_delete=_keep_yourself,
    admin_writes=True,
)
