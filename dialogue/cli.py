"""`hotline chat`: talk to the bot in a terminal, through the same /v1/dialogue API the IVR uses."""

from __future__ import annotations

import argparse
import json
import sys
import uuid

import httpx

from config.settings import get_settings


def chat(args: argparse.Namespace) -> int:
    settings = get_settings()
    base = (args.url or settings.public_base_url).rstrip("/")
    session_id = f"chat-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=base, timeout=10) as http:
        token = http.post(
            "/v1/auth/token",
            data={"username": args.user or settings.admin_user, "password": args.password or settings.admin_password},
        )
        if token.status_code != 200:
            print(f"login failed: {token.json().get('detail')}", file=sys.stderr)
            return 1
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        print("您好，这里是12345市民服务热线智能客服。输入您的问题，空行结束。")
        first = True
        for line in sys.stdin:
            text = line.strip()
            if not text:
                break
            body: dict[str, str] = {"text": text}
            if first and args.caller:
                body["caller"] = args.caller
            first = False
            r = http.post(f"/v1/dialogue/{session_id}", json=body, headers=headers)
            if r.status_code != 200:
                print(f"[error {r.status_code}] {r.json().get('detail')}")
                continue
            turn = r.json()
            for reply in turn["replies"]:
                print(f"客服：{reply}")
            if args.verbose:
                meta = {k: turn[k] for k in ("intent", "confidence", "action", "category", "work_order", "handoff")}
                print("      " + json.dumps(meta, ensure_ascii=False))
        http.post(f"/v1/dialogue/{session_id}/end", headers=headers)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("chat", help="talk to the bot in a terminal (needs `hotline run`)")
    p.add_argument("--url", help="hotline API base URL (default: settings.public_base_url)")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--caller", help="caller number to pretend, e.g. 13812345678")
    p.add_argument("-v", "--verbose", action="store_true", help="show intent/action per turn")
    p.set_defaults(func=chat)
