"""Outbound HTTP: the httpx clients that talk to providers and fetch their images."""

from __future__ import annotations

import ipaddress
import json
from typing import Any, cast
from urllib.request import getproxies

import httpx

from imagegate.outbound.transport import DEFAULT_LIMITS, Transport

_URLS_KEPT = 256  # poll URLs name their job, so the parsed URLs kept are bounded
_BODY_METHODS = ("POST", "PUT", "PATCH")  # httpx sends these a Content-Length, even of 0


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing a response sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class Client(httpx.AsyncClient):
    """httpx's client without a cookie jar: one client serves every API key's requests, so a
    cookie an upstream sets during one must not ride along on the next; and reading every
    answer for cookies cost a measurable share of a call.

    ``send`` goes straight to the transport when nothing of httpx's own layers would act
    (no auth, no redirects followed, no event hooks, no proxy): those layers and their
    wrapped streams were a tenth of the CPU of a synchronous request's provider call. It
    takes the response from the transport read to its end (``Transport.fetch``).
    """

    def __init__(
        self,
        timeout: httpx.Timeout,
        transport: Transport,
        mounts: dict[str, httpx.AsyncBaseTransport | None],
    ) -> None:
        super().__init__(timeout=timeout, transport=transport, mounts=mounts)
        self._cookies = _NoCookies()  # where httpx keeps the jar its ``cookies`` property gives
        self._direct = None if mounts else transport
        self._urls: dict[str, httpx.URL] = {}

    def build_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: httpx._types.RequestContent | None = None,
        data: httpx._types.RequestData | None = None,
        files: httpx._types.RequestFiles | None = None,
        json: Any | None = None,
        params: httpx._types.QueryParamTypes | None = None,
        headers: httpx._types.HeaderTypes | None = None,
        cookies: httpx._types.CookieTypes | None = None,
        timeout: httpx._types.TimeoutTypes | httpx._client.UseClientDefault = (
            httpx.USE_CLIENT_DEFAULT
        ),
        extensions: httpx._types.RequestExtensions | None = None,
    ) -> httpx.Request:
        """httpx's request, built in about a quarter of httpx's time (20 against 71 µs for a
        provider's POST) for what the adapters send: an absolute URL (parsed once), string
        headers and a JSON body or none. Anything else, or a client given a base URL,
        parameters or cookies, goes through httpx's own."""
        plain = (
            content is None
            and data is None
            and files is None
            and params is None
            and cookies is None
            and extensions is None
            and not self.params
            and not str(self.base_url)
            and not self.cookies
        )
        given = _text_headers(headers)
        parsed = self._absolute(url) if plain and given is not None else None
        if parsed is None or given is None:
            return super().build_request(
                method,
                url,
                content=content,
                data=data,
                files=files,
                json=json,
                params=params,
                headers=headers,
                cookies=cookies,
                timeout=timeout,
                extensions=extensions,
            )
        method = method.upper()
        body = None if json is None else _json_body(json)
        if isinstance(timeout, httpx._client.UseClientDefault):
            timeout = self.timeout
        elif not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout)
        request = httpx.Request(
            method,
            parsed,
            headers=self._request_headers(method, parsed, given, body),
            stream=httpx.ByteStream(body or b""),
            extensions={"timeout": timeout.as_dict()},
        )
        request.read()
        return request

    def _absolute(self, url: httpx.URL | str) -> httpx.URL | None:
        """``url`` parsed (and remembered: adapters send to a few URLs over and over), or
        None when it is not an absolute http(s) URL given as a string."""
        if not isinstance(url, str):
            return None
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = httpx.URL(url)
            if parsed.scheme not in ("http", "https") or not parsed.host:
                return None
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            self._urls[url] = parsed
        return parsed

    def _request_headers(
        self, method: str, url: httpx.URL, given: dict[str, str], body: bytes | None
    ) -> list[tuple[bytes, bytes]]:
        """The headers httpx would send: Host, the client's, the given ones (which replace the
        client's of the same name) and the body's length and type."""
        names = {name.lower() for name in given}
        headers = [(b"Host", url.netloc)] if "host" not in names else []
        headers += [(k, v) for k, v in self.headers.raw if k.lower().decode() not in names]
        headers += [(k.encode("ascii"), v.encode("ascii")) for k, v in given.items()]
        if "content-length" not in names and (body is not None or method in _BODY_METHODS):
            headers.append((b"Content-Length", b"%d" % len(body or b"")))
        if body is not None and "content-type" not in names:
            headers.append((b"Content-Type", b"application/json"))
        return headers

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        direct = self._direct
        layered = (
            stream
            or auth is not httpx.USE_CLIENT_DEFAULT
            or follow_redirects is not httpx.USE_CLIENT_DEFAULT
            or self.auth is not None
            or self.follow_redirects
            or any(self.event_hooks.values())
            or self.is_closed
        )
        if direct is None or layered:
            return await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        try:
            response = await direct.fetch(request)
        except httpx.RequestError as exc:
            exc.request = request  # as httpx's own send attaches it
            raise
        response.request = request
        return response


def _text_headers(headers: httpx._types.HeaderTypes | None) -> dict[str, str] | None:
    """The headers as a dict of strings, or None when they are given in another form."""
    if headers is None:
        return {}
    if isinstance(headers, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        return cast(dict[str, str], headers)
    return None


def _json_body(value: Any) -> bytes:
    """A JSON body encoded exactly as httpx encodes ``json=``."""
    encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return encoded.encode("utf-8")


def client(total_s: float, limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.AsyncClient:
    """A client on imagegate's transport, ``total_s`` for reads and writes and at most 10 s
    to connect; through the environment's proxies (``HTTPS_PROXY``, ``NO_PROXY``, ...) when
    it names any."""
    timeout = httpx.Timeout(total_s, connect=min(10.0, total_s))
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        pattern: None if proxy is None else httpx.AsyncHTTPTransport(proxy=proxy, limits=limits)
        for pattern, proxy in environment_proxies().items()
    }
    return Client(timeout, Transport(limits), mounts)


def environment_proxies() -> dict[str, str | None]:
    """httpx's URL patterns for the environment's proxies (None: go direct), as httpx reads
    them itself for a client without a transport of its own, which this one has."""
    found = getproxies()
    patterns: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if found.get(scheme):
            proxy = found[scheme]
            patterns[f"{scheme}://"] = proxy if "://" in proxy else f"http://{proxy}"
    for host in (h.strip() for h in found.get("no", "").split(",")):
        if host == "*":
            return {}
        if host:
            patterns[_direct_pattern(host)] = None
    return patterns


def _direct_pattern(host: str) -> str:
    """The pattern of a ``NO_PROXY`` entry: a domain covers its subdomains (curl's rule)."""
    if "://" in host:
        return host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"all://{host}" if host.lower() == "localhost" else f"all://*{host}"
    return f"all://[{host}]" if address.version == 6 else f"all://{host}"


__all__ = ["Client", "Transport", "client", "environment_proxies"]
