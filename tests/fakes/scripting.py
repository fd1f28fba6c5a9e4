"""Scripted faults as rich as a vendor's real answers, and multipart parsing, for the fakes.

A test scripts a fault for one route of a fake (``state.script.add("submit", Fault(429))``);
the next request to that route answers the fault instead of the vendor's normal answer.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from starlette.requests import Request
from starlette.responses import Response


@dataclass
class Fault:
    """One scripted misbehaviour.

    ``status=None`` only delays (a slow answer, then the normal one); ``body`` is JSON unless
    it is a ``str``, which is sent verbatim (for malformed JSON). A ``delay_s`` longer than the
    client's timeout makes a request that reached the vendor but got no answer.
    """

    status: int | None = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class Script:
    """Per-route queues of faults; each fault answers one request."""

    def __init__(self) -> None:
        self._faults: dict[str, list[Fault]] = defaultdict(list)

    def add(self, route: str, fault: Fault, times: int = 1) -> None:
        self._faults[route].extend([fault] * times)

    async def intercept(self, route: str) -> Response | None:
        """The scripted answer for ``route``, or ``None`` to answer normally."""
        if not self._faults[route]:
            return None
        fault = self._faults[route].pop(0)
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.status is None:
            return None
        if isinstance(fault.body, str):
            content = fault.body.encode()
        else:
            content = json.dumps(fault.body if fault.body is not None else {}).encode()
        headers = {"content-type": "application/json", **fault.headers}
        return Response(content, status_code=fault.status, headers=headers)


async def form_fields(request: Request) -> dict[str, str] | None:
    """The text fields of a multipart/form-data body, or ``None`` when it is not multipart.

    Parsed with the standard library so the fakes need no multipart package.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return None
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + await request.body()
    message = BytesParser(policy=HTTP).parsebytes(raw)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields
