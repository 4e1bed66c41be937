"""A real SMTP server for the tests (aiosmtpd), on loopback.

Two listeners: STARTTLS required (like port 587) and TLS from the first byte (like 465),
both with a certificate from a throw-away CA (trustme) and AUTH PLAIN/LOGIN for one user.
Faults are chosen by the recipient's local part, so tests running side by side do not
disturb each other:

  tempfail-*@...  the first RCPT TO of that address gets 451, the next ones 250
  reject-*@...    every RCPT TO gets 550

Each accepted message is saved as MAILDIR/<n>.eml, byte for byte as received; each RCPT TO
is logged as "<address> <code>" in MAILDIR/rcpt.log. Once listening, the ports, the CA file
and the credentials are written as JSON to the --ready file.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import ssl
import threading

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER = "minutes"
PASSWORD = "s3cret pass"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler:
    def __init__(self, maildir):
        self.maildir = maildir
        self.lock = threading.Lock()
        self.seen = set()
        self.count = 0

    def log(self, address, code):
        with self.lock, open(os.path.join(self.maildir, "rcpt.log"), "a") as log:
            log.write(f"{address} {code}\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("reject"):
            self.log(address, 550)
            return "550 5.1.1 No such user here"
        if local.startswith("tempfail"):
            with self.lock:
                first = address not in self.seen
                self.seen.add(address)
            if first:
                self.log(address, 451)
                return "451 4.3.0 Try again later"
        self.log(address, 250)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            path = os.path.join(self.maildir, f"{self.count:04d}.eml")
        with open(path + ".partial", "wb") as f:
            f.write(envelope.original_content)
        os.rename(path + ".partial", path)
        return "250 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USER
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True, help="folder for the CA, mail and logs")
    parser.add_argument("--ready", required=True, help="JSON file written once listening")
    args = parser.parse_args()
    maildir = os.path.join(args.dir, "mail")
    os.makedirs(maildir, exist_ok=True)

    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file = os.path.join(args.dir, "smtp-ca.pem")
    ca.cert_pem.write_to_path(ca_file)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)

    handler = Handler(maildir)
    common = dict(hostname="127.0.0.1", authenticator=authenticate)
    starttls = Controller(
        handler,
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        auth_require_tls=True,
        **common,
    )
    # aiosmtpd does not count a TLS-wrapped connection as TLS for AUTH; it is one.
    implicit = Controller(
        handler, port=free_port(), ssl_context=context, auth_require_tls=False, **common
    )
    starttls.start()
    implicit.start()
    state = {
        "starttls": f"127.0.0.1:{starttls.port}",
        "tls": f"127.0.0.1:{implicit.port}",
        "ca_file": ca_file,
        "maildir": maildir,
        "user": USER,
        "password": PASSWORD,
    }
    with open(args.ready + ".partial", "w") as f:
        json.dump(state, f)
    os.rename(args.ready + ".partial", args.ready)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    starttls.stop()
    implicit.stop()


if __name__ == "__main__":
    main()
