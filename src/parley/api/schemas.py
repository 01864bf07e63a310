"""The core routes' typed contract: request bodies and response models.

Request bodies are ``Body`` subclasses (unknown fields refused). Every JSON
response is a model declared on its route, so ``/openapi.json`` describes it and
the web app's types are generated from it. Response models are built by their
``from_row`` constructors straight from table rows: explicit (they decide
exactly which fields leave the server: no password hashes, no keys), cheap (one
validation of plain values; FastAPI then serializes the model to JSON in
pydantic-core), and the JSON is the same as the hand-built dicts they replaced:
timestamps are ISO 8601 strings in UTC with a ``Z`` (``parley.http.bodies.iso``),
nulls are kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from parley.auth.scopes import EndpointGroup, KeyScopes
from parley.http.bodies import Body, Preferences, iso
from parley.messages import Source, ToolStep
from parley.storage.tables import ApiKey, Conversation, Message, User
from parley.usage.ledger import UsageTotal


class SignupIn(Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    name: str = Field(default="", max_length=200)


class LoginIn(Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class MeUpdate(Body):
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    about_me: str | None = Field(default=None, max_length=4000)
    response_style: str | None = Field(default=None, max_length=4000)
    preferences: Preferences | None = None


class PasswordChange(Body):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class PasswordConfirm(Body):
    password: str = Field(max_length=1024)


ScopeName = Annotated[str, Field(min_length=1, max_length=300)]


class KeyScopesIn(Body):
    """What a new key may do; an empty list means no limit (``parley.auth.scopes``)."""

    endpoints: list[EndpointGroup] = Field(default_factory=list, max_length=10)
    models: list[ScopeName] = Field(default_factory=list, max_length=200)
    assistants: list[ScopeName] = Field(default_factory=list, max_length=200)
    projects: list[ScopeName] = Field(default_factory=list, max_length=200)

    def scopes(self) -> KeyScopes:
        return KeyScopes(
            tuple(self.endpoints), tuple(self.models), tuple(self.assistants), tuple(self.projects)
        )


class KeyCreate(Body):
    name: str = Field(default="API key", max_length=200)
    expires_at: datetime | None = Field(
        default=None, description="When the key stops working (UTC); null: never."
    )
    scopes: KeyScopesIn | None = None


class ConversationCreate(Body):
    title: str | None = Field(default=None, max_length=300)
    model: str | None = Field(default=None, max_length=300)
    temporary: bool = False
    # The tools chosen before the first message (as PATCH's `tools`); null: the defaults.
    tools: list[str] | None = Field(default=None, max_length=200)


class ConversationUpdate(Body):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    pinned: bool | None = None
    archived: bool | None = None
    model: str | None = Field(default=None, max_length=300)
    # Enabled tool names; [] turns every tool off, null goes back to the defaults.
    tools: list[str] | None = Field(default=None, max_length=200)


class BranchIn(Body):
    message_id: str = Field(max_length=32)


class MessageUpdate(Body):
    feedback: Literal[-1, 0, 1] | None = None
    pinned: bool | None = None


class SendIn(Body):
    content: str = Field(min_length=1, max_length=100_000)
    parent_id: str | None = Field(default=None, max_length=32)
    model: str | None = Field(default=None, max_length=300)
    web_search: bool | None = Field(
        default=None,
        description="The composer's globe: true offers web search for this turn, false "
        "leaves it out; null: the conversation's tool choice decides.",
    )


class RegenerateIn(Body):
    model: str | None = Field(default=None, max_length=300)


class EditIn(Body):
    content: str = Field(min_length=1, max_length=100_000)
    model: str | None = Field(default=None, max_length=300)
    web_search: bool | None = Field(default=None, description="As in sending a message.")


class AdminUserCreate(Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    name: str = Field(default="", max_length=200)
    role: Literal["admin", "user"] = "user"


class AdminUserUpdate(Body):
    role: Literal["admin", "user"] | None = None
    status: Literal["active", "disabled", "pending"] | None = None


class AdminPasswordReset(Body):
    """``password`` empty or left out: the server makes a temporary one."""

    password: str | None = Field(default=None, max_length=1024)


class AdminPasswordResult(BaseModel):
    """The new password, shown to the administrator once (never stored in clear)."""

    password: str
    generated: bool


class AdminUserDelete(Body):
    """The user's email typed again: deleting an account cannot be undone."""

    confirm_email: str = Field(max_length=320)


class AdminSettingsUpdate(Body):
    signup: Literal["open", "closed", "approval"] | None = None
    default_model: str | None = Field(default=None, max_length=300)


