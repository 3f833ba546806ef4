"""The providers' loopback fakes in a process of their own, for bench/notify.py: the workers under test
then do not share a GIL (or an event loop) with the fakes, and the fakes are not the ceiling.

    .venv/bin/python bench/notify_fakes.py aliyun|tencent|wechat [--delay-ms 2]

Prints one JSON line, {"address": "127.0.0.1:PORT", ...credentials}, then answers commands on stdin,
one a line, each with one JSON line on stdout:
    take    what the fake received since the last `take`, by delivery reference, and forgets it:
            {"sent": {"<reference>": count, ...}, "refused": n}
            aliyun: OutId (`ehall-d<delivery id>`); tencent: SessionContext (the same);
            wechat: the subscribe message's `page` (it carries the ticket or appointment id)
    quit    stops the fake and exits (so does the end of stdin)
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.aliyun_sms import FakeAliyunSms  # noqa: E402
from tests.fakes.tencent_sms import FakeTencentSms  # noqa: E402
from tests.fakes.wechat import FakeWechat  # noqa: E402


def _take(kind: str, fake) -> dict:
    with fake._lock:
        if kind == "wechat":
            sent, fake.sent_messages[:] = list(fake.sent_messages), []
            refused = 0
            references = Counter(message.get("page") or "" for message in sent)
        else:
            sent, fake.sent[:] = list(fake.sent), []
            refused, fake.refused[:] = len(fake.refused), []
            key = "out_id" if kind == "aliyun" else "session_context"
            references = Counter(call.get(key) or "" for call in sent)
    return {"sent": references, "refused": refused}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("aliyun", "tencent", "wechat"))
    parser.add_argument("--delay-ms", type=float, default=2.0, help="each send answers after this long")
    args = parser.parse_args()
    delay = args.delay_ms / 1000
    if args.kind == "aliyun":
        fake = FakeAliyunSms()
        fake.answer_delay_seconds = delay
        hello = {"access_key_id": fake.access_key_id, "access_key_secret": fake.access_key_secret}
    elif args.kind == "tencent":
        fake = FakeTencentSms()
        fake.answer_delay_seconds = delay
        hello = {"secret_id": fake.secret_id, "secret_key": fake.secret_key, "sdk_app_id": fake.sdk_app_id}
    else:
        fake = FakeWechat()
        fake.send_delay_seconds = delay
        hello = {"appid": fake.appid, "secret": fake.secret}
    fake.start()
    try:
        address = fake.base_url.removeprefix("http://").rstrip("/")
        print(json.dumps({"address": address, "base_url": fake.base_url} | hello), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "take":
                print(json.dumps(_take(args.kind, fake)), flush=True)
            elif command == "quit":
                break
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
