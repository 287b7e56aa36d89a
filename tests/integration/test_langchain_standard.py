"""LangChain's standard embeddings test suites against LensEmbeddings over the real local model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from embedlens.adapters.langchain import EmbedderEmbeddings, LensEmbeddings


@pytest.fixture(scope="class")
def _params(request: pytest.FixtureRequest, lens_dirs: dict[str, Path], local_embedder) -> None:  # type: ignore[no-untyped-def]
    request.cls.params = {"base": EmbedderEmbeddings(local_embedder), "lens": lens_dirs["symmetric"]}


@pytest.mark.usefixtures("_params")
class TestLensEmbeddingsUnit(EmbeddingsUnitTests):
    params: dict[str, Any]

    @property
    def embeddings_class(self) -> type[LensEmbeddings]:
        return LensEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return self.params


@pytest.mark.usefixtures("_params")
class TestLensEmbeddingsIntegration(EmbeddingsIntegrationTests):
    params: dict[str, Any]

    @property
    def embeddings_class(self) -> type[LensEmbeddings]:
        return LensEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return self.params
