"""A real SMTP server (aiosmtpd) that keeps every message it accepts in a
Maildir: what the tests point `nudge serve`'s SMTP delivery at.

It binds a free port itself and prints `port N` as its first stdout line.
The Mailbox handler adds the envelope as X-MailFrom / X-RcptTo headers.

With DEFER (a number), the first DEFER messages are answered
`451 4.3.0 Try again later` (a relay's rate limit) and not kept. With
`drop`, every message is kept and the connection then cut without an
answer (a relay that took the message and went away). With `chaos:SEED`,
each message at random (seeded): kept and answered (65 %), `451` and not
kept (15 %), `554` refused and not kept (10 %), or kept and the connection
cut (10 %).

Usage: PYTHONPATH=.pytools python3 scripts/smtp_sink.py MAILDIR [DEFER|drop|chaos:SEED]
"""

import asyncio
import os
import random
import sys

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP


class Deferring(Mailbox):
    def __init__(self, maildir, defer):
        super().__init__(maildir)
        self.chaos = random.Random(int(defer[6:])) if defer.startswith("chaos:") else None
        self.drop = defer == "drop"
        self.defer = 0 if self.drop or self.chaos else int(defer)

    async def handle_DATA(self, server, session, envelope):
        if self.chaos:
            roll = self.chaos.random()
            if roll < 0.15:
                return "451 4.3.0 Try again later"
            if roll < 0.25:
                return "554 5.7.1 Message refused"
            answer = await super().handle_DATA(server, session, envelope)
            if roll < 0.35:
                server.transport.abort()
            return answer
        if self.defer > 0:
            self.defer -= 1
            return "451 4.3.0 Try again later"
        answer = await super().handle_DATA(server, session, envelope)
        if self.drop:
            server.transport.abort()
        return answer


async def main(maildir, defer):
    handler = Deferring(maildir, defer)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="sink.test"), "127.0.0.1", 0)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    await server.serve_forever()


asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "0"))
