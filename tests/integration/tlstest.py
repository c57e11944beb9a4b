"""Helpers for the TLS integration tests: a throw-away P-256 certificate made with the
openssl CLI at test time, a server with a TLS listener beside its plain one, and client
contexts that trust that certificate. Standard library only."""

import os
import socket
import ssl
import subprocess
import tempfile

import twtest


def make_cert(directory):
    """(cert, key) paths of a fresh self-signed P-256 certificate for localhost."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-keyout", key, "-out", cert, "-nodes",
                    "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class TLSServer(twtest.Server):
    """twtest.Server plus --tls-listen 127.0.0.1:0 with a fresh certificate: .port is the
    plain listener, .tls_port the TLS one, .cert the certificate to trust."""

    def __init__(self, *args, workers=2):
        self.tmp = tempfile.TemporaryDirectory()
        self.cert, self.key = make_cert(self.tmp.name)
        super().__init__("--tls-listen", "127.0.0.1:0", "--tls-cert", self.cert,
                         "--tls-key", self.key, *args, workers=workers)

    def stop(self, *a, **kw):
        code = super().stop(*a, **kw)
        self.tmp.cleanup()
        return code

    def context(self, **kw):
        return client_context(self.cert, **kw)

    def wrap(self, ctx=None, session=None):
        """A WS(wrap=...) function: TLS over the connected socket, SNI localhost."""
        ctx = ctx or self.context()
        return lambda sock: ctx.wrap_socket(sock, server_hostname="localhost",
                                            session=session)

    def connect(self, ctx=None, session=None, timeout=5):
        """A TLS socket to the TLS listener, handshake done."""
        sock = socket.create_connection(("127.0.0.1", self.tls_port), timeout=timeout)
        return self.wrap(ctx, session)(sock)


def client_context(cert, minimum=None, maximum=None, ciphers=None):
    ctx = ssl.create_default_context(cafile=cert)
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def tls_failures(port):
    return twtest.metrics(port)['tickwire_handshake_failures_total{reason="tls"}']
