"""The development SMS gateway: messages go to a file instead of a phone.

`shanakht dev outbox` prints it and tests read it. One JSON line per message, appended under
an exclusive lock, so several server processes can share one outbox. It holds one-time codes in
clear text, which is why only development uses it; `outage` simulates a gateway that is down.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from identity.sms.protocol import SmsUnavailable


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    to: str
    text: str
    sent_at: str


class OutboxSmsGateway:
    def __init__(self, path: Path, *, clock: Callable[[], datetime], outage: bool = False) -> None:
        self.path = path
        self._clock = clock
        self.outage = outage

    def send(self, to: str, text: str) -> None:
        if self.outage:
            raise SmsUnavailable("the SMS gateway is not answering")
        message = OutboxMessage(to=to, text=text, sent_at=self._clock().isoformat())
        line = json.dumps(asdict(message), ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(line)

    def messages(self) -> list[OutboxMessage]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as f:
            return [OutboxMessage(**json.loads(line)) for line in f if line.strip()]

    def last_to(self, to: str) -> OutboxMessage | None:
        found = [m for m in self.messages() if m.to == to]
        return found[-1] if found else None
