"""SMS senders. The console sender prints the message instead of sending it (development); the
Alibaba Cloud and Tencent Cloud senders arrive with the notification issue."""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import TextIO

from backend.kit.pii import mask_phone

__all__ = ["ConsoleSmsSender", "SmsTemplates"]


class SmsTemplates:
    def __init__(self, path: Path):
        with path.open("rb") as handle:
            self._templates: dict[str, dict[str, str]] = tomllib.load(handle)

    def render(self, template: str, language: str, **params: object) -> str:
        texts = self._templates[template]
        return (texts.get(language) or texts["zh"]).format(**params)


class ConsoleSmsSender:
    """Prints `[SMS to 138****1234] 【签名】text` on stdout: the phone masked, the text whole so a
    developer can read the login code."""

    def __init__(self, templates: SmsTemplates, sign_name: str, stream: TextIO | None = None):
        self._templates = templates
        self._sign_name = sign_name
        self._stream = stream

    async def send(self, phone: str, template: str, language: str, **params: object) -> None:
        text = self._templates.render(template, language, **params)
        print(f"[SMS to {mask_phone(phone)}] 【{self._sign_name}】{text}",
              file=self._stream or sys.stdout, flush=True)
