"""Preparing a chat turn: everything decided and stored before the model is called.

Split from the driver (``turns/driver.py``) because preparation is a different
concern with its own failures: it validates the request (the conversation, the
message placed or answered again, the model offered to the user, a spent budget),
resolves the settings that apply (an assistant's and a project's profile under the
caller's options, Auto's route, the tools on this turn) and commits the user's
message and an empty ``streaming`` answer (durability rule 1 of ``turns/runner.py``)
before anything runs. It raises the domain errors the HTTP layer maps; nothing here
streams. ``TurnService`` (``turns/runner.py``) inherits these steps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from parley.budgets.model import BudgetedModel
from parley.budgets.service import Budgets
from parley.config import Settings
from parley.container import Services
from parley.errors import (
    Forbidden,
    Invalid,
    ModelNotFound,
    NoModelAvailable,
    NotFound,
    user_wording,
)
from parley.messages import Message
from parley.providers.base import ChatModel
from parley.providers.registry import ModelRegistry
from parley.routing.rules import AUTO, Need, Route, is_auto
from parley.routing.service import BudgetQuery, RoutingService
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.tables import Conversation, User
from parley.storage.tables import Message as MessageRow
from parley.tools import ToolRegistry
from parley.turns.control import owner
from parley.turns.failover import FailoverService
from parley.turns.history import history_from_rows, history_limit, split_summarized
from parley.turns.hooks import TurnInfo
from parley.turns.options import DEFAULT as DEFAULT_OPTIONS
from parley.turns.options import (
    PROJECT_PROFILES,
    TURN_PROFILES,
    MemoryMode,
    TurnOptions,
    TurnProfile,
)
from parley.turns.picks import allows, assistant_picks, first_allowed, pickable, refused
from parley.usage.ledger import UsageLedger

TurnKind = Literal["send", "regenerate", "edit", "continue"]
"""``continue``: answer again after an answer whose client tool calls (``TurnOptions``)
now have their outputs; the new answer is that answer's child."""


@dataclass(slots=True)
class PreparedTurn:
    user_id: str
    timezone: str
    about_me: str
    response_style: str
    conversation_id: str
    user_message: MessageRow
    assistant_message: MessageRow
    siblings: dict[str, list[str]]
    history: list[Message]
    pinned: set[int]
    model: ChatModel
    enabled_tools: list[str]
    title_needed: bool
    info: TurnInfo
    history_truncated: bool = False
    summary: str | None = None  # the stored summary of the turns left out of ``history``
    owners: tuple[str, ...] = ()  # ``control.owner`` keys whose revocation stops this turn
    search_asked: bool = False  # the composer's globe was on and search is offered
    admin: bool = False  # sees a failure's detail; others get ``errors.user_wording``
    options: TurnOptions = DEFAULT_OPTIONS  # the API caller's knobs (``/v1/responses``)
    api_key_id: str | None = None  # the key the turn was asked with (the usage ledger)
    # the chat's assistant, for the ledger (``info.assistant_id`` is cleared when the
    # assistant uses the user's own memories: ``_with_memory``)
    assistant_id: str | None = None
    route: Route | None = None  # how Auto chose ``model`` (None: the chat named it)


WEB_SEARCH = "web_search"  # the tool the composer's globe turns on for one turn


