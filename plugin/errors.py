"""Exceptions raised by embedlens.

Every error that stems from the caller's input subclasses :class:`ValueError` so that generic
handlers keep working; the CLI maps :class:`EmbedlensInputError` to exit code 2.
"""

from __future__ import annotations


class EmbedlensInputError(ValueError):
    """Bad input: a file, a shape, a dimension or an option the caller gave."""


class LensFormatError(EmbedlensInputError):
    """A lens directory is missing, corrupted, truncated, tampered with or of another format."""


class DimensionMismatchError(EmbedlensInputError):
    """Vectors do not have the dimension the lens (or index) expects."""


class FingerprintMismatchError(EmbedlensInputError):
    """The base model's embeddings do not match the model the lens was trained on."""


class DataFormatError(EmbedlensInputError):
    """A data file (pairs, BEIR corpus/queries/qrels) has a malformed row; the message names file and line."""


class EmbedderError(RuntimeError):
    """A base embedding model failed or returned something unusable."""


class TextsTypeError(EmbedlensInputError, TypeError):
    """A single string was passed where a list of texts is expected (it would be embedded per character)."""


class EmbedlensWarning(UserWarning):
    """Something worked, with a caveat the user should know (the CLI prints it as one ``warning:`` line)."""
