"""The gateway's ASGI app: OpenAI's chat/completions endpoints in front of budgetflow's model layer, every call on
the ledger account of the caller's key.

Per request: the key is checked (401), the body read under a size limit (413) and parsed (400), the key's
concurrency slot taken (429 when its queue is full), then the model layer reserves the call's worst case on the key's
account — shrinking max_tokens to what fits — or refuses (402 by default, nothing sent upstream); the call is made and
the truth committed. A stream's client that goes away cuts the upstream call, which is charged what it generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import anyio
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..budget import Account, ApiKey, BudgetExceeded, KeyRefused, Ledger, authenticate
from ..llm import LLMError, UnboundedPrompt
from ._errors import REFUSAL_STATUSES, error_response, refusal_message
from ._openai import (
    RequestError,
    call_options,
    chunk_body,
    new_id,
    response_body,
    sse,
    usage_chunk,
)
from ._page import spend_page
from ._pool import ModelPool, UnknownModel
from ._settings import GatewaySettings


class _Slots:
    """At most `limit` calls in flight per key; up to `queue` more wait, beyond that 429."""

    def __init__(self, limit: int, queue: int):
        self.limit, self.queue = limit, queue
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._waiting: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str):
        sem = self._sems.setdefault(key, asyncio.Semaphore(self.limit))
        if sem.locked() and self._waiting.get(key, 0) >= self.queue:
            raise _TooBusy()
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            await sem.acquire()
        finally:
            self._waiting[key] -= 1
        try:
            yield
        finally:
            sem.release()


class _TooBusy(Exception):
    pass


def create_app(ledger: Ledger | str, pool: ModelPool, settings: GatewaySettings | None = None) -> FastAPI:
    """The app for `pool`'s models on `ledger` (a Ledger or its URL; the app closes a ledger it opened)."""
    settings = settings or GatewaySettings()
    if settings.refusal_status not in REFUSAL_STATUSES:
        raise ValueError(f"refusal_status must be one of {REFUSAL_STATUSES}, got {settings.refusal_status}")
    owned = not isinstance(ledger, Ledger)
    led = Ledger(ledger) if owned else ledger
    slots = _Slots(settings.per_key_concurrency, settings.per_key_queue)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        if owned:  # in-flight calls were settled as uvicorn drained them; close only what we opened
            led.close()

    app = FastAPI(title="budgetflow gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.ledger, app.state.pool, app.state.settings = led, pool, settings

    async def _key(request: Request) -> tuple[ApiKey, Account]:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("api-key", "")
        if not token:
            raise KeyRefused("no API key: send Authorization: Bearer bfk_... (create one with `budgetflow keys "
                             "create`)")
        return await run_in_threadpool(authenticate, led, token)

    async def _body(request: Request) -> dict:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise _TooLarge()
        data = bytearray()
        async for piece in request.stream():
            data += piece
            if len(data) > settings.max_body_bytes:
                raise _TooLarge()
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise RequestError("the body is not JSON") from None
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object")
        return body

    def _key_usage(key: ApiKey, account: Account) -> dict:
        bal = account.balance()
        left = account.remaining().usd
        return {"key": key.id, "account": account.name, "spent_usd": bal.committed.usd,
                "remaining_usd": None if left is None else max(left, 0.0), "cap_usd": bal.budget.usd}

    def _headers(usage: dict, gen=None, ignored: list[str] | None = None) -> dict[str, str]:
        h = {"x-budgetflow-spent-usd": f"{usage['spent_usd']:.9f}",
             "x-budgetflow-remaining-usd": "" if usage["remaining_usd"] is None else f"{usage['remaining_usd']:.9f}"}
        if gen is not None:
            h["x-budgetflow-max-tokens"] = str(gen.max_tokens)
            if gen.shrunk:
                h["x-budgetflow-shrunk"] = f"max_tokens {gen.requested_max_tokens} -> {gen.max_tokens} (budget)"
        if ignored:
            h["x-budgetflow-ignored"] = ",".join(ignored)[:512]
        return h

    async def _completion(request: Request, chat: bool):
        try:
            key, account = await _key(request)
        except KeyRefused as err:
            return error_response(401, str(err), "invalid_request_error", code="invalid_api_key")
        try:
            body = await _body(request)
            prompt, options, ignored = call_options(body, chat=chat, default_max_tokens=settings.default_max_tokens)
            model = body.get("model")
            if not isinstance(model, str):
                raise RequestError("model is required", "model")
            llm = await run_in_threadpool(pool.get, model)
        except _TooLarge:
            return error_response(413, f"the body exceeds {settings.max_body_bytes} bytes", "invalid_request_error",
                                  code="request_too_large")
        except RequestError as err:
            return error_response(400, str(err), "invalid_request_error", param=err.param)
        except UnknownModel as err:
            return error_response(404, str(err), "invalid_request_error", param="model", code="model_not_found")
        try:
            async with slots.hold(key.id):
                if body.get("stream"):
                    return await _streamed(llm, prompt, options, key, account, chat, model, ignored)
                gen = await llm.agenerate(prompt, account=account, **options)
                usage = await run_in_threadpool(_key_usage, key, account)
                return JSONResponse(response_body(gen, chat=chat, model=model, call_id=new_id(chat), key_usage=usage),
                                    headers=_headers(usage, gen, ignored))
        except _TooBusy:
            return error_response(429, f"key {key.id} has {settings.per_key_concurrency} calls in flight and "
                                  f"{settings.per_key_queue} waiting; retry later", "rate_limit_error")
        except Exception as err:  # noqa: BLE001 - every failure becomes an OpenAI-shaped error
            return await _failure(err, account)

    async def _failure(err: Exception, account: Account) -> JSONResponse:
        if isinstance(err, BudgetExceeded):
            message = await run_in_threadpool(refusal_message, err, account)
            return error_response(settings.refusal_status, message, "budget_exceeded")
        if isinstance(err, UnboundedPrompt):
            return error_response(400, str(err), "invalid_request_error", code="context_length_exceeded")
        if isinstance(err, (ValueError, TypeError)):
            return error_response(400, str(err), "invalid_request_error")
        if isinstance(err, LLMError):
            text = str(err)
            if "context" in text and "prompt has" in text:
                return error_response(400, text, "invalid_request_error", code="context_length_exceeded")
            if "tool_choice" in text or "tool" in text.split(":")[0]:
                return error_response(400, text, "invalid_request_error")
            return error_response(502, f"the model failed: {text} (the ledger holds what it cost)", "upstream_error")
        return error_response(500, f"{type(err).__name__}: {err}", "server_error")

    async def _streamed(llm, prompt, options, key, account, chat, model, ignored):
        stream = llm.astream(prompt, account=account, **options)
        call_id = new_id(chat)
        try:  # the reservation (or the refusal) comes with the first step: answer errors before any byte is sent
            first = await stream.__anext__()
        except StopAsyncIteration:
            first = None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            raise
        usage_now = await run_in_threadpool(_key_usage, key, account)

        async def events():
            seen: set[int] = set()
            try:
                pending = [first] if first is not None else []
                while True:
                    for delta in pending:
                        yield sse(chunk_body(delta, chat=chat, model=model, call_id=call_id,
                                             first=delta.choice not in seen))
                        seen.add(delta.choice)
                    try:
                        pending = [await stream.__anext__()]
                    except StopAsyncIteration:
                        break
                gen = stream.generation
                usage = await run_in_threadpool(_key_usage, key, account)
                yield sse(usage_chunk(gen, chat=chat, model=model, call_id=call_id, key_usage=usage))
                yield sse("[DONE]")
            except Exception as err:  # noqa: BLE001 - the stream has begun: say it in the stream
                yield sse({"error": {"message": f"the stream failed: {err}", "type": "upstream_error",
                                     "param": None, "code": "upstream_error"}})
            finally:  # a client gone mid-stream (cancelled here): cut the upstream call, charge what it generated
                with anyio.CancelScope(shield=True):
                    await stream.aclose()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", **_headers(usage_now, None, ignored)})

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await _completion(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await _completion(request, chat=False)

    @app.get("/v1/models")
    async def models(request: Request):
        try:
            await _key(request)
        except KeyRefused as err:
            return error_response(401, str(err), "invalid_request_error", code="invalid_api_key")
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "budgetflow"}
                                           for n in pool.names]}

    @app.get("/health")
    async def health():
        return {"status": "ok", "ledger": led.url, "models": pool.names, "started": pool.started()}

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request, token: str = ""):
        """Spend by key over time; only with an admin token (the page lists every key's account and spend)."""
        if settings.admin_token is None:
            return error_response(404, "the spend page is off (start with --page)", "invalid_request_error")
        header = request.headers.get("authorization", "")
        given = token or (header[7:].strip() if header.lower().startswith("bearer ") else "")
        if not hmac.compare_digest(given.encode(), settings.admin_token.encode()):
            return error_response(401, "the spend page needs the admin token (?token=...)", "invalid_request_error",
                                  code="invalid_api_key")
        return HTMLResponse(await run_in_threadpool(spend_page, led))

    return app


class _TooLarge(Exception):
    pass
