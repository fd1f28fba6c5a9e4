"""uvicorn's HTTP/1.1 protocol (httptools), answering what it cannot parse with our envelope.

A request that is not valid HTTP never reaches the app, so uvicorn answers it itself, in
plain text. Clients parse every error the same way, so this one too is the contract's error
envelope. The server is started with this class as its ``http`` protocol.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from imagegate.api.errors import envelope


class HttpProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        # uvicorn's ``msg`` is its own wording; what the parser objected to, it logs.
        response = envelope(
            400,
            "The request is not valid HTTP/1.1.",
            type_="invalid_request_error",
            code="invalid_http_request",
        )
        headers = [*self.server_state.default_headers, *response.raw_headers]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        closing = b"connection: close\r\n\r\n"
        self.transport.write(STATUS_LINE[400] + head + closing + bytes(response.body))
        self.transport.close()