class ModelIn(Body):
    """One model's settings (Admin > Providers > Edit). Prices: USD per million tokens."""

    name: str = Field(max_length=200)
    display_name: str | None = Field(default=None, max_length=200)
    context_window: int = Field(default=8192, ge=256, le=100_000_000)
    max_output_tokens: int = Field(default=1024, ge=1, le=100_000_000)
    supports_tools: bool = True
    supports_vision: bool = False
    supports_reasoning: bool = False
    input_price: float = Field(default=0.0, ge=0, le=100_000)
    cached_input_price: float = Field(default=0.0, ge=0, le=100_000)
    output_price: float = Field(default=0.0, ge=0, le=100_000)
    enabled: bool = True
    visible_to: list[str] | None = Field(
        default=None, max_length=10_000, description="user ids; null: every user"
    )


HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")]
Headers = Annotated[dict[HeaderName, Annotated[str, Field(max_length=2000)]], Field(max_length=50)]


class ProviderCreate(Body):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    kind: Literal["openai", "anthropic"] = "openai"
    base_url: str | None = Field(default=None, max_length=500)
    api_key: str | None = Field(default=None, max_length=500)
    headers: Headers = Field(default_factory=dict)
    models: list[ModelIn] = Field(default_factory=list, max_length=500)
    force: bool = Field(
        default=False, description="save even when the connection test fails ('save anyway')"
    )


class ProviderUpdate(Body):
    """Fields left out keep their value; ``api_key: null`` removes the stored key and
    an empty ``api_key`` keeps it. ``headers`` replaces them all; a header sent with
    an empty value keeps its stored value. ``models``: the per-model settings saved
    (models not listed take the endpoint's and the known-model table's values)."""

    kind: Literal["openai", "anthropic"] | None = None
    base_url: str | None = Field(default=None, max_length=500)
    api_key: str | None = Field(default=None, max_length=500)
    headers: Headers | None = None
    models: list[ModelIn] | None = Field(default=None, max_length=500)
    force: bool = False


class ProviderTest(Body):
    kind: Literal["openai", "anthropic"] = "openai"
    base_url: str | None = Field(default=None, max_length=500)
    api_key: str | None = Field(default=None, max_length=500)
    headers: Headers = Field(default_factory=dict)


# --------------------------------------------------------------------------
# Responses

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""ISO 8601 in UTC with a ``Z``, exactly as ``iso`` writes it."""

Role = Literal["admin", "user"]
UserStatus = Literal["active", "disabled", "pending"]
SignupMode = Literal["open", "closed", "approval"]
MessageStatus = Literal["complete", "streaming", "failed", "cancelled"]


def _at(moment: datetime) -> str:
    value = iso(moment)
    assert value is not None
    return value


class UserPublic(BaseModel):
    id: str
    email: str
    name: str
    role: Role
    status: UserStatus
    timezone: str
    about_me: str
    response_style: str
    preferences: dict[str, Any] = Field(
        description="empty when what is stored is not valid (``preferences_invalid``)"
    )
    preferences_invalid: bool = Field(
        default=False,
        description="the stored preferences could not be served; saving preferences replaces them",
    )
    created_at: Timestamp

    @classmethod
    def from_row(cls, user: User) -> UserPublic:
        preferences = user.stored_preferences()
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,  # type: ignore[arg-type]
            status=user.status,  # type: ignore[arg-type]
            timezone=user.timezone,
            about_me=user.about_me,
            response_style=user.response_style,
            preferences=preferences if preferences is not None else {},
            preferences_invalid=preferences is None,
            created_at=_at(user.created_at),
        )


class UserEnvelope(BaseModel):
    user: UserPublic

    @classmethod
    def from_row(cls, user: User) -> UserEnvelope:
        return cls(user=UserPublic.from_row(user))


class RowProblem(BaseModel):
    """A stored row that could not be shown; the rest of the list still is."""

    id: str
    detail: str


class UserList(BaseModel):
    items: list[UserPublic]
    problems: list[RowProblem] = Field(
        default_factory=list, description="users whose stored record could not be shown"
    )


class AuthConfig(BaseModel):
    signup: SignupMode
    has_users: bool
    currency: str = Field(default="USD", description="The currency costs are shown in.")


class KeyScopesOut(BaseModel):
    """A key's limits; an empty list: no limit. ``assistants`` (ids or slugs) limits
    the ``assistant/<slug>`` models; ``projects`` (ids) the projects its requests run
    in and the chats they reach (``parley.auth.scopes``)."""

    endpoints: list[str]
    models: list[str]
    assistants: list[str]
    projects: list[str]


class KeyPublic(BaseModel):
    """An API key's metadata (the key itself is shown once, at creation)."""

    id: str
    name: str
    prefix: str
    created_at: Timestamp
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None
    expires_at: Timestamp | None = Field(description="Refused from then on; null: never.")
    scopes: KeyScopesOut

    @classmethod
    def from_row(cls, key: ApiKey) -> KeyPublic:
        scopes = KeyScopes.from_stored(key.scopes)
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            created_at=_at(key.created_at),
            last_used_at=iso(key.last_used_at),
            revoked_at=iso(key.revoked_at),
            expires_at=iso(key.expires_at),
            scopes=KeyScopesOut(
                endpoints=list(scopes.endpoints),
                models=list(scopes.models),
                assistants=list(scopes.assistants),
                projects=list(scopes.projects),
            ),
        )


