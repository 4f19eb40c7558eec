"""One typed settings class, read from the environment (prefix HOTLINE_ where not standard) and `.env`."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = REPO_ROOT / "var"
_ASTERISK_ROOT = Path(os.environ.get("HOTLINE_ASTERISK_CHROOT", "/var/cache/hotline/asterisk-sid"))


def _dev_secret(name: str) -> str:
    """A random secret persisted under var/ so dev restarts keep sessions; never used outside dev."""
    path = VAR_DIR / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_prefix="HOTLINE_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    city_name: str = "青山市"

    # Storage. No DATABASE_URL → embedded SQLite under var/.
    database_url: str = Field(default="", validation_alias="DATABASE_URL")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")

    # Auth.
    secret_key: str = ""
    token_ttl_minutes: int = 8 * 60
    admin_user: str = "admin"
    admin_password: str = ""
    login_rate_limit_per_minute: int = 10

    # API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # `hotline api` worker processes. Two on the 2-core box: one process at 200 creates/s is busy enough that a
    # single pause (a CPU burst elsewhere, the hypervisor taking the core) queues hundreds of requests behind it
    # (benchmarks/work_orders_create.py: p99 175 ms with 1, 13 ms with 2).
    api_workers: int = Field(default=2, ge=1, le=64)
    public_base_url: str = "http://127.0.0.1:8000"

    # Knowledge base.
    kb_synonyms_file: Path = REPO_ROOT / "config" / "synonyms.yaml"
    kb_seed_file: Path = REPO_ROOT / "knowledge_base" / "seed" / "entries.yaml"
    kb_min_score: float = 0.0
    kb_min_coverage: float = 0.34

    # Work orders.
    city_seed_file: Path = REPO_ROOT / "work_orders" / "seed" / "city.yaml"
    timezone: str = "Asia/Shanghai"
    repeat_window_days: int = 7
    urges_to_raise_urgency: int = 2
    escalation_interval_seconds: float = 30.0
    # Deadlines per urgency (普通/加急/特急): response = accepted by the department, resolution = 办结.
    wo_response_minutes: dict[str, int] = {"normal": 120, "urgent": 60, "critical": 30}
    wo_resolution_hours: dict[str, int] = {"normal": 120, "urgent": 48, "critical": 24}
    wo_level3_after_hours: float = 24.0  # unsolved this long after level 2 → level 3 (leadership)
    wo_nearby_hotspot_days: int = 3  # other citizens, same place and category, within this → one master order
    wo_callback_delay_minutes: int = 0  # callback task due this long after 办结
    wo_callback_max_attempts: int = 3  # unanswered this many times → closed without a rating
    wo_track_max_failures: int = 10  # wrong phone digits per ticket per hour before 429

    # Rasa.
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_seconds: float = 1.5
    action_server_port: int = 5055

    # Asterisk / ARI.
    ari_url: str = "http://127.0.0.1:8088"
    ari_user: str = "hotline"
    ari_password: str = ""
    ari_app: str = "hotline"
    # The IVR controller: a call still with the bot after this long goes to a person (CallTimeouts.max_call).
    ivr_max_call_seconds: float = Field(default=600.0, gt=0)
    # Scale-out: the Asterisk node `ari_url` belongs to (its systemname; "" = the single default node). A call is
    # pinned to the node whose Asterisk holds its channel; the controller and seats runtime of that node handle it.
    node: str = ""
    # Every node's ARI URL by name, for processes that act on calls of any node (API: an agent's hold/transfer).
    ari_nodes: dict[str, str] = {}

    # Speech. Capacity grows with ASR workers: each decodes one utterance at a time on asr_cpu_threads cores
    # (docs/scaling.md). Two one-thread workers on the 2-core box: ten callers who stop talking at the same moment
    # wait for half as many decodes as with one.
    models_dir: Path = VAR_DIR / "cache" / "models"
    asr_engine: Literal["whisper", "vosk"] = "whisper"
    whisper_model: str = "whisper-base-zh"
    vosk_model: str = "vosk-cn"
    asr_workers: int = Field(default=2, ge=1, le=64)
    asr_cpu_threads: int = Field(default=1, ge=1, le=64)
    asr_beam_size: int = Field(default=2, ge=1, le=10)
    tts_threads: int = Field(default=1, ge=1, le=64)
    tts_speed: float = Field(default=1.0, gt=0.3, lt=3.0)
    tts_cache_dir: Path = VAR_DIR / "cache" / "tts"
    record_audio: bool = False

    # Human seats (agent_handoff). Seat-side channels live in their own Stasis app.
    seats_ari_app: str = "hotline-seats"
    handoff_default_queue: str = "hotline"
    handoff_wrap_up_seconds: float = 30.0  # after-call work, then back to available
    handoff_ring_seconds: float = 15.0  # agent phone rings this long, then the next agent
    handoff_widen_after_seconds: float = 60.0  # waiting longer → any agent, whatever the skill
    handoff_announce_seconds: float = 45.0  # position/wait announced again this often (30–60)
    handoff_callback_offer_seconds: float = 120.0  # estimated wait above this → "press 1 for a callback"
    handoff_default_handle_seconds: float = 240.0  # estimate until there are recent handle times
    handoff_pause_on_no_answer: bool = True  # an agent who lets it ring out goes to paused(未接听)
    handoff_outbound_dial: str = "PJSIP/caller/sip:{number}@127.0.0.1:5090"  # citizens / departments
    handoff_callback_max_attempts: int = 3
    handoff_callback_retry_seconds: float = 600.0
    handoff_quiet_hours: tuple[str, str] = ("21:00", "08:00")  # no outbound calls (local time)
    survey_max_attempts: int = 3
    survey_retry_seconds: float = 3600.0
    # Where the hotline's Asterisk reads sounds/hold music (inside the dev chroot; a shared volume in Docker).
    asterisk_sounds_dir: Path = _ASTERISK_ROOT / "usr/share/asterisk/sounds/hotline"
    asterisk_moh_dir: Path = _ASTERISK_ROOT / "var/lib/asterisk/moh"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        (VAR_DIR / "data").mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{VAR_DIR / 'data' / 'hotline.db'}"

    @model_validator(mode="after")
    def _secrets(self) -> "Settings":
        missing = [n for n in ("secret_key", "admin_password", "ari_password") if not getattr(self, n)]
        if self.env == "prod" and missing:
            raise ValueError(
                "missing secrets for HOTLINE_ENV=prod: "
                + ", ".join(f"HOTLINE_{n.upper()}" for n in missing)
            )
        for name in missing:
            setattr(self, name, _dev_secret(name))
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
