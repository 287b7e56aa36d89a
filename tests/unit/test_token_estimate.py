"""Token estimates for OpenAI batching and cost never reach the network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from embedlens.embedders import openai as oa


def test_no_vocabulary_on_disk_means_the_byte_estimate_and_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("estimate_tokens tried to reach the network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache: tiktoken would download
    oa._local_encoding.cache_clear()
    try:
        assert oa.estimate_tokens(["abcdefgh", "é"]).tolist() == [2, 1]  # ceil(bytes / 4), at least 1
        assert oa._local_encoding() is None
    finally:
        oa._local_encoding.cache_clear()
