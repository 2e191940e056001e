"""A test double of an OpenAI-compatible chat server. It is not a language model.

:class:`FakeOpenAIServer` listens on ``127.0.0.1`` on a free port, in a
background thread, and answers ``POST /v1/chat/completions`` by calling a
Python ``script`` for each request. The script decides the reply: an answer
text, an HTTP error (with headers such as ``Retry-After``), a slow reply, or a
dropped connection. Every request is counted and recorded, so tests can check
exactly how many calls a run made. It lets the real litellm path be tested
with no network and no API key::

    with FakeOpenAIServer(lambda req: Reply("yes")) as server:
        llm = LiteLLM("openai/some-model", api_base=server.url, api_key="test")

It speaks just enough of the protocol for chat completions (no streaming).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["ChatRequest", "FakeOpenAIServer", "Reply"]


@dataclass
class Reply:
    """What the fake server does with one request.

    Attributes
    ----------
    content
        The assistant message text (for status 200).
    status
        HTTP status; anything but 200 sends an OpenAI-style error body.
    headers
        Extra response headers, e.g. ``{"Retry-After": "1"}``.
    delay
        Seconds to wait before replying (to exceed a client timeout).
    drop
        Close the connection without any reply.
    """

    content: str | None = None
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False

    @classmethod
    def json_label(cls, label: str) -> Reply:
        """The answer a schema-following model gives: ``{"label": ...}``."""
        return cls(json.dumps({"label": label}))


@dataclass
class ChatRequest:
    """One request as the script sees it.

    Attributes
    ----------
    body
        The decoded JSON body.
    user
        The content of the last user message.
    text
        The row's input: what follows ``Input:`` in the first user message
        (the whole first user message for template prompts).
    attempt
        1 for the first request with these exact messages, 2 for the next...
    corrective
        True when the messages carry a corrective follow-up.
    """

    body: dict
    user: str
    text: str
    attempt: int
    corrective: bool

    @property
    def response_format(self) -> dict | None:
        return self.body.get("response_format")


def _row_text(first_user: str) -> str:
    body = first_user
    if "\nInput:\n" in body:
        body = body.split("\nInput:\n", 1)[1]
    return body.rsplit("\n\nAllowed labels:", 1)[0]


class FakeOpenAIServer:
    """An OpenAI-compatible chat server on ``127.0.0.1`` run by a script.

    Parameters
    ----------
    script
        Called once per request with a :class:`ChatRequest`; returns a
        :class:`Reply` or a plain answer string.
    usage
        ``usage(body, content) -> (prompt_tokens, completion_tokens)`` for the
        reply's ``usage`` field; by default about four characters a token.

    Attributes
    ----------
    url
        Base URL to pass as ``api_base`` (ends in ``/v1``).
    requests
        Every request received, as :class:`ChatRequest`, in arrival order.
    """

    def __init__(
        self,
        script: Callable[[ChatRequest], Reply | str],
        usage: Callable[[dict, str | None], tuple[int, int]] | None = None,
    ) -> None:
        self.script = script
        self.usage = usage or _rough_usage
        self.requests: list[ChatRequest] = []
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    @property
    def count(self) -> int:
        """Requests received so far (answered, failed or dropped)."""
        with self._lock:
            return len(self.requests)

    def _record(self, body: dict) -> ChatRequest:
        messages = body.get("messages") or []
        users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
        key = json.dumps(messages, sort_keys=True)
        with self._lock:
            self._seen[key] = self._seen.get(key, 0) + 1
            req = ChatRequest(
                body=body,
                user=users[-1] if users else "",
                text=_row_text(users[0]) if users else "",
                attempt=self._seen[key],
                corrective=len(users) > 1,
            )
            self.requests.append(req)
        return req

    def start(self) -> FakeOpenAIServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per reply

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                req = server._record(body)
                reply = server.script(req)
                if isinstance(reply, str):
                    reply = Reply(reply)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if reply.status != 200:
                    err = {
                        "error": {"message": f"scripted {reply.status}", "type": "x"}
                    }
                    self._send(reply.status, err, reply.headers)
                    return
                payload = _completion(body, reply.content, server.usage)
                self._send(200, payload, reply.headers)

            def _send(self, status: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, str(v))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout): nothing to do
                    self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _rough_usage(body: dict, content: str | None) -> tuple[int, int]:
    prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages") or [])
    return prompt_chars // 4 + 4, len(content or "") // 4 + 1


def _completion(body: dict, content: str | None, usage: Callable) -> dict:
    pt, ct = usage(body, content)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": pt,
            "completion_tokens": ct,
            "total_tokens": pt + ct,
        },
    }
