"""Chinese text in form bodies is stored as sent (core/forms.py): raw UTF-8, percent-encoded UTF-8 and
`charset=utf-8` declared all mean the same text; bytes that are not UTF-8 are a 400 with a message, on every
endpoint that reads a form (Open311 POST, the token endpoint, the KB import). Real app, real PostgreSQL."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import httpx
import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from starlette.requests import Request

from hotline.container import Container
from core.forms import FormCharsetMiddleware, FormEncodingError, normalise_urlencoded
from work_orders.taxonomy import seed_work_orders

FORM = "application/x-www-form-urlencoded"
DESCRIPTION = "人民路中段路面坑洼，车辆经过很危险"
ADDRESS = "云湖区学府路学府华庭北门"


def raw_form(fields: dict[str, str], encoding: str = "utf-8") -> bytes:
    """What `curl -d` and many city apps send: the text's bytes, only the form's own characters escaped."""
    return "&".join(f"{_escape(k)}={_escape(v)}" for k, v in fields.items()).encode(encoding)


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("&", "%26").replace("=", "%3D").replace("+", "%2B").replace(" ", "+")


def percent_form(fields: dict[str, str]) -> bytes:
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in fields.items()).encode()


# ------------------------------------------------------------------------------------------ Open311 POST
@pytest.fixture
async def open311_key(client: httpx.AsyncClient, container: Container, headers: dict[str, dict[str, str]]) -> str:
    await seed_work_orders(container)  # the city: categories, districts, the responsibility list
    r = await client.post("/v1/intake-keys", json={"channel": "city_app"}, headers=headers["admin"])
    assert r.status_code == 201, r.text
    return str(r.json()["api_key"])


def order_form(key: str, **extra: str) -> dict[str, str]:
    return {"api_key": key, "service_code": "road.damage", "description": DESCRIPTION, "address_string": ADDRESS,
            "phone": "13855556666", "first_name": "明", "last_name": "赵", **extra}


@pytest.mark.parametrize(("body", "content_type"), [
    (lambda f: raw_form(f), FORM),
    (lambda f: raw_form(f), f"{FORM}; charset=utf-8"),
    (lambda f: raw_form(f), f'{FORM}; charset="UTF-8"'),
    (lambda f: percent_form(f), FORM),
    (lambda f: percent_form(f), f"{FORM}; charset=utf-8"),
    (lambda f: raw_form(f, "gb18030"), f"{FORM}; charset=gbk"),  # a declared Chinese charset is honoured
], ids=["raw", "raw-charset", "raw-quoted-charset", "percent", "percent-charset", "gbk-declared"])
async def test_open311_form_text_stored_as_sent(client: httpx.AsyncClient, headers: dict, open311_key: str,
                                                body, content_type: str) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/open311/v2/requests.json", content=body(order_form(open311_key)),
                          headers={"Content-Type": content_type})
    assert r.status_code == 201, r.text
    ticket = r.json()[0]["service_request_id"]
    order = (await client.get(f"/v1/work-orders/{ticket}", headers=headers["supervisor"])).json()
    assert order["description"] == DESCRIPTION and order["address"] == ADDRESS
    assert order["caller_name"] == "赵 明"
    assert order["district_code"], "the address names 云湖区: the order is routed with its district"
    public = (await client.get(f"/open311/v2/requests/{ticket}.json")).json()[0]
    assert public["address"] == ADDRESS and "坑洼" in public["description"]


@pytest.mark.parametrize(("body", "content_type", "field"), [
    (b"description=\xe8\xb7\xaf\xff\xfe&service_code=road.damage", FORM, "description"),         # raw invalid
    (b"description=%E8%B7%AF%FF&service_code=road.damage", FORM, "description"),                # percent invalid
    (b"description=\xc2&service_code=road.damage", f"{FORM}; charset=utf-8", "description"),   # cut short
    ("description=路面坑洼".encode("gbk") + b"&x=1", FORM, "description"),                      # GBK, undeclared
    (b"addr\xffess_string=x", FORM, "name"),
])
async def test_open311_invalid_bytes_are_400(client: httpx.AsyncClient, headers: dict, open311_key: str,
                                             body: bytes, content_type: str, field: str) -> None:
    r = await client.post(f"/open311/v2/requests.json?api_key={open311_key}", content=body,
                          headers={"Content-Type": content_type})
    assert r.status_code == 400, r.text
    error = r.json()[0]  # GeoReport's error shape
    assert error["code"] == 400 and "UTF-8" in error["description"] and field in error["description"]
    listed = (await client.get("/v1/work-orders", headers=headers["supervisor"])).json()
    assert listed["total"] == 0


async def test_unknown_charset_is_400(client: httpx.AsyncClient, open311_key: str) -> None:
    r = await client.post("/open311/v2/requests.json", content=raw_form(order_form(open311_key)),
                          headers={"Content-Type": f"{FORM}; charset=x-no-such-charset"})
    assert r.status_code == 400 and "charset" in r.json()[0]["description"], r.text


# ------------------------------------------------------------------------------------------ token endpoint
CHINESE_PASSWORD = "正确的马 电池+钉书钉%"


@pytest.fixture
async def chinese_password_user(client: httpx.AsyncClient, headers: dict) -> str:
    r = await client.post("/v1/users", headers=headers["admin"],
                          json={"username": "clerk_zh", "password": CHINESE_PASSWORD, "role": "agent"})
    assert r.status_code == 201, r.text
    return "clerk_zh"


@pytest.mark.parametrize("encode", ["raw", "raw-charset", "percent", "multipart"])
async def test_token_endpoint_reads_utf8(client: httpx.AsyncClient, chinese_password_user: str, encode: str) -> None:
    fields = {"username": chinese_password_user, "password": CHINESE_PASSWORD}
    if encode == "multipart":
        r = await client.post("/v1/auth/token", files={k: (None, v.encode()) for k, v in fields.items()})
    else:
        body = percent_form(fields) if encode == "percent" else raw_form(fields)
        ctype = f"{FORM}; charset=utf-8" if encode == "raw-charset" else FORM
        r = await client.post("/v1/auth/token", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text
    # and the same password mis-decoded (as Latin-1 mojibake) is refused
    mojibake = CHINESE_PASSWORD.encode().decode("latin-1")
    r = await client.post("/v1/auth/token", data={"username": chinese_password_user, "password": mojibake})
    assert r.status_code == 401, r.text


@pytest.mark.parametrize("body", [b"username=clerk_zh&password=\xe6\xad\xa3\xff", b"username=clerk_zh&password=%E6%AD%FF"])
async def test_token_endpoint_invalid_bytes_are_400(client: httpx.AsyncClient, chinese_password_user: str,
                                                    body: bytes) -> None:
    r = await client.post("/v1/auth/token", content=body, headers={"Content-Type": FORM})
    assert r.status_code == 400, r.text
    assert "password" in r.json()["detail"] and "UTF-8" in r.json()["detail"]


async def test_token_endpoint_invalid_multipart_field_is_400(client: httpx.AsyncClient,
                                                             chinese_password_user: str) -> None:
    r = await client.post("/v1/auth/token", files={"username": (None, b"clerk_zh"),
                                                   "password": (None, b"\xe6\xad\xa3\xff")})
    assert r.status_code == 400, r.text
    assert "password" in r.json()["detail"] and "UTF-8" in r.json()["detail"]


# ------------------------------------------------------------------------------------------ KB import
KB_YAML = """- key: shebao-card
  title: 社会保障卡挂失补办
  category: 社会保障
  question: 社保卡丢了怎么挂失和补办？
  spoken_answer: 社保卡丢了，请先拨打社保服务电话挂失，再带身份证到任意社保网点补办。
