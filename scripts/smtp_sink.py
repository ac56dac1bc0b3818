"""A real SMTP server (aiosmtpd) that keeps every message it accepts in a
Maildir: what the tests point `nudge serve`'s SMTP delivery at.

It binds a free port itself and prints `port N` as its first stdout line.
The Mailbox handler adds the envelope as X-MailFrom / X-RcptTo headers.

Usage: PYTHONPATH=.pytools python3 scripts/smtp_sink.py MAILDIR
"""

import asyncio
import os
import sys

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP


async def main(maildir):
    handler = Mailbox(maildir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="sink.test"), "127.0.0.1", 0)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    await server.serve_forever()


asyncio.run(main(sys.argv[1]))
