#!/usr/bin/python3
"""A loopback SMTP server for tests (aiosmtpd), run by package internal/smtptest.

It listens on 127.0.0.1:PORT (0 = any free port), offers STARTTLS with the
given certificate and requires it before AUTH and before any mail, requires
AUTH (LOGIN or PLAIN) with the given user and password, and stores each
accepted message in the Maildir FOLDER (written to FOLDER/tmp, then renamed
into FOLDER/new), prefixed with Return-Path, Delivered-To and an
X-Test-Session header naming the SMTP session. Recipients at
reject.example are refused with 550, at tempfail.example with 451.

When it listens it prints "READY <port>" on a line of its own; SIGTERM or
SIGINT stop it, and so does the end of its standard input with
--watch-stdin (the test process that holds the pipe died). Run with Debian's python3 and its python3-aiosmtpd package:

    /usr/bin/python3 smtpd.py --port 0 --cert c.pem --key k.pem \
        --user u --password p --maildir DIR
"""

import argparse
import asyncio
import itertools
import os
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Store:
    """Accepts mail for every recipient but the test domains, into a Maildir."""

    def __init__(self, folder):
        self.folder = folder
        self.count = itertools.count(1)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        domain = address.rpartition("@")[2].lower()
        if domain == "reject.example":
            return "550 5.1.1 Mailbox unavailable"
        if domain == "tempfail.example":
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.count)
        name = "%d.%d_%d.lastmile-test" % (time.time_ns(), os.getpid(), n)
        head = "Return-Path: <%s>\r\n" % envelope.mail_from
        for rcpt in envelope.rcpt_tos:
            head += "Delivered-To: %s\r\n" % rcpt
        head += "X-Test-Session: %s:%d\r\n" % (session.peer[0], session.peer[1])
        content = envelope.original_content
        if isinstance(content, str):
            content = content.encode("utf-8")
        tmp = os.path.join(self.folder, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(head.encode("ascii") + content)
        os.rename(tmp, os.path.join(self.folder, "new", name))
        return "250 2.0.0 OK queued as %d" % n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--watch-stdin", action="store_true", help="stop at the end of standard input")
    a = p.parse_args()

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(a.cert, a.key)
    user, password = a.user.encode(), a.password.encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            mechanism in ("LOGIN", "PLAIN")
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == user
            and auth_data.password == password
        )
        # handled=False: aiosmtpd itself answers 235 or 535.
        return AuthResult(success=ok, handled=False)

    store = Store(a.maildir)

    def factory():
        return SMTP(
            store,
            hostname="smtpd.lastmile.test",
            tls_context=tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=authenticator,
            enable_SMTPUTF8=True,
            timeout=60,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(factory, host="127.0.0.1", port=a.port))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    if a.watch_stdin:
        fd = sys.stdin.fileno()

        def stdin_readable():
            if not os.read(fd, 4096):
                loop.stop()

        loop.add_reader(fd, stdin_readable)
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    try:
        loop.run_forever()
    finally:
        # Open sessions end with the process, as a crashing server's would.
        server.close()
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
