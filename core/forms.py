"""Form bodies are text in UTF-8 (or the charset the request declares), never Latin-1.

Starlette's form parser decodes the fields of an `application/x-www-form-urlencoded` body as Latin-1 before
percent-decoding them, so the raw UTF-8 that `curl -d`, many city apps and simple HTTP clients send
("路面坑洼") came out as mojibake ("è·¯é¢åæ´¼"); only percent-encoded bytes were read as UTF-8, and bytes that
are not UTF-8 at all became U+FFFD without a word. In a `multipart/form-data` body a text field that is not
valid in its charset silently fell back to Latin-1 as well.

:class:`FormCharsetMiddleware` (pure ASGI, installed by `hotline.app.create_app`) sits in front of every route
that reads a form (the token endpoint, Open311 POST, the KB import):

* url-encoded: each field is percent-decoded to bytes, decoded with the declared charset (default UTF-8),
  and the body handed on re-encoded as ASCII percent-encoded UTF-8, which the parser underneath reads right;
* multipart: every text part (one without a filename) and every part's name must decode in the declared
  charset (default UTF-8); file contents are bytes and left to the route (the KB import checks them itself);
* anything that does not decode is answered 400 with a message naming the field, before the route runs
  (Open311 paths in GeoReport's error shape). Other requests pass through untouched.
"""

from __future__ import annotations

import codecs
import json
from urllib.parse import quote_plus, unquote_to_bytes

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

URLENCODED = b"application/x-www-form-urlencoded"
MULTIPART = b"multipart/form-data"
MAX_URLENCODED_BYTES = 1024 * 1024  # a form of text fields; the parser underneath caps one field at 1 MB
MAX_MULTIPART_BYTES = 16 * 1024 * 1024  # the KB import takes files up to 10 MB
MAX_TEXT_PART_BYTES = 1024 * 1024


class FormEncodingError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _charset(params: dict[bytes, bytes]) -> str:
    """The codec of the declared charset (default UTF-8); an unknown one is a 400, not a guess."""
    raw = params.get(b"charset", b"utf-8").decode("latin-1").strip().strip('"') or "utf-8"
    try:
        return codecs.lookup(raw).name
    except LookupError:
        raise FormEncodingError(f"unsupported charset {raw!r} (send UTF-8)") from None


def _decode(data: bytes, charset: str, what: str) -> str:
    try:
        return data.decode(charset)
    except UnicodeDecodeError as exc:
        raise FormEncodingError(
            f"{what} is not valid {'UTF-8' if charset == 'utf-8' else charset} text "
            f"(byte 0x{data[exc.start]:02x} at offset {exc.start}); send the form as UTF-8"
        ) from None


def normalise_urlencoded(body: bytes, charset: str = "utf-8") -> bytes:
    """The same form as ASCII, every field percent-encoded UTF-8; FormEncodingError for bytes that do not decode.

    Fields split at `&` and names at the first `=` exactly as python-multipart's parser does (empty pieces
    skipped, a piece without `=` is a name with an empty value)."""
    out: list[bytes] = []
    for index, piece in enumerate(p for p in body.split(b"&") if p):
        name, eq, value = piece.partition(b"=")
        raw_name = unquote_to_bytes(name.replace(b"+", b" "))
        text_name = _decode(raw_name, charset, f"form field #{index + 1} name")
        label = f"form field {text_name!r}" if text_name.isprintable() else f"form field #{index + 1}"
        text_value = _decode(unquote_to_bytes(value.replace(b"+", b" ")), charset, label)
        out.append(quote_plus(text_name, safe="").encode() + eq + quote_plus(text_value, safe="").encode())
    return b"&".join(out)


class _MultipartCheck:
    """python-multipart callbacks that decode each part's names and each text part's value as they end."""

    def __init__(self, charset: str) -> None:
        self.charset = charset
        self.count = 0
        self.headers: dict[bytes, bytes] = {}
        self.field = bytearray()
        self.value = bytearray()
        self.data = bytearray()
        self.errors: list[FormEncodingError] = []

    def callbacks(self) -> dict[str, object]:
        return {"on_part_begin": self.on_part_begin, "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
                "on_part_data": self.on_part_data, "on_part_end": self.on_part_end}

    def on_part_begin(self) -> None:
        self.count += 1
        self.headers, self.data = {}, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.field).lower()] = bytes(self.value)
        self.field, self.value = bytearray(), bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if len(self.data) <= MAX_TEXT_PART_BYTES:  # a file part's bytes are not kept beyond this
            self.data += data[start:end]

    def on_part_end(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        where = f"multipart part #{self.count}"
        try:
            name = _decode(options.get(b"name", b""), self.charset, f"{where} name")
            if b"filename" in options:
                _decode(options[b"filename"], self.charset, f"{where} filename")
            else:
                _decode(bytes(self.data), self.charset, f"form field {name!r}")
        except FormEncodingError as exc:
            self.errors.append(exc)


def check_multipart(body: bytes, boundary: bytes, charset: str = "utf-8") -> None:
    """FormEncodingError when a part's name (or filename) or a text part's value does not decode in `charset`.
    A malformed body is left to the parser underneath (it has its own errors)."""
    check = _MultipartCheck(charset)
    try:
        parser = MultipartParser(boundary, check.callbacks())  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except Exception:  # noqa: BLE001 - malformed multipart: the form parser underneath answers it
        pass
    if check.errors:
        raise check.errors[0]


class FormCharsetMiddleware:
    """See the module docstring. Costs one look at the Content-Type header for any other request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        ctype = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        media = ctype.split(b";", 1)[0].strip().lower()
        if media not in (URLENCODED, MULTIPART):
            await self.app(scope, receive, send)
            return
        try:
            _, params = parse_options_header(ctype)
            charset = _charset(params)
            limit = MAX_URLENCODED_BYTES if media == URLENCODED else MAX_MULTIPART_BYTES
            body = await _read_body(receive, limit)
            if media == URLENCODED:
                body = normalise_urlencoded(body, charset)
                headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
                headers += [(b"content-type", URLENCODED), (b"content-length", str(len(body)).encode())]
                scope = dict(scope, headers=headers)
            else:
                check_multipart(body, params.get(b"boundary", b""), charset)
        except FormEncodingError as exc:
            await _error(scope, send, exc)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise FormEncodingError("client disconnected", status=400)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise FormEncodingError(f"form body larger than {limit // (1024 * 1024)} MB", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server's receive would

    return replay


async def _error(scope: Scope, send: Send, exc: FormEncodingError) -> None:
    if scope["path"].startswith("/open311/"):  # GeoReport v2's error shape, as work_orders/open311.py answers
        payload: object = [{"code": exc.status, "description": exc.message}]
    else:
        payload = {"detail": exc.message}
    body = json.dumps(payload, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": exc.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
