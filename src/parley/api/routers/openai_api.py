"""An OpenAI-compatible endpoint served by Parley: ``/v1/models`` and
``/v1/chat/completions`` (streaming or not, client tools passed through).

Authenticated by Parley API keys only (``Authorization: Bearer pk-...``), within
the key's scopes (``ModelsKey``/``ChatKey``, ``model_allowed``). A relay, not a
turn: no context sources or tools of Parley's own, no deadline (docs/ARCHITECTURE.md,
"Which routes go through turns"); every call writes a usage row, and ``store: true``
keeps the finished exchange (``openai_stored``). The exception is a model named
``assistant/<slug>``: the assistants feature answers it with a whole turn
(``parley.seam.ASSISTANTS``). The wire format both ways is
``parley.providers.openai_wire``; this module resolves the model and maps failures
before the first byte to errors (OpenAI-shaped under ``/v1``: ``http.problems``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response, StreamingResponse

from parley import loopshare
from parley.api.budget_headers import budget_headers, budgeted
from parley.api.routers.openai_embeddings import embedding_ref, server_embedder
from parley.api.routers.openai_stored import Databases, Keeper
from parley.engine.tokens import counter_for
from parley.errors import AccessRevoked, BudgetExceeded, ModelNotFound, ProviderError
from parley.http.deps import (
    DB,
    ChatKey,
    Ledger,
    ModelsKey,
    Principal,
    ServicesDep,
    SettingsDep,
    Sync,
    Turns,
    model_allowed,
)
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.messages import ProviderEvent
from parley.providers.base import ChatModel, ChatRequest
from parley.providers.openai_wire import (
    ChatCompletion,
    ChatCompletionIn,
    OpenAIModel,
    OpenAIModelList,
    chat_request,
    collect,
    model_list,
    stream_chunks,
)
from parley.providers.registry import ModelRegistry
from parley.routing.rules import AUTO, Route, is_auto, need_of_request
from parley.routing.service import BudgetQuery
from parley.seam import ASSISTANTS
from parley.turns import TurnService
from parley.turns.accounting import REFUSED
from parley.turns.control import GenerationControl, owner
from parley.turns.picks import allows, pickable, refused
from parley.usage.ledger import Meter, UsageLedger

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["openai-compatible"])

ROUTE_HEADER = "X-Parley-Route"  # Auto's rule and reason: ``vision; image attached``
ASSISTANT_PREFIX = "assistant/"  # ``assistant/<slug>``: parley.assistants runs a turn

_COMPLETION_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ChatCompletion,
        "content": {"text/event-stream": {}},
        "description": "A chat completion, or with `stream: true` `chat.completion.chunk` "
        "server-sent events ending with `data: [DONE]`.",
    }
}


async def _resolve(
    registry: ModelRegistry, name: str, preferred: str | None, user_id: str | None = None
) -> ChatModel:
    """A model by ref, by bare name when unambiguous, or ``parley``/``default``."""
    if name in ("parley", "default"):
        ref = await registry.default_ref(preferred, user_id)
        if ref is None:
            raise Problem(503, "No model is configured on this Parley server.", "no_model")
        return await registry.resolve(ref)
    if "/" in name:
        try:
            return await registry.resolve(name)
        except ModelNotFound:
            pass
    matches = [m for m in await registry.list_models() if m.name == name or m.ref == name]
    if len(matches) == 1:
        return await registry.resolve(matches[0].ref)
    if len(matches) > 1:
        refs = ", ".join(m.ref for m in matches)
        raise Problem(
            404,
            f"Model {name!r} is ambiguous; use one of: {refs}.",
            "model_ambiguous",
            param="model",
        )
    raise Problem(
        404, f"Unknown model {name!r}; GET /v1/models lists them.", "model_not_found", param="model"
    )


@router.get("/models")
async def list_models(
    sync: Sync, principal: ModelsKey, db: DB, services: ServicesDep, settings: SettingsDep
) -> OpenAIModelList:
    """The chat models the caller may use, then the embedding model."""
    registry = await sync.ensure_fresh(db)
    user_id = principal.user.id
    picks = await pickable(services, principal.user, db)  # the user's groups' models
    listed = model_list(
        [
            m
            for m in await registry.list_models()
            if m.offered_to(user_id) and principal.may_use_model(m.ref) and allows(picks, m.ref)
        ]
    )
    gateway = services.get(ASSISTANTS)
    if gateway is not None:  # assistant/<slug>: the assistants the key may use
        for model_id in await gateway.model_ids(user_id, principal.scopes.allows_assistant):
            listed.data.append(OpenAIModel(id=model_id, owned_by="parley"))
    if listed.data and principal.may_use_model(AUTO):  # routes among the models above
        listed.data.append(OpenAIModel(id=AUTO, owned_by="parley"))
    embedder = server_embedder(services, settings)
    if embedder is not None and principal.may_use_model(ref := embedding_ref(embedder)):
        listed.data.append(OpenAIModel(id=ref, owned_by="parley"))
    return listed


async def _auto(
    turns: TurnService,
    request: ChatRequest,
    principal: Principal,
    preferred: str | None,
    picks: frozenset[str] | None = None,
) -> Route:
    """Auto's choice for a ``/v1`` call: the instance's policy over what the request
    carries (images, tools, its size, the last question); the answer's ``model``
    names the routed model and ``X-Parley-Route`` says which rule and why."""
    routing = turns.routing
    policy, scope = await routing.policy_for()
    budget = None
    if policy.needs_budget:
        budget = await routing.budget_used(BudgetQuery(principal.user.id, principal.api_key_id))
    need = need_of_request(request.messages, bool(request.tools), budget)
    default = None if is_auto(preferred) else preferred
    return await routing.route(
        need,
        policy=policy,
        scope=scope,
        user_id=principal.user.id,
        instance_default=default or turns.settings.default_model,
        allowed=lambda ref: principal.may_use_model(ref) and allows(picks, ref),
    )


def _provider_problem(exc: ProviderError) -> Exception:
    if isinstance(exc, BudgetExceeded):  # a 429 saying which limit, what is left, when
        return exc
    status = {"provider_rate_limited": 429, "provider_timeout": 504}.get(exc.code, 502)
    return Problem(status, exc.message, exc.code)


async def _relay(
    control: GenerationControl,
    principal: Principal,
    events: AsyncIterator[ProviderEvent],
    meter: Meter,
    ledger: UsageLedger,
    endpoint: str,
    keep: Keeper | None = None,
) -> AsyncIterator[ProviderEvent]:
    """The relayed events, tallied for the usage ledger and ended (``AccessRevoked``)
    once the caller's key is revoked or account disabled: checked per event, O(1).

    The row is written when the relay ends, however it ends: ``ok``, the provider's
    error code, or ``cancelled`` (the client went away: the cancellation passes
    through here, or the generator is closed later). ``record_soon`` needs no await,
    so a cancelled request still records. With ``keep`` (``store: true``) a complete
    answer is kept before the relay ends, so the client's ``[DONE]`` (or the JSON
    answer) comes after the stored completion can be read."""
    owners = [owner("user", principal.user.id)]
    if principal.api_key_id:
        owners.append(owner("key", principal.api_key_id))
    outcome = "cancelled"
    conversation_id: str | None = None
    try:
        with control.track("v1:" + uuid.uuid4().hex, *owners) as stop:
            async for event in events:
                if stop.is_set():
                    raise AccessRevoked(
                        "This API key was revoked or its account disabled; the answer was stopped."
                    )
                meter.see(event)
                if keep is not None:
                    keep.answer.see(event)
                yield event
        outcome = "ok"
        if keep is not None:
            conversation_id = await keep.save(meter)
    except ProviderError as exc:
        outcome = exc.code
        raise
    except Exception:
        outcome = "internal_error"  # a bug, not the client leaving (that is a BaseException)
        raise
    finally:
        if outcome not in REFUSED:  # a refused call never reached the model
            ledger.record_soon(
                user_id=principal.user.id,
                api_key_id=principal.api_key_id,
                conversation_id=conversation_id,
                endpoint=endpoint,
                **meter.fields(outcome),
            )


@router.post("/chat/completions", response_model=None, responses=_COMPLETION_DOC)
async def chat_completions(
    body: ChatCompletionIn,
    sync: Sync,
    principal: ChatKey,
    db: DB,
    turns: Turns,
    ledger: Ledger,
    database: Databases,
    services: ServicesDep,
) -> Response:
    await loopshare.take_slice(start=True)  # admitting a stream is heavy: wait for a slice
    if body.model.startswith(ASSISTANT_PREFIX):  # a turn with the assistant, not the relay
        gateway = services.get(ASSISTANTS)
        if gateway is None:
            raise Problem(404, "Assistants are not enabled on this server.", "model_not_found")
        response: Response = await gateway.chat_completion(principal, body)
        return response
    if principal.project_id is not None:  # the relay has no project context to give
        raise Problem(
            403,
            f"This request runs in project {principal.project_id!r}, and Chat Completions "
            "with a plain model only relays to the model, without the project's "
            "instructions, files or memory: use the Responses API (/v1/responses) or an "
            "assistant/<slug> model.",
            "project_scope",
            param="model",
        )
    registry = await sync.ensure_fresh(db)
    preferred = await sync.default_model(db)
    request = chat_request(body)
    picks = await pickable(services, principal.user, db)  # the user's groups' models
    route: Route | None = None
    if is_auto(body.model):  # the admins' rules pick among the models the key may use
        model_allowed(principal, AUTO)  # a key limited to some models: only with auto in it
        route = await _auto(turns, request, principal, preferred, picks)
        model = await registry.resolve(route.model)
    else:
        model = await _resolve(registry, body.model, preferred, principal.user.id)
    if not model.info.offered_to(principal.user.id):
        raise Problem(
            404,
            f"Unknown model {body.model!r}; GET /v1/models lists them.",
            "model_not_found",
            param="model",
        )
    model_allowed(principal, model.info.ref)
    if not allows(picks, model.info.ref):
        raise refused(model.info.ref)
    # release the connection before the long stream, and before the fallbacks' and the
    # budgets' reads open their own: a request holding two at once lets a burst of
    # requests hold the whole pool while each waits for its second one
    await db.close()
    # retries and fallbacks before the first token, as in a chat (``turns/failover.py``)
    model = await turns.failover.wrap(
        model,
        user_id=principal.user.id,
        allowed=lambda info: principal.may_use_model(info.ref) and allows(picks, info.ref),
    )
    model = await budgeted(services, model, principal)  # reserved per call, then settled
    completion_id = "chatcmpl-" + uuid.uuid4().hex
    await ledger.prices.fresh()
    meter = Meter(model.info, request, counter_for(model), ledger.prices)
    keep = Keeper(database, principal, body, model.info, completion_id) if body.store else None
    events = _relay(
        turns.control, principal, model.stream(request), meter, ledger, "chat.completions", keep
    )
    try:
        first = await events.__anext__()
    except ProviderError as exc:
        raise _provider_problem(exc) from exc
    except StopAsyncIteration as exc:
        raise Problem(502, "The provider returned nothing.", "provider_protocol") from exc
    meter.model = model.info  # the model that answered is the one charged and named
    if keep is not None:
        keep.model = model.info
    headers = budget_headers(model) or {}
    if route is not None:
        headers[ROUTE_HEADER] = f"{route.rule}; {route.reason}"
    if body.stream:
        stream = stream_chunks(completion_id, model.info.ref, first, events, body.include_usage)
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
    try:
        completion = await collect(completion_id, model.info.ref, first, events)
        return JSONResponse(
            keep.stored if keep is not None and keep.stored else completion, headers=headers
        )
    except ProviderError as exc:
        raise _provider_problem(exc) from exc
