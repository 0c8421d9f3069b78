"""The SSRF guard for outgoing webhooks: which URLs may be registered, and the client every delivery is sent with.

A URL's host is checked when the URL is registered, and again each time a delivery connects: whoever owns the name may
point it at a private address after registration (DNS rebinding), so the first check alone proves nothing. The client
connects to the very addresses it checked, never to the name, so no second lookup can answer differently; TLS still
verifies the certificate against the URL's host name. Redirects are not followed, and no proxy named in the environment
is used (the client is given its transport), since a proxy would make the connection out of the guard's reach.
"""

import ipaddress
import socket
from collections.abc import Iterable

import anyio
import anyio.to_thread
import httpcore
import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A NAT64 gateway relays an address of this prefix to the IPv4 address in its last 32 bits (RFC 6052).
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

# How an error names an address webhooks may not call: the first property it has.
KINDS = {
    "is_loopback": "a loopback",
    "is_link_local": "a link-local",
    "is_unspecified": "an unspecified",
    "is_multicast": "a multicast",
    "is_reserved": "a reserved",
    "is_private": "a private",
}


class ForbiddenAddress(ValueError):
    """A webhook URL that may not be called; str() is a clear reason for an API error, naming no internals."""


class ForbiddenConnection(httpx.ConnectError, ForbiddenAddress):
    """A delivery the guard refused to connect: its host now resolves to an address webhooks may not call.

    An httpx.ConnectError, so a sender's handling of failed connections covers it, and a ForbiddenAddress, so a sender
    can tell it from a host that is down.
    """


def check_url(url: str) -> None:
    """At registration: raise ForbiddenAddress unless url is https (http with WEBHOOK_ALLOW_HTTP), has a host, no
    user:password part, and every address its host resolves to is public (any address, with WEBHOOK_ALLOW_PRIVATE_URLS).
    """
    try:
        parts = httpx.URL(url)  # the parser the client uses, so both read the same host
    except httpx.InvalidURL:
        raise ForbiddenAddress("not a valid URL") from None
    if settings.WEBHOOK_ALLOW_HTTP:
        if parts.scheme not in {"https", "http"}:
            raise ForbiddenAddress("webhook URLs must use https or http")
    elif parts.scheme != "https":
        raise ForbiddenAddress("webhook URLs must use https")
    if not parts.host:
        raise ForbiddenAddress("webhook URLs must name a host")
    if parts.userinfo:
        raise ForbiddenAddress("webhook URLs may not contain a user name or password")
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return  # any address may be called: nothing to look up
    host = parts.raw_host.decode("ascii")  # what the client resolves: an international name in its ASCII form
    try:
        addresses = resolve(host)
    except OSError:
        raise ForbiddenAddress(f"{host} does not resolve to an address") from None
    if reason := refusal(host, addresses):
        raise ForbiddenAddress(reason)


def guarded_client(*, timeout: float) -> httpx.AsyncClient:
    """The client every delivery is sent with: follow_redirects=False, the given timeout, and connections that go only
    to addresses that pass the same check at connect time (so a DNS change after registration can't reach a private
    address), still verifying TLS against the URL's host name.

    A connection the guard refuses raises ForbiddenConnection, an httpx.ConnectError; a name that no longer resolves
    raises a plain httpx.ConnectError, and a lookup slower than the timeout httpx.ConnectTimeout.
    """
    transport = httpx.AsyncHTTPTransport()
    # httpx lets no one choose its transport's httpcore network backend (encode/httpx#3180), so the connection pool it
    # built is replaced with one like it on the guarded backend. tests/webhooks pins the attribute down.
    transport._pool = httpcore.AsyncConnectionPool(network_backend=AsyncGuardedBackend(), **pool_options())
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)


def pool_options() -> dict:
    """The pool httpx's own transport builds: its default limits, and its TLS context (certifi's roots, or those of
    SSL_CERT_FILE or SSL_CERT_DIR), read now."""
    return {
        "ssl_context": httpx.create_ssl_context(),
        "max_connections": 100,
        "max_keepalive_connections": 20,
        "keepalive_expiry": 5.0,
    }


def resolve(host: str) -> list[IPAddress]:
    """Every address host resolves to, in the resolver's order. One function, so tests can stand in for DNS."""
    found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(address[0]) for *_, address in found))


def refusal(host: str, addresses: Iterable[IPAddress]) -> str | None:
    """Why webhooks may not call host at these addresses, naming the first they may not call; None if all are public."""
    for address in addresses:
        reached = destination(address)
        if not is_public(reached):
            kind = next((phrase for name, phrase in KINDS.items() if getattr(reached, name)), "a non-public")
            if _is_address(host):  # nothing was resolved: the URL names the address itself
                return f"{host} is {kind} address, which webhooks may not call"
            return f"{host} resolves to {kind} address ({address}), which webhooks may not call"
    return None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def destination(address: IPAddress) -> IPAddress:
    """The address a connection to address reaches: the IPv4 address inside an IPv4-mapped, NAT64 or 6to4 one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if address.sixtofour:
            return address.sixtofour
    return address


def is_public(address: IPAddress) -> bool:
    """Whether webhooks may call address: a global unicast one, on no network reserved for later or for a site."""
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return False  # fec0::/10 is deprecated, yet some networks still route it inside themselves
    # is_global alone lets multicast through, and IPv6's reserved ::/8 (which holds IPv4-compatible addresses).
    return address.is_global and not (address.is_multicast or address.is_reserved)


def connectable_addresses(host: str) -> list[IPAddress]:
    """Where a delivery to host may connect now: every address it resolves to, unless webhooks may not call one."""
    try:
        addresses = resolve(host)
    except OSError as error:  # a name that does not resolve fails as the stock backends fail it
        raise httpcore.ConnectError(str(error)) from error
    if not settings.WEBHOOK_ALLOW_PRIVATE_URLS and (reason := refusal(host, addresses)):
        raise ForbiddenConnection(reason)
    return addresses


class AsyncGuardedBackend(httpcore.AnyIOBackend):
    """httpcore's asyncio and trio network backend, connecting only to the checked addresses of a host."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            # getaddrinfo blocks, so it runs in a worker thread; the connect timeout bounds it, as it bounds the stock
            # backend's lookup, and a lookup that outlives it is left to finish on its own.
            with anyio.fail_after(timeout):
                addresses = await anyio.to_thread.run_sync(connectable_addresses, host, abandon_on_cancel=True)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"{host} did not resolve in time") from error
        failure = None
        for address in addresses:
            try:
                return await super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error  # the next address may answer
        raise failure
