"""The study server's front door, in front of the web app: a request for a rater's pages
or API with a token the study did not issue is answered 404 before any of its body is
read (so is one for the results page without the study's owner token), and no request
body over MAX_BODY bytes is read (413): a declared length over it is
refused at once, an undeclared one once that much has arrived. Refusals close the
connection, so the rest of a large body is never read either. Without this, FastAPI read
whole bodies before the route checked the token (a 0.6 GiB POST to a wrong link grew the
server by 1.6 GiB)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 4096  # an answer is about 120 bytes of JSON
RATER_PATHS = ("s", "api")  # /s/TOKEN and /api/TOKEN/...
OWNER_PATH = "results"  # /results/OWNER


class Guard:
    def __init__(self, app: App, tokens: Collection[str], owner: str = ""):
        self.app, self.tokens, self.owner = app, tokens, owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        parts = scope["path"].split("/")
        if len(parts) > 2 and parts[1] in RATER_PATHS and parts[2] not in self.tokens:
            return await refuse(send, 404, b"unknown study link")
        if (
            len(parts) > 2
            and parts[1] == OWNER_PATH
            and not (self.owner and parts[2] == self.owner)
        ):
            return await refuse(send, 404, b"unknown study link")
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and not (declared.isdigit() and int(declared) <= MAX_BODY):
            return await refuse(send, 413, b"request body too large")
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                return await refuse(send, 413, b"request body too large")
            more = message.get("more_body", False)
        await self.app(scope, replay(body, receive), send)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body read already, then waits as the server does."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def again() -> Message:
        return pending.pop() if pending else await receive()

    return again


async def refuse(send: Send, status: int, text: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
    headers.append((b"connection", b"close"))  # the rest of the body is never read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})
