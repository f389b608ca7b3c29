"""--tls-cert/--tls-key serve both receivers over TLS; --auth-token requires a bearer token."""

from __future__ import annotations

import datetime
import os
import pty
import subprocess
import sys
from pathlib import Path

import aiohttp
import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from support.processes import COMMAND, run
from support.receivers import export, running_receivers
from support.sdk_spans import nested_trace, record
from tui.receiver import ReceiverConfig, ReceiverConfigError, Security, security

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost/127.0.0.1, as the README tells users to make one."""
    import ipaddress

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_on_both_receivers_with_the_sdk_exporters(certificate: tuple[Path, Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these override the exporter's own certificate_file (see the README's TLS notes).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = certificate
    config = ReceiverConfig(grpc_port=0, http_port=0, security=Security(cert, key))
    async with running_receivers(config) as running:
        spans = record(nested_trace)
        grpc_exporter = GrpcSpanExporter(endpoint=f"localhost:{running.receivers.grpc.port}",
                                         credentials=grpc.ssl_channel_credentials(cert.read_bytes()))
        http_exporter = HttpSpanExporter(endpoint=f"https://127.0.0.1:{running.receivers.http.port}/v1/traces",
                                         certificate_file=str(cert))
        try:
            assert await export(grpc_exporter, spans) is SpanExportResult.SUCCESS
            assert await export(http_exporter, spans) is SpanExportResult.SUCCESS
        finally:
            grpc_exporter.shutdown()
            http_exporter.shutdown()
        await running.wait_for_spans(len(spans))
        stats = running.receivers.stats  # the same spans twice: the second time, acknowledged and ignored
        assert (stats.spans_accepted, stats.duplicate_spans) == (len(spans), len(spans))
        assert running.receivers.scheme == "https"


async def test_bearer_token_is_required_on_both_receivers() -> None:
    config = ReceiverConfig(grpc_port=0, http_port=0, security=Security(auth_token=TOKEN))
    async with running_receivers(config) as running:
        spans = record(nested_trace)
        url = f"http://127.0.0.1:{running.receivers.http.port}/v1/traces"
        endpoint = f"127.0.0.1:{running.receivers.grpc.port}"
        for headers in ({}, {"authorization": "Bearer wrong"}):
            denied = [GrpcSpanExporter(endpoint=endpoint, insecure=True, headers=headers, timeout=5),
                      HttpSpanExporter(endpoint=url, headers=headers, timeout=5)]
            for exporter in denied:
                try:
                    assert await export(exporter, spans) is SpanExportResult.FAILURE
                finally:
                    exporter.shutdown()
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=b"", headers={"Content-Type": "application/x-protobuf"}) as response:
                assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
        assert running.store.span_count == 0
        rejected = running.receivers.stats.requests_rejected
        assert rejected["grpc: unauthenticated"] == 2 and rejected["http: 401 unauthenticated"] == 3

        allowed = [GrpcSpanExporter(endpoint=endpoint, insecure=True, headers={"authorization": f"Bearer {TOKEN}"}),
                   HttpSpanExporter(endpoint=url, headers={"Authorization": f"Bearer {TOKEN}"})]
        for exporter in allowed:
            try:
                assert await export(exporter, spans) is SpanExportResult.SUCCESS
            finally:
                exporter.shutdown()
        await running.wait_for_spans(len(spans))


def test_bad_security_options_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ReceiverConfigError, match="go together"):
        Security(tls_cert=tmp_path / "c.pem")
    for argv, message in ((["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(tmp_path / "k.pem")],
                           "no such file"),
                          (["--auth-token", " "], "--auth-token is empty")):
        result = subprocess.run([sys.executable, "-m", "tui", "--print", *argv], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


PASSPHRASE_PROTECTED = {
    "PKCS#8": serialization.PrivateFormat.PKCS8,  # -----BEGIN ENCRYPTED PRIVATE KEY-----
    "traditional": serialization.PrivateFormat.TraditionalOpenSSL,  # Proc-Type: 4,ENCRYPTED
}


@pytest.mark.parametrize("layout", PASSPHRASE_PROTECTED)
def test_a_passphrase_protected_key_is_one_line_and_never_a_prompt(certificate: tuple[Path, Path], layout: str,
                                                                   tmp_path: Path) -> None:
    """Before, OpenSSL asked for the passphrase on the terminal; given the right one, gRPC could not use the
    key and start-up ended in a false "address already in use"."""
    cert, plain = certificate
    key = tmp_path / "key.pem"
    loaded = serialization.load_pem_private_key(plain.read_bytes(), password=None)
    key.write_bytes(loaded.private_bytes(serialization.Encoding.PEM, PASSPHRASE_PROTECTED[layout],
                                         serialization.BestAvailableEncryption(b"passphrase")))
    master, terminal = pty.openpty()
    try:  # a terminal on every stream, where a prompt would show and wait
        result = run([*COMMAND, "--print", "--grpc-port", "0", "--http-port", "0", "--tls-cert", str(cert),
                      "--tls-key", str(key)], stdin=terminal, stdout=terminal, stderr=terminal, timeout=30)
        os.close(terminal)
        written = _read_all(master)
    finally:
        os.close(master)
    assert result.returncode == 2
    assert written.splitlines() == [
        f"ollama-tui: --tls-key {key}: the key is protected by a passphrase, which ollama-tui cannot ask for; "
        f"remove it with `openssl pkey -in {key} -out key-plain.pem`"]


def test_no_passphrase_prompt_even_for_a_key_not_recognised_as_protected(
        certificate: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PEM markers are checked first; should a protected key get past them, OpenSSL's own request for
    the passphrase is refused by a callback rather than put to the terminal."""
    cert, plain = certificate
    key = tmp_path / "key.pem"
    loaded = serialization.load_pem_private_key(plain.read_bytes(), password=None)
    key.write_bytes(loaded.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"passphrase")))
    monkeypatch.setattr(security, "_encrypted", lambda _key: False)
    with pytest.raises(ReceiverConfigError, match="protected by a passphrase"):
        Security(cert, key).ssl_context()


def _read_all(master: int) -> str:
    """Everything written to a pseudo-terminal whose other end every process has closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: no writer is left
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode().replace("\r\n", "\n")
