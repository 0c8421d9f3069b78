"""The SSRF guard: URLs refused at registration, and connections refused at send time after a DNS change, proven
against real HTTP servers on 127.0.0.1 that count what reaches them."""

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webhooks import addresses
from webhooks.addresses import ForbiddenAddress, ForbiddenConnection, check_url, guarded_client

# Every kind of address webhooks may not call, with how the refusal names it.
FORBIDDEN = [
    ("127.0.0.1", "a loopback"),
    ("127.255.255.254", "a loopback"),
    ("10.0.0.5", "a private"),
    ("172.16.0.1", "a private"),
    ("172.31.255.254", "a private"),
    ("192.168.1.1", "a private"),
    ("169.254.169.254", "a link-local"),  # cloud metadata
    ("100.64.0.1", "a non-public"),  # shared by carrier-grade NAT
    ("0.0.0.0", "an unspecified"),
    ("224.0.0.1", "a multicast"),
    ("240.0.0.1", "a reserved"),
    ("255.255.255.255", "a reserved"),
    ("192.0.2.1", "a private"),  # documentation
    ("198.18.0.1", "a private"),  # benchmarking
    ("::1", "a loopback"),
    ("::", "an unspecified"),
    ("fe80::1", "a link-local"),
    ("fc00::1", "a private"),
    ("fd12:3456::1", "a private"),
    ("fec0::1", "a non-public"),  # site-local, deprecated
    ("ff02::1", "a multicast"),
    ("2001:db8::1", "a private"),  # documentation
    ("::ffff:127.0.0.1", "a loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "a link-local"),
    ("64:ff9b::a00:5", "a private"),  # NAT64 of 10.0.0.5
    ("2002:a9fe:a9fe::1", "a link-local"),  # 6to4 of 169.254.169.254
    ("::7f00:1", "a reserved"),  # IPv4-compatible 127.0.0.1
]
PUBLIC = ["93.184.215.14", "2606:4700:4700::1111", "64:ff9b::5db8:d70e"]  # the last: NAT64 of 93.184.215.14


def in_url(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def refusal(host: str, address: str, kind: str) -> str:
    if host == address:  # the URL names the address
        return f"{host} is {kind} address, which webhooks may not call"
    return f"{host} resolves to {kind} address ({ipaddress.ip_address(address)}), which webhooks may not call"


@pytest.fixture(autouse=True)
def guarded(settings):
    """Both settings off, as in production by default, whatever the shell says."""
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False


@pytest.fixture
def dns(monkeypatch):
    """Stands in for DNS: the names a test gives, and no other, so nothing is looked up outside this machine."""
    records: dict[str, list[str]] = {}

    def resolve(host: str) -> list[addresses.IPAddress]:
        if host not in records:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(address) for address in records[host]]

    monkeypatch.setattr(addresses, "resolve", resolve)
    return records


class Receiver(BaseHTTPRequestHandler):
    """Records the path of every request; /redirect answers 302 to /target on the same server, the rest 200."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.hits.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/target")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(server: ThreadingHTTPServer):
    server.daemon_threads = True
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, args=[0.05], daemon=True)  # stops within 0.05 s
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 over plain HTTP."""
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Receiver)) as server:
        yield server


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """A receiver on 127.0.0.1 over TLS, whose self-signed certificate names hooks.example.test and which the client
    trusts (SSL_CERT_FILE); it records the host name each client asked for (SNI)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_file, key_file = tmp_path / "certificate.pem", tmp_path / "key.pem"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.server_names = []
    context.sni_callback = lambda connection, server_name, context: server.server_names.append(server_name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server):
        yield server


@pytest.fixture
def send():
    """POST a delivery with the guarded client."""

    def send(url: str) -> httpx.Response:
        async def post():
            async with guarded_client(timeout=5) as client:
                return await client.post(url, json={"event": "order.completed"})

        return asyncio.run(post())

    return send


@pytest.fixture
def no_connections(monkeypatch):
    """httpcore's own backend refuses to connect and records the attempt, so a guard that lets an address through
    fails the test instead of reaching that address."""
    attempts = []

    async def refuse(self, host, port, *args, **kwargs):
        attempts.append(host)
        raise httpcore.ConnectError(f"the test let no connection to {host} through")

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", refuse)
    return attempts


# Registration


@pytest.mark.parametrize(("address", "kind"), FORBIDDEN)
def test_every_forbidden_range_is_refused_at_registration(address, kind):
    with pytest.raises(ForbiddenAddress) as refused:
        check_url(f"https://{in_url(address)}/hook")
    assert str(refused.value) == refusal(address, address, kind)


@pytest.mark.parametrize("host", ["localhost", "2130706433", "0x7f.1", "127.1", "0x7f000001", "017700000001"])
def test_localhost_and_odd_ipv4_notations_are_refused_as_the_loopback_address_they_reach(host):
    with pytest.raises(ForbiddenAddress, match=re.escape(f"{host} resolves to a loopback address (127.0.0.1)")):
        check_url(f"https://{host}/hook")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://93.184.215.14/hook", "webhook URLs must use https"),
        ("ftp://93.184.215.14/hook", "webhook URLs must use https"),
        ("93.184.215.14/hook", "webhook URLs must use https"),
        ("https:///hook", "webhook URLs must name a host"),
        ("https://user:secret@93.184.215.14/hook", "webhook URLs may not contain a user name or password"),
        ("https://user@93.184.215.14/hook", "webhook URLs may not contain a user name or password"),
        ("https://0177.0.0.1/hook", "not a valid URL"),
        ("https://[::1/hook", "not a valid URL"),
    ],
)
def test_a_url_that_is_not_plain_https_to_a_host_is_refused(url, reason):
    with pytest.raises(ForbiddenAddress) as refused:
        check_url(url)
    assert str(refused.value) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_passes(address):
    check_url(f"https://{in_url(address)}/hook")


def test_a_name_resolving_to_public_addresses_passes(dns):
    dns["hooks.example.test"] = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    check_url("https://hooks.example.test/hook")


def test_a_name_is_refused_if_any_of_its_addresses_is_forbidden(dns):
    dns["hooks.example.test"] = ["93.184.215.14", "10.0.0.5"]
    with pytest.raises(ForbiddenAddress) as refused:
        check_url("https://hooks.example.test/hook")
    assert str(refused.value) == refusal("hooks.example.test", "10.0.0.5", "a private")


def test_a_name_that_does_not_resolve_is_refused(dns):
    with pytest.raises(ForbiddenAddress) as refused:
        check_url("https://nowhere.example.test/hook")
    assert str(refused.value) == "nowhere.example.test does not resolve to an address"


def test_http_passes_with_WEBHOOK_ALLOW_HTTP_and_other_schemes_still_do_not(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    check_url("http://93.184.215.14/hook")
    check_url("https://93.184.215.14/hook")
    with pytest.raises(ForbiddenAddress, match=r"^webhook URLs must use https or http$"):
        check_url("ftp://93.184.215.14/hook")


@pytest.mark.parametrize("host", ["127.0.0.1", "169.254.169.254", "10.0.0.5", "[::1]", "localhost"])
def test_any_address_passes_with_WEBHOOK_ALLOW_PRIVATE_URLS(settings, host):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    check_url(f"https://{host}/hook")


def test_WEBHOOK_ALLOW_PRIVATE_URLS_lets_no_user_name_or_plain_http_through(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    with pytest.raises(ForbiddenAddress, match="user name or password"):
        check_url("https://user:secret@127.0.0.1/hook")
    with pytest.raises(ForbiddenAddress, match=r"^webhook URLs must use https$"):
        check_url("http://127.0.0.1/hook")


# Sending: the guard at connect time


def test_a_name_rebound_to_loopback_after_registration_is_refused_at_connect_time(dns, receiver, send, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    url = f"http://hooks.example.test:{receiver.server_port}/hook"
    dns["hooks.example.test"] = ["93.184.215.14"]
    check_url(url)
    dns["hooks.example.test"] = ["127.0.0.1"]

    with pytest.raises(ForbiddenConnection) as refused:
        send(url)

    assert isinstance(refused.value, httpx.ConnectError)
    assert str(refused.value) == refusal("hooks.example.test", "127.0.0.1", "a loopback")
    assert receiver.hits == []


def test_with_WEBHOOK_ALLOW_PRIVATE_URLS_the_rebound_name_is_reached(dns, receiver, send, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    dns["hooks.example.test"] = ["127.0.0.1"]

    response = send(f"http://hooks.example.test:{receiver.server_port}/hook")

    assert response.status_code == 200
    assert receiver.hits == ["/hook"]


@pytest.mark.parametrize(("address", "kind"), FORBIDDEN)
def test_every_forbidden_range_is_refused_at_connect_time_after_a_dns_change(dns, no_connections, send, address, kind):
    dns["hooks.example.test"] = ["93.184.215.14"]
    check_url("https://hooks.example.test/hook")
    dns["hooks.example.test"] = ["93.184.215.14", address]

    with pytest.raises(ForbiddenConnection) as refused:
        send("https://hooks.example.test/hook")

    assert str(refused.value) == refusal("hooks.example.test", address, kind)
    assert no_connections == []


def test_the_next_address_is_tried_when_one_refuses_the_connection(dns, receiver, send, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    dns["hooks.example.test"] = ["127.0.0.2", "127.0.0.1"]  # the receiver listens on 127.0.0.1 only

    response = send(f"http://hooks.example.test:{receiver.server_port}/hook")

    assert response.status_code == 200
    assert receiver.hits == ["/hook"]


def test_a_name_that_stops_resolving_fails_as_a_connection_error_not_a_refusal(dns, send):
    with pytest.raises(httpx.ConnectError) as failed:
        send("https://gone.example.test/hook")
    assert not isinstance(failed.value, ForbiddenAddress)


def test_a_proxy_named_in_the_environment_is_not_used(dns, receiver, send, monkeypatch):
    """A proxy would make the connection itself, out of the guard's reach."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{receiver.server_port}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    dns["hooks.example.test"] = ["127.0.0.1"]

    with pytest.raises(ForbiddenConnection):
        send(f"http://hooks.example.test:{receiver.server_port}/hook")

    assert receiver.hits == []