class KeyCreated(KeyPublic):
    key: str = Field(description="The plaintext key: shown this once, never stored.")


class KeyList(BaseModel):
    items: list[KeyPublic]


class ConversationPublic(BaseModel):
    id: str
    title: str
    model: str | None
    pinned: bool
    archived: bool
    temporary: bool
    tools: list[str] | None = Field(description="Enabled tool names; null: the defaults.")
    assistant_id: str | None = Field(
        default=None, description="The assistant the chat is with (GET .../assistant)."
    )
    project_id: str | None = Field(
        default=None, description="The project the chat is in (GET /api/projects/{id})."
    )
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, conv: Conversation) -> ConversationPublic:
        return cls(
            id=conv.id,
            title=conv.title,
            model=conv.model,
            pinned=conv.pinned,
            archived=conv.archived,
            temporary=conv.temporary,
            # stored [] = the defaults (null here), [""] = none ([] here)
            tools=[t for t in conv.tools if t] if conv.tools else None,
            assistant_id=conv.assistant_id,
            project_id=conv.project_id,
            created_at=_at(conv.created_at),
            updated_at=_at(conv.updated_at),
        )


class ConversationPage(BaseModel):
    items: list[ConversationPublic]
    next_cursor: str | None


class Attempt(BaseModel):
    """One try of one model for an answer (``parley.providers.failover.Attempt``)."""

    model: str
    error: str | None = Field(description="the error code; null: this one answered")
    label: str = Field(description="the error in a few words: rate limited, timed out...")
    at: str
    ms: float


class RouteOut(BaseModel):
    """How the Auto model chose an answer's model (``parley.routing``)."""

    auto: bool = Field(description="always true: the chat's model was Auto")
    rule: str = Field(
        description="the rule that matched: vision, tools, long_context, light, heavy, "
        "budget, or default"
    )
    reason: str = Field(description="a few words shown on the message: short question...")
    scope: str = Field(description="whose rules: instance, assistant or project")


class MessagePublic(BaseModel):
    id: str
    conversation_id: str
    parent_id: str | None
    role: str
    content: str
    reasoning: str
    steps: list[ToolStep]
    sources: list[Source]
    status: MessageStatus
    provider: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    latency_ms: float | None
    ttft_ms: float | None
    finish_reason: str | None
    cost: float
    error_code: str | None
    error_message: str | None
    attempts: list[Attempt] | None = Field(
        description="the model calls that failed before the answer, then the one that "
        "answered (error null); null when the first try answered",
    )
    route: RouteOut | None = Field(
        description="how Auto chose `model` for this answer; null when the chat named it",
    )
    notice: str | None = Field(
        description="what a budget changed or warns of: answered by a cheaper model "
        "once a budget was spent, or 80% of a budget used; null otherwise",
    )
    feedback: int
    pinned: bool
    created_at: Timestamp
    siblings: list[str] = Field(
        description="Ids of the messages with the same parent, oldest first, itself included."
    )

    @classmethod
    def from_row(cls, msg: Message, siblings: list[str] | None = None) -> MessagePublic:
        return cls(
            id=msg.id,
            conversation_id=msg.conversation_id,
            parent_id=msg.parent_id,
            role=msg.role,
            content=msg.content,
            reasoning=msg.reasoning,
            steps=msg.steps or [],
            sources=msg.sources or [],
            status=msg.status,  # type: ignore[arg-type]
            provider=msg.provider,
            model=msg.model,
            input_tokens=msg.input_tokens,
            output_tokens=msg.output_tokens,
            latency_ms=msg.latency_ms,
            ttft_ms=msg.ttft_ms,
            finish_reason=msg.finish_reason,
            cost=msg.cost,
            error_code=msg.error_code,
            error_message=msg.error_message,
            attempts=msg.attempts or None,
            route=RouteOut(**msg.route) if msg.route else None,
            notice=msg.notice,
            feedback=msg.feedback,
            pinned=msg.pinned,
            created_at=_at(msg.created_at),
            siblings=siblings if siblings is not None else [msg.id],
        )


