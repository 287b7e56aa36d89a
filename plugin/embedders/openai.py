"""OpenAI embeddings (or any OpenAI-compatible server) as the base model.

Batches respect the API limits (at most 2,048 inputs and a token budget per request); requests
are retried by the ``openai`` client with exponential backoff on 408/409/429/5xx and timeouts,
honouring ``Retry-After``. The API key is read from an environment variable at call time and is
never stored by embedlens (not in the cache, the lens, nor any config).
"""

from __future__ import annotations

import base64
import functools
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedlens._secrets import redact as _redact
from embedlens._secrets import register_key_env
from embedlens.embedders.identity import is_secret_name, looks_like_secret, make_identity
from embedlens.errors import EmbedderError, EmbedlensInputError

__all__ = ["OpenAIEmbedder", "estimate_tokens", "estimate_cost", "DEFAULT_PRICES_PER_MTOK"]

#: Default output dimensions of OpenAI's embedding models.
KNOWN_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
#: US$ per million input tokens (OpenAI price list; override with ``prices=`` or ``EMBEDLENS_PRICES``).
DEFAULT_PRICES_PER_MTOK = {
    "text-embedding-3-small": 0.02,
    "text-embedding-3-large": 0.13,
    "text-embedding-ada-002": 0.10,
}
MAX_INPUTS_PER_REQUEST = 2048
MAX_TOKENS_PER_REQUEST = 300_000


def estimate_tokens(texts: Sequence[str]) -> np.ndarray:
    """Token count per text ``(n,)``: exact with ``tiktoken`` when its vocabulary is on disk, else ``ceil(bytes / 4)``.

    Never downloads anything: tiktoken fetches a missing vocabulary from the internet, so it is used only
    when the file is already in its cache (looked up once per process).
    """
    enc = _local_encoding()
    if enc is not None:
        return np.asarray([len(t) for t in enc.encode_batch(list(texts))], dtype=np.int64)
    return np.asarray([max(1, math.ceil(len(t.encode("utf-8")) / 4)) for t in texts], dtype=np.int64)


#: where tiktoken would download the cl100k_base vocabulary from (only its cached copy is ever read).
_CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
#: the sha256 tiktoken expects of that file (tiktoken_ext.openai_public)
_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


@functools.lru_cache(maxsize=1)
def _local_encoding() -> Any:
    """tiktoken's cl100k_base when installed and its vocabulary is already cached on disk, else None."""
    import hashlib
    import tempfile

    try:
        import tiktoken
    except ImportError:
        return None
    # tiktoken's own lookup: TIKTOKEN_CACHE_DIR, else DATA_GYM_CACHE_DIR, else a temp folder; "" disables it
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache = str(Path(tempfile.gettempdir()) / "data-gym-cache")
    if not cache:
        return None
    cached = Path(cache) / hashlib.sha1(_CL100K_URL.encode()).hexdigest()
    try:  # a damaged file would be deleted and downloaded again by tiktoken: only an intact one is used
        if hashlib.sha256(cached.read_bytes()).hexdigest() != _CL100K_SHA256:
            return None
    except OSError:
        return None
    try:
        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # noqa: BLE001 - a damaged cached file: fall back to the byte estimate
        return None


def estimate_cost(texts: Sequence[str], model: str, prices: dict[str, float] | None = None) -> dict[str, Any]:
    """Estimated tokens and US$ for embedding ``texts`` with ``model``.

    Prices come from ``prices``, else the JSON object in ``$EMBEDLENS_PRICES`` (model → US$ per
    million tokens), else :data:`DEFAULT_PRICES_PER_MTOK`; an unknown model costs ``None``.
    """
    import json

    table = dict(DEFAULT_PRICES_PER_MTOK)
    env = os.environ.get("EMBEDLENS_PRICES")
    if env:
        table.update(json.loads(env))
    table.update(prices or {})
    tokens = int(estimate_tokens(texts).sum()) if texts else 0
    price = table.get(model)
    return {
        "model": model,
        "texts": len(texts),
        "tokens": tokens,
        "usd_per_mtok": price,
        "usd": None if price is None else tokens / 1e6 * price,
    }