def test_a_redirect_is_returned_not_followed(receiver, send, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True

    response = send(f"http://127.0.0.1:{receiver.server_port}/redirect")

    assert response.status_code == 302
    assert receiver.hits == ["/redirect"]


def test_tls_is_verified_against_the_url_host_name_not_the_address(dns, tls_receiver, send, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    dns["hooks.example.test"] = dns["other.example.test"] = ["127.0.0.1"]

    response = send(f"https://hooks.example.test:{tls_receiver.server_port}/hook")
    assert response.status_code == 200
    assert tls_receiver.server_names == ["hooks.example.test"]

    # The same server and address, under a name its certificate does not hold.
    with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
        send(f"https://other.example.test:{tls_receiver.server_port}/hook")
    assert tls_receiver.hits == ["/hook"]


def test_the_async_client_looks_names_up_without_blocking_the_event_loop(monkeypatch, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    looking_up, answered = threading.Event(), threading.Event()

    def slow_lookup(host):
        looking_up.set()
        assert answered.wait(5), "the event loop stood still while the name was looked up"
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(addresses, "resolve", slow_lookup)

    async def deliver_while_the_loop_runs():
        async with guarded_client(timeout=10) as client:
            delivery = asyncio.create_task(client.post(f"http://hooks.example.test:{receiver.server_port}/hook"))
            assert await asyncio.to_thread(looking_up.wait, 5)
            answered.set()  # only runs if the loop is free while the lookup waits for it
            return await delivery

    assert asyncio.run(deliver_while_the_loop_runs()).status_code == 200


def test_the_async_client_gives_up_a_lookup_slower_than_the_connect_timeout(monkeypatch):
    answered = threading.Event()
    monkeypatch.setattr(addresses, "resolve", lambda host: answered.wait(10) and [])

    async def deliver():
        async with guarded_client(timeout=0.2) as client:
            await client.post("https://hooks.example.test/hook")

    started = time.monotonic()
    try:
        with pytest.raises(httpx.ConnectTimeout):
            asyncio.run(deliver())
        assert time.monotonic() - started < 5
    finally:
        answered.set()


def test_httpx_transports_keep_the_connection_pool_the_guard_replaces():
    """The guarded clients replace httpx's private HTTPTransport._pool: if httpx moves it, this says so first."""
    assert isinstance(httpx.HTTPTransport()._pool, httpcore.ConnectionPool)
    assert isinstance(httpx.AsyncHTTPTransport()._pool, httpcore.AsyncConnectionPool)
