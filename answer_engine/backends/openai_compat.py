"""Any OpenAI-compatible chat server as the model: trtllm-serve, vLLM, llama.cpp's server, a
frontier API. Streams POST {base_url}/chat/completions with httpx and reads choices[0].delta.content.

Closing the iterator closes the HTTP response, which these servers take as the request's abort.
Token counts: the server's own `usage` when it sends one (stream_options.include_usage), else the
number of streamed chunks; a word-based estimate for the prompt (no tokenizer here).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from answer_engine.backends.base import Backend, BackendError, ChatMessage, GenerationParams
from answer_engine.text import approx_tokens


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BackendError(f"generation.base_url must be an http(s) URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            headers=headers,
            transport=transport,
            trust_env=False,
        )
        self._last_count: tuple[str, int] = ("", 0)
        self.tokens_generated = 0

    async def start(self) -> None:
        """Fail at start-up, not at the first question, when the server is absent or lacks the model."""
        try:
            r = await self.client.get(f"{self.base_url}/models")
        except httpx.HTTPError as exc:
            raise BackendError(
                f"OpenAI-compatible server at {self.base_url} is not reachable: {exc}"
            ) from exc
        if r.status_code == 200:
            ids = [m.get("id") for m in r.json().get("data", [])]
            if ids and self.model not in ids:
                raise BackendError(f"{self.base_url} does not serve model {self.model!r} (it serves {ids})")
        elif r.status_code in (401, 403):
            raise BackendError(f"{self.base_url} refused our API key (HTTP {r.status_code})")

    async def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in messages],
            "stream": True,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream_options": {"include_usage": True},
        }
        if params.stop:
            body["stop"] = params.stop[:4]  # OpenAI's own limit
        if params.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": params.json_schema, "strict": True},
            }
        usage: dict[str, int] = {}
        chunks: list[str] = []
        try:
            async with self.client.stream("POST", f"{self.base_url}/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    detail = (await response.aread()).decode("utf-8", "replace")[:300]
                    raise BackendError(f"model server answered HTTP {response.status_code}: {detail}")
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise BackendError(
                            f"model server error: {chunk['error'].get('message', chunk['error'])}"
                        )
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            self.tokens_generated += 1
                            chunks.append(text)
                            yield text
            # servers stream about one token per chunk; their usage, when sent, is exact
            self._last_count = ("".join(chunks), int(usage.get("completion_tokens") or len(chunks)))
        except httpx.HTTPError as exc:
            raise BackendError(
                f"model server at {self.base_url} failed: {type(exc).__name__}: {exc}"
            ) from exc
        except json.JSONDecodeError as exc:
            raise BackendError(f"model server sent a malformed chunk: {exc}") from exc

    def schema_problem(self, schema: dict[str, Any]) -> str | None:
        return None  # passed on as response_format; the output is validated against it afterwards

    def count_prompt_tokens(self, messages: list[ChatMessage]) -> int:
        return sum(approx_tokens(m.content) + 4 for m in messages)

    def count_tokens(self, text: str) -> int:
        text_seen, count = self._last_count
        return count if text == text_seen else approx_tokens(text)

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "base_url": self.base_url}

    async def aclose(self) -> None:
        await self.client.aclose()