class OpenAIEmbedder:
    """Embeddings from the OpenAI API (or a compatible server) through the official ``openai`` client.

    Args:
        model: model name (default ``text-embedding-3-small``).
        dimensions: shorter output (text-embedding-3-* only); ``None`` for the model's default.
        base_url: an OpenAI-compatible server; default ``$OPENAI_BASE_URL`` or the OpenAI API.
        api_key_env: the environment variable holding the key (read when the client is made).
        max_concurrency: requests in flight at once (used by :class:`~embedlens.CachedEmbedder`).
        max_batch_size: inputs per request (≤ 2,048).
        max_batch_tokens: estimated tokens per request.
        max_retries: retries per request (429, 5xx, timeouts), with backoff and ``Retry-After``.
        timeout: seconds per request.
        encoding_format: ``"base64"`` (compact, the client's default) or ``"float"``.

    Raises:
        EmbedlensInputError: when the key variable is unset.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        dimensions: int | None = None,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 4,
        max_batch_size: int = MAX_INPUTS_PER_REQUEST,
        max_batch_tokens: int = MAX_TOKENS_PER_REQUEST,
        max_retries: int = 6,
        timeout: float = 60.0,
        encoding_format: str = "base64",
    ) -> None:
        if not 1 <= max_batch_size <= MAX_INPUTS_PER_REQUEST:
            msg = f"max_batch_size must be within 1..{MAX_INPUTS_PER_REQUEST}, got {max_batch_size}"
            raise EmbedlensInputError(msg)
        self.model = model
        self.dimensions = dimensions
        self.name = f"openai:{model}" + (f"@{dimensions}" if dimensions else "")
        self.api_key_env = api_key_env
        self.max_concurrency = max(1, max_concurrency)
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.encoding_format = encoding_format
        self.requests = 0
        register_key_env(api_key_env)  # its value is redacted from every message, however short
        key = os.environ.get(api_key_env)
        if not key:
            msg = f"the OpenAI API key is not set: export {api_key_env}=... (embedlens never stores it)"
            raise EmbedlensInputError(msg)
        from openai import OpenAI

        self._client = OpenAI(api_key=key, base_url=base_url, max_retries=max_retries, timeout=timeout)
        self._dim = dimensions or KNOWN_DIMS.get(model)
        #: cache key: the model, the dimensions and the server (``base_url`` or ``$OPENAI_BASE_URL``,
        #: as the client resolved it), never the key. Queries are embedded like documents.
        self.identity = make_identity(
            self.name,
            {
                "kind": "openai",
                "model": model,
                "dimensions": dimensions,
                "base_url": _normal_url(str(self._client.base_url)),
            },
        )
        self.query_identity = self.identity

    @property
    def dim(self) -> int:
        """Output dimension (``dimensions``, the model's known default, or probed once)."""
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as queries: OpenAI models embed queries and documents alike."""
        return self.embed(texts)

    def batches(self, texts: Sequence[str]) -> list[slice]:
        """Split ``texts`` into request-sized slices (count and token budget)."""
        tokens = estimate_tokens(texts)
        out: list[slice] = []
        start, used = 0, 0
        for i, t in enumerate(tokens.tolist()):
            if i > start and (i - start >= self.max_batch_size or used + t > self.max_batch_tokens):
                out.append(slice(start, i))
                start, used = i, 0
            used += t
        if start < len(texts):
            out.append(slice(start, len(texts)))
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` (split into API-sized requests, sent in order); ``(n, d)`` float32.

        Raises:
            EmbedderError: the server answered with something unusable (malformed body, wrong
                number of vectors, mixed dimensions) or kept failing after the retries.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        parts = [self._request(texts[s]) for s in self.batches(texts)]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _request(self, texts: list[str]) -> np.ndarray:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model,
            "input": texts,
            "encoding_format": self.encoding_format,
        }
        if self.dimensions:
            kwargs["dimensions"] = self.dimensions
        self.requests += 1
        try:
            # the client's own POST (auth, retries, timeouts) with the body as is: ``embeddings.create`` would
            # first walk every input through its parameter transform (a third of a 2,048-input request's time)
            body = self._client.post("/embeddings", body=kwargs, cast_to=dict)
        except openai.APIStatusError as e:
            # The server's text may echo the key (a 401 "Incorrect API key provided: sk-..."): it is
            # redacted, and the original exception, which holds it verbatim, is not chained.
            if e.status_code in (401, 403):
                msg = (
                    f"{self.name}: the server refused the API key from ${self.api_key_env} "
                    f"(HTTP {e.status_code}): {self._redact(e.message)}"
                )
            else:
                msg = f"{self.name}: the server answered HTTP {e.status_code} after retries: {self._redact(e.message)}"
            raise EmbedderError(msg) from None
        except (openai.APIConnectionError, openai.APITimeoutError) as e:
            msg = (
                f"{self.name}: no answer from {self._redact(str(self._client.base_url))} after retries "
                f"({type(e).__name__})"
            )
            raise EmbedderError(msg) from e
        except ValueError as e:  # JSON decode error
            msg = f"{self.name}: the server sent a malformed response body ({self._redact(str(e))})"
            raise EmbedderError(msg) from None
        return self._decode(body, len(texts))

    def _decode(self, body: Any, n: int) -> np.ndarray:
        try:
            items = sorted(body["data"], key=lambda d: d["index"])
            vecs = [
                np.frombuffer(base64.b64decode(d["embedding"]), dtype=np.float32)
                if isinstance(d["embedding"], str)
                else np.asarray(d["embedding"], dtype=np.float32)
                for d in items
            ]
        except (KeyError, TypeError, ValueError) as e:
            msg = f"{self.name}: malformed embeddings response ({type(e).__name__}: {self._redact(str(e))})"
            raise EmbedderError(msg) from None
        if len(vecs) != n or sorted(d["index"] for d in items) != list(range(n)):
            msg = f"{self.name}: the server returned {len(vecs)} vectors for {n} inputs"
            raise EmbedderError(msg)
        if len({v.shape for v in vecs}) != 1:
            msg = f"{self.name}: the server returned vectors of different dimensions"
            raise EmbedderError(msg)
        arr = np.vstack(vecs).astype(np.float32, copy=False)
        if not np.isfinite(arr).all():
            msg = f"{self.name}: the server returned NaN or Inf values"
            raise EmbedderError(msg)
        if self._dim is not None and arr.shape[1] != self._dim:
            msg = f"{self.name}: expected {self._dim}-d vectors, the server returned {arr.shape[1]}-d"
            raise EmbedderError(msg)
        return arr

    def _redact(self, text: str) -> str:
        """``text`` without credentials, the value of ``$api_key_env`` included whatever its length."""
        return _redact(text, key_envs=(self.api_key_env,))

    def __repr__(self) -> str:
        base_url = self._redact(str(self._client.base_url))
        return f"OpenAIEmbedder({self.model!r}, dimensions={self.dimensions}, base_url={base_url!r})"


def _normal_url(url: str) -> str:
    """``url`` with a lower-case scheme and host, no credentials and no trailing slash."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url.strip())
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port is not None else "")
    query = urlencode(
        sorted(
            (k, v) for k, v in parse_qsl(parts.query) if not is_secret_name(k) and not looks_like_secret(v)
        )
    )
    return urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), query, ""))
