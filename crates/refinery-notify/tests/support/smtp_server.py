"""A real SMTP server on 127.0.0.1 for the e-mail channel's tests (Debian's python3-aiosmtpd).

usage: smtp_server.py MODE OUT [CERT KEY]
  MODE  plain (no TLS), starttls (offers STARTTLS and requires it before MAIL), or smtps
        (TLS from the first byte)
  OUT   a file: the first line is the port, then one JSON line per message received
        ({"peer_tls": bool, "mail_from": ..., "rcpt_tos": [...], "data": ...})
AUTH PLAIN/LOGIN is offered over TLS and accepts user `refinery` with password `s3cret`.
"""
import json
import os
import signal
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword, SMTP

mode, out = sys.argv[1], sys.argv[2]
context = None
if mode in ("starttls", "smtps"):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[3], sys.argv[4])


class Keep:
    async def handle_DATA(self, server, session, envelope):
        line = {
            "peer_tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        with open(out, "a") as f:
            f.write(json.dumps(line) + "\n")
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"refinery" and auth_data.password == b"s3cret"
    return AuthResult(success=ok)


class Server(Controller):
    def factory(self):
        return SMTP(
            self.handler,
            tls_context=context if mode == "starttls" else None,
            require_starttls=mode == "starttls",
            authenticator=authenticate,
            auth_require_tls=True,
        )


# A free port: aiosmtpd's controller connects to the port it was given to see that it is up.
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
kwargs = {"ssl_context": context} if mode == "smtps" else {}
server = Server(Keep(), hostname="127.0.0.1", port=port, **kwargs)
server.start()
with open(out + ".tmp", "w") as f:
    f.write(f"{port}\n")
os.rename(out + ".tmp", out)
try:
    signal.pause()
finally:
    server.stop()
