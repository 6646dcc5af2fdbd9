"""ServiceStack's csharp DTOs (/types/csharp), rendered from the MetadataTypes model (native_types/model.py)."""
from __future__ import annotations

from typing import Any

from .options import Options


def render(meta: dict[str, Any], options: Options) -> str:
    """The file's text after its header (native_types/options.py header() writes that)."""
    raise NotImplementedError("being written for issue 28")
