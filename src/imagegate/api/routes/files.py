"""``GET /v1/files/{key}``: serve stored images behind signed, expiring URLs.

The signature is the credential (like an S3 presigned URL), so image tags and plain
downloads work without an Authorization header.
"""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from imagegate.api import deps
from imagegate.api.schemas import errors
from imagegate.errors import NotFound

router = APIRouter()

_GONE = "File not found, or its link has expired. Fetch the task again for a fresh URL."


@router.get(
    "/v1/files/{key:path}",
    summary="Download a stored image through a signed URL",
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}},
        **errors(400, 404),
    },
    response_class=Response,
)
async def get_file(
    request: Request,
    key: str,
    expires: int = Query(default=0, ge=0, le=2**40),
    sig: str = Query(default="", max_length=128),
) -> Response:
    rt = deps.runtime(request)
    if not rt.signer.verify(key, expires, sig):
        raise NotFound(_GONE)
    try:
        data = await rt.storage.get(key)
    except KeyError as exc:
        raise NotFound(_GONE) from exc
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    headers = {"Cache-Control": "private, max-age=3600, immutable"}
    return Response(data, media_type=content_type, headers=headers)
