"""A real SMTP server on loopback for flowc's channel tests (aiosmtpd).

Usage:
    smtp_sink.py --dir DIR [--reply 'ADDRESS=REPLY|REPLY...'] [--auth USER:PASSWORD]

Listens on 127.0.0.1 on a free port and prints `PORT <n>` on the first line of stdout once it
accepts connections. Every accepted message is saved as DIR/<n>.eml (the raw message as
received) with DIR/<n>.json beside it ({"mail_from", "rcpt_tos"}); files appear atomically.

--reply makes RCPT TO for ADDRESS answer with the given replies in turn, one per attempt (the
last one repeats), e.g. `busy@x=451 4.3.0 Try later|250` (deferred once, then accepted) or
`nobody@x=550 5.1.1 User unknown`. A bare code gets a usual text. `250` accepts.

--auth requires SMTP AUTH (PLAIN/LOGIN, allowed without TLS on loopback) with these
credentials.

Stops on SIGTERM, SIGINT or when stdin closes (so it never outlives the test that started it).
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

DEFAULT_TEXT = {
    "250": "2.1.5 OK",
    "421": "4.3.2 Service not available, closing channel",
    "450": "4.2.1 Mailbox busy, try again later",
    "451": "4.3.0 Local error, try again later",
    "452": "4.2.2 Mailbox full",
    "550": "5.1.1 Recipient address rejected: User unknown",
    "551": "5.1.6 User not local",
    "552": "5.2.2 Mailbox full",
    "553": "5.1.3 Bad recipient address syntax",
    "554": "5.7.1 Message rejected as spam",
}


def reply_text(reply):
    reply = reply.strip()
    if len(reply) == 3 and reply.isdigit():
        return f"{reply} {DEFAULT_TEXT.get(reply, 'No reason given')}"
    return reply


class Sink:
    def __init__(self, directory, replies):
        self.directory = directory
        self.replies = replies  # address -> list of replies
        self.attempts = {}  # address -> count
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        key = address.lower()
        plan = self.replies.get(key)
        if plan:
            n = self.attempts.get(key, 0)
            self.attempts[key] = n + 1
            reply = reply_text(plan[min(n, len(plan) - 1)])
            if not reply.startswith("250"):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, f"{self.count:04d}")
        for suffix, data in (
            (".json", json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}).encode()),
            (".eml", envelope.original_content or envelope.content),
        ):
            tmp = base + suffix + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, base + suffix)
        return "250 2.0.0 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--reply", action="append", default=[])
    parser.add_argument("--auth")
    args = parser.parse_args()

    replies = {}
    for rule in args.reply:
        address, _, plan = rule.partition("=")
        replies[address.strip().lower()] = [r for r in plan.split("|") if r.strip()]
    os.makedirs(args.dir, exist_ok=True)
    sink = Sink(args.dir, replies)

    # Loopback only: AUTH without TLS is what the tests want; keep their output quiet.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    kwargs = {}
    if args.auth:
        user, _, password = args.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, handled=False)

        kwargs = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)

    async def run():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(sink, hostname="sink.test", decode_data=False, **kwargs),
            host="127.0.0.1",
            port=0,
        )
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # Stop when the parent goes away (stdin closes).
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(1) else None)
        await stop.wait()
        server.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
