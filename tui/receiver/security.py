"""TLS and a bearer token for both receivers (``--tls-cert``/``--tls-key``, ``--auth-token``)."""

from __future__ import annotations

import hmac
import ssl
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tui.receiver.errors import ReceiverConfigError

#: How a PEM file marks a key protected by a passphrase: PKCS#8's own block, or the traditional
#: (OpenSSL) block's header line.
_ENCRYPTED_MARKERS = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


@dataclass(frozen=True, slots=True)
class Security:
    tls_cert: Path | None = None
    tls_key: Path | None = None
    auth_token: str | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ReceiverConfigError("--tls-cert and --tls-key go together: give both or neither")
        for flag, path in (("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key)):
            if path is not None and not path.is_file():
                raise ReceiverConfigError(f"{flag} {path}: no such file")
        if self.auth_token is not None and not self.auth_token.strip():
            raise ReceiverConfigError("--auth-token is empty")
        if self.tls_key is not None and _encrypted(self.tls_key):
            raise _passphrase_error(self.tls_key)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The HTTP receiver's server context (TLS 1.2 or newer), or None for plain HTTP."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            # Given no passphrase callback, OpenSSL asks on the terminal for any key __post_init__ did not
            # recognise as protected: this one refuses instead.
            context.load_cert_chain(self.tls_cert, self.tls_key, password=partial(_refuse_passphrase, self.tls_key))
        except (ssl.SSLError, OSError) as exc:
            raise ReceiverConfigError(
                f"cannot use --tls-cert {self.tls_cert} / --tls-key {self.tls_key}: {exc}"
            ) from None
        return context

    def key_pair(self) -> tuple[bytes, bytes] | None:
        """(private key, certificate chain) PEM bytes for gRPC's server credentials."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        self.ssl_context()  # the same validation and error message as HTTP
        return self.tls_key.read_bytes(), self.tls_cert.read_bytes()

    def authorized(self, authorization: str | None) -> bool:
        """True when no token is required, or the ``Authorization`` value is ``Bearer <token>``.

        The scheme is case-insensitive (RFC 7235: ``bearer``, ``BEARER`` are ``Bearer``); the token is
        compared in constant time, and compared even when the scheme is wrong.
        """
        if self.auth_token is None:
            return True
        if authorization is None:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        token_matches = hmac.compare_digest(credentials.strip().encode(), self.auth_token.encode())
        return token_matches and scheme.lower() == "bearer"


def _encrypted(key: Path) -> bool:
    """Whether the PEM key file needs a passphrase (an unreadable file is left to the TLS loader to report)."""
    try:
        text = key.read_bytes()
    except OSError:
        return False
    return any(marker in text for marker in _ENCRYPTED_MARKERS)


def _refuse_passphrase(key: Path) -> bytes:
    raise _passphrase_error(key)


def _passphrase_error(key: Path) -> ReceiverConfigError:
    return ReceiverConfigError(
        f"--tls-key {key}: the key is protected by a passphrase, which ollama-tui cannot ask for; "
        f"remove it with `openssl pkey -in {key} -out key-plain.pem`"
    )