"""


async def test_kb_import_reads_utf8_and_refuses_other_bytes(client: httpx.AsyncClient, headers: dict) -> None:
    admin = headers["admin"]
    files = {"file": ("知识库.yaml", KB_YAML.encode(), "application/yaml")}  # raw UTF-8 filename and content
    r = await client.post("/v1/kb/import", files=files, headers=admin)
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    items = (await client.get("/v1/kb/entries", headers=admin)).json()["items"]
    assert [i["title"] for i in items] == ["社会保障卡挂失补办"]
    # A multipart request whose text field or filename is not UTF-8: 400 before the route runs.
    boundary = "hotline-test-boundary"
    for part in (b'Content-Disposition: form-data; name="note"\r\n\r\n\xe7\xa4\xbe\xff',
                 b'Content-Disposition: form-data; name="file"; filename="\xb5\xff.yaml"\r\n'
                 b"Content-Type: application/yaml\r\n\r\n" + KB_YAML.encode()):
        body = (f"--{boundary}\r\n".encode() + part + f"\r\n--{boundary}--\r\n".encode())
        r = await client.post("/v1/kb/import", content=body, headers={
            **admin, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 400 and "UTF-8" in r.json()["detail"], r.text
    # The file itself in another encoding: the import's own 400.
    files = {"file": ("kb.yaml", KB_YAML.encode("gb18030"), "application/yaml")}
    r = await client.post("/v1/kb/import", files=files, headers=admin)
    assert r.status_code == 400 and "UTF-8" in r.json()["detail"], r.text


# ------------------------------------------------------------------------------------------ the re-encoding
def test_normalise_urlencoded_keeps_the_parser_semantics() -> None:
    assert normalise_urlencoded("a=路+灯&b=%2B1&&c&d=".encode()) == (
        f"a={quote('路')}+{quote('灯')}&b=%2B1&c&d=".encode())
    assert normalise_urlencoded(b"") == b""
    with pytest.raises(FormEncodingError, match="'a'"):
        normalise_urlencoded(b"a=%C3")
    assert normalise_urlencoded("k=路灯".encode("gb18030"), "gb18030") == f"k={quote('路灯')}".encode()


FORM_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


async def _parsed(body: bytes, content_type: str) -> list[tuple[str, str]]:
    """What a route sees (Starlette's form parser) after the middleware."""
    seen: list[tuple[str, str]] = []

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        form = await Request(scope, receive).form()
        seen.extend((k, str(v)) for k, v in form.multi_items())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=FormCharsetMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/", content=body, headers={"Content-Type": content_type})
    assert r.status_code == 204, r.text
    return seen


@given(fields=st.lists(st.tuples(FORM_TEXT.filter(bool), FORM_TEXT), max_size=6),
       percent=st.booleans(), declared=st.booleans())
@hypothesis_settings(max_examples=150, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_any_utf8_form_arrives_as_sent(fields: list[tuple[str, str]], percent: bool, declared: bool) -> None:
    """Any text - raw UTF-8 or percent-encoded, charset declared or not - reaches the route unchanged."""
    import asyncio

    encode = (lambda t: quote_plus(t)) if percent else _escape
    body = "&".join(f"{encode(k)}={encode(v)}" for k, v in fields).encode()
    ctype = f"{FORM}; charset=utf-8" if declared else FORM
    assert asyncio.run(_parsed(body, ctype)) == fields


@given(junk=st.binary(min_size=1, max_size=30))
@hypothesis_settings(max_examples=150, deadline=None, database=None)
def test_fuzz_arbitrary_bytes_are_text_or_400(junk: bytes) -> None:
    """Random bytes: either they are UTF-8 (then the route gets exactly that text) or a 400 with a message."""
    import asyncio

    body = b"f=" + junk.replace(b"&", b"").replace(b"%", b"").replace(b"+", b"")
    try:
        text = body[2:].decode()
    except UnicodeDecodeError:
        with pytest.raises(FormEncodingError):
            normalise_urlencoded(body)
        return
    assert asyncio.run(_parsed(body, FORM)) == [("f", text)]



CITIZEN_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=2, max_size=120)


async def test_fuzz_open311_raw_utf8_bodies_stored_as_sent(client: httpx.AsyncClient, headers: dict,
                                                           open311_key: str) -> None:
    """Raw UTF-8 Open311 forms with any text (Chinese, emoji, the form's own & = + % escaped as `curl -d` users
    would): 201 and the order holds exactly that text, or a 4xx with a message (e.g. nothing left after
    stripping) - never a 500, never mojibake."""
    sent: list[tuple[str, str, str]] = []

    @given(description=CITIZEN_TEXT, address=CITIZEN_TEXT, declared=st.booleans())
    @hypothesis_settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def examples(description: str, address: str, declared: bool) -> None:
        sent.append((description, address, f"{FORM}; charset=utf-8" if declared else FORM))

    examples()
    for i, (description, address, ctype) in enumerate(sent):  # another caller each time: no repeat-call linking
        form = order_form(open311_key, description=description, address_string=address, phone=f"139{i:08d}")
        r = await client.post("/open311/v2/requests.json", content=raw_form(form), headers={"Content-Type": ctype})
        assert r.status_code < 500, r.text
        if r.status_code != 201:
            assert r.status_code in (400, 422) and r.json()[0]["description"], r.text
            continue
        order = (await client.get(f"/v1/work-orders/{r.json()[0]['service_request_id']}",
                                  headers=headers["supervisor"])).json()
        assert (order["description"], order["address"]) == (description.strip(), address.strip())