def message_out(msg: Message, siblings: list[str] | None = None) -> dict[str, Any]:
    """A message as a JSON-ready dict, for the frames of a turn's event stream
    (``parley.api.turn_stream``); the shape is ``MessagePublic``'s."""
    return MessagePublic.from_row(msg, siblings).model_dump(mode="json")


class SummaryPublic(BaseModel):
    """The stored summary of a branch's older turns (sent to the model instead of them)."""

    text: str
    until_message_id: str


class ConversationDetail(BaseModel):
    conversation: ConversationPublic
    messages: list[MessagePublic] = Field(description="The active branch, root to leaf.")
    summary: SummaryPublic | None


class SearchHit(BaseModel):
    conversation_id: str
    title: str
    message_id: str | None
    snippet: str
    highlights: list[tuple[int, int]] = Field(
        description="[start, end) code-point offsets into snippet."
    )


class SearchResults(BaseModel):
    items: list[SearchHit]


class ModelPublic(BaseModel):
    ref: str
    provider: str
    name: str
    display_name: str
    context_window: int
    supports_tools: bool
    supports_vision: bool
    input_price: float
    output_price: float
    tool_use: bool = Field(
        default=True, description="False: Parley offers this model no tools (too small for them)."
    )
    demo: bool = Field(
        default=False, description="A starter model for trying Parley, not for real work."
    )
    auto: bool = Field(
        default=False,
        description="The Auto model (ref `auto`): the admins' routing rules pick a model "
        "for each question",
    )


class LocalModelStatus(BaseModel):
    status: Literal["disabled", "not_loaded", "loading", "ready", "error"]
    detail: str
    ref: str | None = Field(default=None, description="The embedded model's ref, when enabled.")
    demo: bool = Field(default=False, description="It is the bundled starter (demo) model.")


class ModelList(BaseModel):
    items: list[ModelPublic]
    default: str | None
    local: LocalModelStatus


class InstanceSettings(BaseModel):
    signup: SignupMode
    default_model: str | None


class ModelSettings(BaseModel):
    """A model's effective settings: the admin's (``customized``), else what the
    endpoint said, else the known-model table (``known``), else the defaults."""

    name: str
    display_name: str | None
    context_window: int
    max_output_tokens: int
    supports_vision: bool
    supports_tools: bool
    supports_reasoning: bool
    input_price: float
    cached_input_price: float
    output_price: float
    enabled: bool
    visible_to: list[str] | None
    customized: bool
    known: bool


class ProviderInfo(BaseModel):
    """A provider as the admin page shows it (its key never leaves the server)."""

    name: str
    kind: str
    base_url: str | None
    source: Literal["config", "environment", "database", "builtin"]
    has_key: bool
    editable: bool
    models: list[str]
    model_settings: list[ModelSettings]
    header_names: list[str] = Field(description="names only; values never leave the server")


class ProviderList(BaseModel):
    items: list[ProviderInfo]


class ProviderTestResult(BaseModel):
    ok: bool
    models: list[str]
    error: str | None


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class LocalServer(BaseModel):
    """A model server found on this machine by the first-run setup."""

    address: str = Field(description="host:port probed (a loopback address).")
    kind: Literal["ollama", "lmstudio", "llamacpp", "vllm", "openai"]
    label: str = Field(description="What it looks like: Ollama, LM Studio, llama.cpp server...")
    base_url: str = Field(description="The OpenAI-compatible base URL to add it with.")
    suggested_name: str = Field(description="A free provider name for it.")
    models: list[str]
    added_as: str | None = Field(
        default=None, description="The provider already using this base URL, if any."
    )


class LocalServerList(BaseModel):
    items: list[LocalServer]
    probed: list[str] = Field(description="Every address looked at, found or not.")


class UsageTotalOut(BaseModel):
    key: str | None = Field(
        description="The day (YYYY-MM-DD, UTC), the model ref, or the API key id "
        "(null: calls made without a key)."
    )
    name: str | None = Field(default=None, description="The API key's name (by key only).")
    requests: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost: float = Field(description="In the instance's currency (``currency``).")

    @classmethod
    def of(cls, total: UsageTotal, name: str | None = None) -> UsageTotalOut:
        return cls(
            key=total.key,
            name=name,
            requests=total.requests,
            input_tokens=total.input_tokens,
            cached_input_tokens=total.cached_input_tokens,
            output_tokens=total.output_tokens,
            cost=total.cost,
        )


class UsageSummary(BaseModel):
    """The caller's recorded usage since ``since`` (``GET /api/me/usage``)."""

    since: Timestamp
    currency: str = Field(description="The currency of every cost (ISO 4217).")
    by_day: list[UsageTotalOut]
    by_model: list[UsageTotalOut]
    by_key: list[UsageTotalOut]
