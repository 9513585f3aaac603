"""An OpenAI-compatible image API: ``POST {endpoint}/v1/images/generations``.

One request per (prompt, seed) with ``response_format: b64_json``; an answer that carries
a ``url`` instead is fetched. The key comes from ``key_env``. Servers that take a seed (many
self-hosted ones do; OpenAI does not) get it when ``send_seed`` is true. ``ref`` is the API's
model name, as a registry's release loader gives it.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterator, Sequence
from typing import Any

from PIL import Image, UnidentifiedImageError

from adapters.http import HttpClient, MalformedResponse, UsesHttp


class HttpImageGenerator(UsesHttp):
    def __init__(
        self,
        endpoint: str,
        ref: str,
        key_env: str | None = "OPENAI_API_KEY",
        size: str = "1024x1024",
        send_seed: bool = True,
        http: dict | None = None,
    ) -> None:
        self.client = HttpClient.create(endpoint, {"timeout_s": 120.0, **(http or {})}, key_env)
        self.model = ref  # the API's model name
        self.size = size
        self.send_seed = send_seed

    def sample(
        self, prompts: Sequence[str], seeds: Sequence[int], **overrides: Any
    ) -> Iterator[tuple[str, int, Image.Image]]:
        if len(prompts) != len(seeds):
            raise ValueError("one seed per prompt")
        for prompt, seed in zip(prompts, seeds, strict=True):
            request = {
                "model": self.model,
                "prompt": prompt,
                "n": 1,
                "size": self.size,
                "response_format": "b64_json",
                **({"seed": int(seed)} if self.send_seed else {}),
                **overrides,
            }
            body, _ = self.client.json("POST", "/v1/images/generations", json=request)
            yield prompt, seed, self._image(body)

    def _image(self, body: Any) -> Image.Image:
        try:
            item = body["data"][0]
        except (KeyError, IndexError, TypeError) as error:
            raise MalformedResponse(f"image API answer has no data[0]: {body!r:.200}") from error
        if isinstance(item.get("b64_json"), str):
            try:
                raw = base64.b64decode(item["b64_json"], validate=True)
            except binascii.Error as error:
                raise MalformedResponse("image API answer: b64_json is not base64") from error
        elif isinstance(item.get("url"), str):
            raw = self.client.request("GET", item["url"]).content
        else:
            raise MalformedResponse(f"image API answer has neither b64_json nor url: {item!r:.200}")
        try:
            image = Image.open(io.BytesIO(raw))
            image.load()
        except (UnidentifiedImageError, OSError) as error:
            raise MalformedResponse(
                f"image API answer is not a readable image ({error})"
            ) from error
        return image.convert("RGB")
