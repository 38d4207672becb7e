"""The JSON response class: orjson rendering for the hot ingestion path."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from clientela.core.types import json_bytes


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json_bytes(content)
