"""Where torch work runs: ``--device auto|cpu|cuda`` resolved once, checked before any work starts."""

from __future__ import annotations

import re

from embedlens.errors import EmbedlensInputError

__all__ = ["DEVICE_CHOICES", "check_device_spec", "resolve_device"]

#: what ``--device`` accepts (``cuda:N`` names one GPU).
DEVICE_CHOICES = ("auto", "cpu", "cuda")
_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_spec(spec: object, *, option: str = "--device") -> str:
    """The device spec itself (``auto``, ``cpu``, ``cuda`` or ``cuda:N``), checked without importing torch.

    Raises:
        EmbedlensInputError: naming the option and the value given.
    """
    if not isinstance(spec, str) or not _SPEC.match(spec):
        msg = f"{option} must be auto, cpu, cuda or cuda:N, got {spec!r}"
        raise EmbedlensInputError(msg)
    return spec


def resolve_device(spec: str = "auto", *, option: str = "--device") -> str:
    """The torch device to use: ``auto`` is ``cuda`` when torch sees a GPU, else ``cpu``.

    ``cpu`` never imports torch. ``cuda`` (or ``cuda:N``) on a machine where torch sees no such GPU is
    refused, never silently replaced by the CPU.

    Raises:
        EmbedlensInputError: a bad spec, or a GPU asked for that is not there.
    """
    spec = check_device_spec(spec, option=option)
    if spec == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if spec == "auto":
        return "cuda" if available else "cpu"
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if not available or index >= torch.cuda.device_count():
        seen = torch.cuda.device_count() if available else 0
        msg = f"{option} {spec}: torch sees {seen} CUDA device(s) on this machine; use --device cpu (or auto)"
        raise EmbedlensInputError(msg)
    return spec