class TurnPreparation:
    """``TurnService.prepare`` and its steps (a mixin: the service owns the state)."""

    db: Database
    registry: ModelRegistry
    settings: Settings
    tools: ToolRegistry
    services: Services
    failover: FailoverService
    routing: RoutingService

    async def prepare(
        self,
        user: User,
        conversation_id: str,
        *,
        kind: TurnKind,
        content: str | None = None,
        parent_id: str | None = None,
        message_id: str | None = None,
        model_ref: str | None = None,
        preferred_default: str | None = None,
        api_key_id: str | None = None,
        web_search: bool | None = None,
        options: TurnOptions = DEFAULT_OPTIONS,
        answer_id: str | None = None,
    ) -> PreparedTurn:
        """``api_key_id``: the key the request came with (revoking it stops the turn);
        ``web_search``: the composer's globe (true adds ``web_search`` to this turn's
        tools, false leaves it out, None keeps the conversation's choice);
        ``options``: an API caller's instructions, tools and sampling for this turn;
        ``answer_id``: the id the answer's row gets (a caller that recorded it already)."""
        if (ledger := self.services.get(UsageLedger)) is not None:
            await ledger.prices.fresh()  # an admin's new price applies from this turn on
        async with self.db.session() as session:
            store = ConversationStore(session, user.id)
            conv = await store.get(conversation_id)
            if conv is None:
                raise NotFound("conversation")
            profile = await self._profile(session, user.id, conv)
            if profile is not None:  # an assistant's chat: its settings under the caller's
                options = profile.merged(options)
            project = await self._project(session, user.id, conv)
            if project is not None:  # a project's chat: its settings under both
                options = project.merged(options)
            first = kind == "send" and conv.active_leaf_id is None
            parent, user_row = await self._place_user_message(
                store, conv, kind, content, parent_id, message_id
            )
            ref, picks = await self._choose(
                session, user, conv, model_ref, profile, project, preferred_default
            )
            if picks is not None:  # Auto and the fallbacks stay among the pickable models
                scope = options.may_use
                options = replace(
                    options,
                    may_use=lambda r: (scope is None or scope(r)) and allows(picks, r),
                )
            route: Route | None = None
            if is_auto(ref):  # Auto: the policy's rules pick the model for this question
                route = await self._route(
                    store, user, conv, user_row, parent, options, web_search, preferred_default
                )
                ref = route.model
            if ref is None:
                raise NoModelAvailable(
                    "No model is available: configure a provider or enable the local model."
                    if user.role == "admin"
                    else user_wording(NoModelAvailable.code)
                )
            model = await self.registry.resolve(ref)
            if not model.info.offered_to(user.id):
                raise ModelNotFound(f"Model '{ref}' is not available to you.")
            budgets = self.services.get(Budgets)
            payer, verdict, warnings = None, None, list[str]()
            if budgets is not None:  # a spent budget refuses here (nothing is committed yet)
                # reads only: the question placed above is written once, with the rest
                with session.no_autoflush:
                    payer = await budgets.payer(user.id, api_key_id, conv.project_id, session)
                    verdict, warnings = await budgets.preflight(payer, session)
                if verdict is not None:  # ... or answers with the admin's cheaper model
                    model = await self.registry.resolve(verdict.downgrade_model)
            allowed = options.may_use
            model = await self.failover.wrap(
                model, user_id=user.id, allowed=allowed and (lambda info: allowed(info.ref))
            )
            if budgets is not None and payer is not None:  # every call reserved, then settled
                budgeted = BudgetedModel(
                    model,
                    budgets,
                    payer,
                    self.registry.resolve,
                    exempt=verdict.exempt if verdict else frozenset(),
                    notices=[verdict.notice] if verdict else None,
                )
                budgeted.warnings = warnings
                model = budgeted
            if model_ref and model_ref != conv.model:
                conv.model = model_ref

            # A new question stays pending until the answer's row joins it: both are
            # written by one flush below (each statement is a round trip before the
            # model is called), so the history is read up to the question's parent.
            pending = user_row in session.new
            # Only the newest messages can fit the context window (plus pinned ones and
            # the summary's boundary): a 1,000-message conversation costs what a new one does.
            limit = history_limit(model.info.context_window)
            always = [conv.summary_until_id or ""]
            if first and parent is None:
                path = [user_row]
            elif pending:
                with session.no_autoflush:
                    above = (
                        await store.active_path(conv, window=limit - 1, always=always, leaf=parent)
                        if parent is not None
                        else []
                    )
                path = [*above, user_row]
            else:
                path = await store.active_path(conv, window=limit, always=always)
            truncated = bool(path) and path[0].parent_id is not None
            # active_path ends at the user message we answer
            kept, summary = split_summarized(path, conv.summary, conv.summary_until_id)
            history, pinned = history_from_rows(kept)
            assistant = await store.add_message(
                conv,
                role="assistant",
                content="",
                parent_id=user_row.id,
                status="streaming",
                provider=model.info.provider,
                model=model.info.ref,
                route=route.public() if route is not None else None,
                id=answer_id,  # None: a new id
            )
            if profile is not None and profile.answered is not None:
                await profile.answered(session, assistant.id)
            title_needed = not conv.title_generated and kind not in ("regenerate", "continue")
            siblings = (
                {user_row.id: [user_row.id], assistant.id: [assistant.id]}
                if first and parent is None
                else await store.siblings_map([user_row, assistant])
            )
            await session.commit()
            del parent
            info = TurnInfo(
                user_id=user.id,
                conversation_id=conv.id,
                user_message_id=user_row.id,
                assistant_message_id=assistant.id,
                query=user_row.content if user_row.role == "user" else _last_question(path),
                model=model.info,
                temporary=conv.temporary,
                project_id=conv.project_id,
                assistant_id=conv.assistant_id,
                api_key_id=api_key_id,
                preferences=dict(user.stored_preferences() or {}),
            )
            if profile is not None:
                info = _with_memory(info, profile.memory)
            if project is not None and project.project_memory:
                info = replace(
                    info, preferences={**info.preferences, "project_memory": project.project_memory}
                )
            custom = project is None or project.custom_instructions == "add"
            return PreparedTurn(
                user_id=user.id,
                timezone=user.timezone or "UTC",
                about_me=(user.about_me or "") if custom else "",
                response_style=(user.response_style or "") if custom else "",
                conversation_id=conv.id,
                user_message=user_row,
                assistant_message=assistant,
                siblings=siblings,
                history=history,
                pinned=pinned,
                model=model,
                enabled_tools=(tools := self._enabled_tools(conv, model, web_search, options)),
                search_asked=bool(web_search) and WEB_SEARCH in tools,
                title_needed=title_needed,
                info=info,
                summary=summary,
                history_truncated=truncated,
                owners=(owner("user", user.id),)
                + ((owner("key", api_key_id),) if api_key_id else ()),
                admin=user.role == "admin",
                options=options,
                api_key_id=api_key_id,
                assistant_id=conv.assistant_id,
                route=route,
            )

    async def _place_user_message(
        self,
        store: ConversationStore,
        conv: Conversation,
        kind: TurnKind,
        content: str | None,
        parent_id: str | None,
        message_id: str | None,
    ) -> tuple[str | None, MessageRow]:
        if kind == "send":
            parent = parent_id if parent_id is not None else conv.active_leaf_id
            if parent is not None and await store.get_message(parent) is None:
                raise NotFound("message", "No such parent message in this conversation.")
            row = await store.add_message(
                conv, role="user", content=content or "", parent_id=parent, flush=False
            )
            return parent, row
        target = await store.get_message(message_id or "")
        if target is None or target.conversation_id != conv.id:
            raise NotFound("message", "No such message in this conversation.")
        if kind == "edit":
            if target.role != "user":
                raise Invalid("Only your own messages can be edited.", "not_user_message")
            row = await store.add_message(
                conv,
                role="user",
                content=content or "",
                parent_id=target.parent_id,
                flush=False,
            )
            return target.parent_id, row
        if kind == "continue":
            if target.role != "assistant":
                raise Invalid("Only an answer can be continued.", "not_assistant_message")
            await store.set_active_leaf(conv, target.id)
            return target.parent_id, target
        # regenerate: answer the same user message again (a sibling of ``target``)
        if target.role == "assistant":
            user_row = await store.get_message(target.parent_id or "")
            if user_row is None:
                raise Invalid("This answer has no question to regenerate.", "orphan")
        else:
            user_row = target
        await store.set_active_leaf(conv, user_row.id)
        return user_row.parent_id, user_row

    async def _profile(
        self, session: AsyncSession, user_id: str, conv: Conversation
    ) -> TurnProfile | None:
        """The conversation's own settings (``TURN_PROFILES``: an assistant's chat)."""
        profiles = self.services.get(TURN_PROFILES) if conv.assistant_id else None
        return None if profiles is None else await profiles(session, user_id, conv)

    async def _project(
        self, session: AsyncSession, user_id: str, conv: Conversation
    ) -> TurnProfile | None:
        """The project's settings for a chat in one (``PROJECT_PROFILES``)."""
        profiles = self.services.get(PROJECT_PROFILES) if conv.project_id else None
        return None if profiles is None else await profiles(session, user_id, conv)

    def _enabled_tools(
        self,
        conv: Conversation,
        model: ChatModel,
        web_search: bool | None = None,
        options: TurnOptions = DEFAULT_OPTIONS,
    ) -> list[str]:
        if not model.info.tool_use:  # e.g. the starter model: a tool pass it cannot use
            return []
        if options.tools is not None:  # the API caller chose (hosted tools)
            return [name for name in options.tools if name in self.tools.names()]
        if conv.tools:
            names = [name for name in conv.tools if name in self.tools.names()]
        else:
            # Built-ins are on by default where the model calls tools natively; small
            # local models answer faster without the constrained tool-choice step.
            names = list(self.tools.names()) if model.info.supports_tools else []
        if web_search is False:
            return [name for name in names if name != WEB_SEARCH]
        if web_search and WEB_SEARCH in self.tools and WEB_SEARCH not in names:
            names.append(WEB_SEARCH)  # offered only while a search back end is configured
        return names

    async def _choose(
        self,
        session: AsyncSession,
        user: User,
        conv: Conversation,
        model_ref: str | None,
        profile: TurnProfile | None,
        project: TurnProfile | None,
        preferred_default: str | None,
    ) -> tuple[str | None, frozenset[str] | None]:
        """The turn's model (the one picked for it or the chat, else the assistant's,
        the project's, the default) and the models it is checked against: the
        user's picks, or for an assistant's model its owner's (``turns.picks``)."""
        if profile is not None and profile.model and not (model_ref or conv.model):
            picks = await assistant_picks(self.services, session, user, conv.assistant_id or "")
            if not allows(picks, profile.model):
                raise Forbidden(
                    "This assistant's model is not available to its owner any more; ask "
                    "the assistant's owner or your administrator.",
                    "model_not_allowed",
                )
            return profile.model, picks
        picks = await pickable(self.services, user, session)
        chosen = model_ref or conv.model or (project.model if project is not None else None)
        if chosen:
            if not allows(picks, chosen):
                raise refused(chosen)
            return chosen, picks
        if is_auto(preferred_default):
            return AUTO, picks
        ref = await self.registry.default_ref(preferred_default, user.id)
        if ref is not None and picks is not None and ref not in picks:  # the first allowed
            offered = [m.ref for m in await self.registry.list_models() if m.offered_to(user.id)]
            ref = first_allowed(picks, offered)
        return ref, picks

    async def _route(
        self,
        store: ConversationStore,
        user: User,
        conv: Conversation,
        question: MessageRow,
        parent: str | None,
        options: TurnOptions,
        web_search: bool | None,
        preferred_default: str | None,
    ) -> Route:
        """Auto's choice for this turn: what the question needs, measured only as far
        as the policy's rules ask (an image count, the previous exchange's size, the
        budget state), then the first matching rule (``parley.routing``)."""
        policy, scope = await self.routing.policy_for(conv.project_id, conv.assistant_id)
        kinds = {rule.kind for rule in policy.rules}
        images = len(options.images)
        if "vision" in kinds:
            images += await self.routing.images(
                store.session, user.id, conv.id, conv.assistant_id is not None
            )
        tokens = 0
        if "long_context" in kinds:
            # the previous answer's prompt and text are what this turn sends again
            with store.session.no_autoflush:  # the question stays pending (one flush)
                before = await store.get_message(parent) if parent else None
            if before is not None:
                tokens = before.input_tokens + before.output_tokens
            tokens += len(question.content) // 4
        budget = None
        if policy.needs_budget:
            budget = await self.routing.budget_used(
                BudgetQuery(user.id, None, conv.project_id, conv.assistant_id)
            )
        need = Need(
            images=images,
            tools=bool(options.client_tools or options.tools or conv.tools or web_search),
            tokens=tokens,
            question=question.content if question.role == "user" else "",
            budget_used=budget,
        )
        default = None if is_auto(preferred_default) else preferred_default
        may_use = options.may_use
        return await self.routing.route(
            need,
            policy=policy,
            scope=scope,
            user_id=user.id,
            instance_default=default or self.settings.default_model,
            allowed=may_use,
        )


def _with_memory(info: TurnInfo, mode: MemoryMode) -> TurnInfo:
    """An assistant's memory mode as the memory feature reads it: ``off`` turns memory
    off for the turn, ``user`` uses the user's own (global) memories, ``scoped`` keeps
    the assistant's scope (memories made there stay there)."""
    if mode == "off":
        return replace(info, preferences={**info.preferences, "memory": False})
    if mode == "user":
        return replace(info, assistant_id=None)
    return info


def _last_question(path: list[MessageRow]) -> str:
    """The newest question on ``path`` (a ``continue`` turn recalls memories and
    passages for it, not for the answer it continues)."""
    return next((row.content for row in reversed(path) if row.role == "user"), "")
