"""Every request wirewatch sends out (feeds, pages, WebSub hubs, webhooks, Slack) goes through
here: no requests to internal addresses (SSRF).

A feed list, a subscription's webhook or a redirect can point at loopback, the private network
or a cloud metadata service. Every request's host is resolved and refused when any of its
addresses is not a public one, unless the operator allowed that host name or network. The
client connects to the very address it checked, so a DNS server that answers differently the
second time (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

import httpcore
import httpx

from shared.settings import Settings

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
_METADATA = frozenset({ip_address("169.254.169.254"), ip_address("fd00:ec2::254")})
_CARRIER_GRADE_NAT = ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ip_network("fc00::/7")
_NAT64 = ip_network("64:ff9b::/96")
_HOST_NAME = re.compile(r"[a-z0-9_.-]+")


class UnsafeURL(ValueError):
    """A URL the fetcher must not request; `reason` says why, `host` and `address` say where."""

    def __init__(self, url: str, reason: str, *, host: str | None = None, address: str | None = None) -> None:
        self.url = url
        self.reason = reason
        self.host = host
        self.address = address
        where = f": host {host!r} resolves to {address}" if host is not None and address is not None else ""
        super().__init__(f"refused {url!r}{where} ({reason})")


class UnresolvableHost(OSError):
    """The host name did not resolve; a network failure to retry later, not a policy refusal."""


@dataclass(frozen=True)
class URLPolicy:
    """Exceptions to the refusal of internal addresses: CIDR networks and exact host names,
    each on every port or on one (`host:port`, `10.0.0.0/8:8080`, `[::1]:8080`, `[fd00::/8]:443`)."""

    allow: tuple[str, ...] = ()
    _networks: tuple[tuple[IPNetwork, int | None], ...] = field(default=(), init=False, repr=False, compare=False)
    _hosts: frozenset[tuple[str, int | None]] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks: list[tuple[IPNetwork, int | None]] = []
        hosts: set[tuple[str, int | None]] = set()
        for entry in self.allow:
            text, port = _split_port(entry)
            try:
                networks.append((ip_network(text), port))
                continue
            except ValueError:
                pass
            name = text.rstrip(".")
            if not _HOST_NAME.fullmatch(name) or "/" in text:
                # a mistyped network must not silently become a host name that never matches
                raise ValueError(f"allow entry {entry!r} is neither a CIDR network nor an ASCII host name")
            hosts.add((name, port))
        # frozen: the parsed forms are set once, here
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_hosts", frozenset(hosts))

    @classmethod
    def from_setting(cls, value: str | None) -> URLPolicy:
        """The policy from a comma-separated setting such as "10.0.0.0/8, feeds.internal.example:8080";
        a missing or blank setting allows nothing, and an entry that is neither a network nor a
        host name (with an optional port) raises ValueError."""
        entries = [part.strip() for part in (value or "").split(",")]
        return cls(tuple(entry for entry in entries if entry))

    def allows_host(self, host: str, port: int) -> bool:
        """Whether the host name (compared case-insensitively, trailing dot ignored) is allowed
        on this port."""
        name = host.lower().rstrip(".")
        return (name, None) in self._hosts or (name, port) in self._hosts

    def allows_address(self, address: IPAddress, port: int) -> bool:
        """Whether the address, or the IPv4 address it maps to, lies in a network allowed on
        this port."""
        candidates: list[IPAddress] = [address]
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            candidates.append(embedded)
        return any(
            candidate in network and allowed in (None, port)
            for candidate in candidates
            for network, allowed in self._networks
        )


def _split_port(entry: str) -> tuple[str, int | None]:
    """An allow entry's host or network, and its port if it names one. IPv6 takes a port only
    in brackets (`[::1]:8080`), since `::1` alone ends in what looks like one."""
    text = entry.strip().lower()
    port_text: str | None = None
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"allow entry {entry!r} is neither a CIDR network nor an ASCII host name")
        text, port_text = inside, (rest[1:] if rest else None)
    elif text.count(":") == 1:
        text, port_text = text.split(":")
    if port_text is None:
        return text, None
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"allow entry {entry!r} has a port that is not a number from 1 to 65535")
    return text, int(port_text)


def default_resolver(host: str, port: int) -> list[str]:
    """The distinct IP addresses the system resolver gives for host, in its order; an IP literal
    comes back as itself without a DNS query. Raises OSError when the name does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, policy: URLPolicy, resolve: Resolver = default_resolver) -> None:
    """Raise UnsafeURL unless url is http(s) with a host whose every resolved address is public
    (or allowed by policy); raise UnresolvableHost when the host does not resolve. Refused are
    private, loopback, link-local, multicast, reserved, unspecified, site-local, unique-local,
    carrier-grade NAT and cloud metadata addresses, also when mapped into IPv6."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise UnsafeURL(url, f"not a valid URL: {error}") from None
    _check(parsed, url, policy, resolve)


def httpx_request_guard(policy: URLPolicy, resolve: Resolver = default_resolver) -> Callable[[httpx.Request], None]:
    """A request event hook for httpx.Client(event_hooks={"request": [...]}) that runs check_url
    on every request the client sends, redirects included, so UnsafeURL or UnresolvableHost is
    raised from the client call before any connection to a refused address is made."""

    def guard(request: httpx.Request) -> None:
        # the URL httpx will connect to, not a re-parse of its text that might differ
        _check(request.url, str(request.url), policy, resolve)

    return guard


def _check(parsed: httpx.URL, url: str, policy: URLPolicy, resolve: Resolver) -> None:
    scheme = parsed.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeURL(url, f"scheme {scheme!r} is not http or https" if scheme else "no scheme")
    host = parsed.host.lower().rstrip(".")
    if not host:
        raise UnsafeURL(url, "no host")
    port = parsed.port or DEFAULT_PORTS[scheme]
    if policy.allows_host(host, port):
        return
    for address in _addresses(host, port, resolve):
        reason = why_refused(address)
        if reason is not None and not policy.allows_address(address, port):
            raise UnsafeURL(url, reason, host=host, address=_shown(address))


def _addresses(host: str, port: int, resolve: Resolver) -> list[IPAddress]:
    try:
        return [ip_address(host)]
    except ValueError:
        pass
    try:
        found = resolve(host, port)
    except (OSError, UnicodeError) as error:
        raise UnresolvableHost(f"cannot resolve host {host!r}: {error}") from error
    if not found:
        raise UnresolvableHost(f"cannot resolve host {host!r}: no addresses")
    addresses = []
    for text in found:
        try:
            addresses.append(ip_address(text))
        except ValueError:
            raise UnresolvableHost(f"resolving host {host!r} gave {text!r}, not an IP address") from None
    return addresses


def why_refused(address: IPAddress) -> str | None:
    """Why the fetcher must not connect to address (e.g. "loopback address"), or None when it is
    public; an IPv6 address that embeds an IPv4 one (mapped, NAT64, 6to4) is judged by that too."""
    if address in _METADATA:
        return "cloud metadata address"
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = why_refused(embedded)
        if inner is not None:
            return f"{inner}, embedded in IPv6"
        if isinstance(address, IPv6Address) and (address.ipv4_mapped is not None or address in _NAT64):
            return None  # these reach the IPv4 address itself, which is public
    for reason, refused in _REASONS:
        if refused(address):
            return reason
    return None


def _shown(address: IPAddress) -> str:
    # the dotted form for IPv4-mapped addresses, as Python 3.13 and later print them anyway
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _embedded_ipv4(address: IPAddress) -> IPv4Address | None:
    if not isinstance(address, IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


# most specific first, so the message names the narrowest reason
_REASONS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified address", lambda a: a.is_unspecified),
    ("loopback address", lambda a: a.is_loopback),
    ("link-local address", lambda a: a.is_link_local),
    ("multicast address", lambda a: a.is_multicast),
    ("carrier-grade NAT address (100.64.0.0/10)", lambda a: a in _CARRIER_GRADE_NAT),
    ("site-local address", lambda a: isinstance(a, IPv6Address) and a.is_site_local),
    ("unique-local address (fc00::/7)", lambda a: a in _UNIQUE_LOCAL),
    ("reserved address", lambda a: a.is_reserved),
    ("private address", lambda a: a.is_private),
    ("address not globally reachable", lambda a: not a.is_global),
)


CANCEL_CHECK_SECONDS = 0.5  # how soon a blocked read notices that the service is stopping


@dataclass(frozen=True)
class _TimeLimit:
    seconds: float
    ends: float
    cancel: threading.Event | None


_limits = threading.local()  # the time limit of the request this thread is making, if any


@contextlib.contextmanager
def time_limit(seconds: float, cancel: threading.Event | None = None) -> Iterator[None]:
    """Every request this thread makes inside the block ends within `seconds` from now in
    all: connecting, sending and reading the whole body, however slowly a server trickles it
    (a client's timeout counts only one read). When `cancel` is set, a request waiting on
    the network stops within half a second. Both raise `httpx.ReadTimeout` (or a
    `httpx.ConnectTimeout`) naming the cause."""
    previous = getattr(_limits, "current", None)
    _limits.current = _TimeLimit(seconds, time.monotonic() + seconds, cancel)
    try:
        yield
    finally:
        _limits.current = previous


def _within_limit(timeout: float | None, error: type[Exception], *, sliced: bool = False) -> float | None:
    """The timeout of one network wait under the thread's time limit; raises `error` when the
    limit has passed or the request was cancelled. `sliced` (reads, which are retried) wakes
    every half second to look at the cancel flag."""
    limit: _TimeLimit | None = getattr(_limits, "current", None)
    if limit is None:
        return timeout
    if limit.cancel is not None and limit.cancel.is_set():
        raise error("cancelled: wirewatch is stopping")
    left = limit.ends - time.monotonic()
    if left <= 0:
        raise error(f"took longer than the {limit.seconds:g} s allowed for the whole request")
    wait = left if timeout is None else min(timeout, left)
    return min(wait, CANCEL_CHECK_SECONDS) if sliced and limit.cancel is not None else wait


class _LimitedStream(httpcore.NetworkStream):
    """A connection whose every wait honours the time limit of the request using it."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self.stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        ends = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if ends is None else max(0.0, ends - time.monotonic())
            wait = _within_limit(left, httpcore.ReadTimeout, sliced=True)
            try:
                return self.stream.read(max_bytes, wait)
            except httpcore.ReadTimeout:
                if ends is not None and time.monotonic() >= ends:
                    raise  # the client's own timeout for one read
                # else a slice ended: look at the limit and the cancel flag, then wait again

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, _within_limit(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        wait = _within_limit(timeout, httpcore.ConnectTimeout)
        return _LimitedStream(self.stream.start_tls(ssl_context, server_hostname, wait))

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class _CheckedNetwork(httpcore.SyncBackend):
    """Resolves the host once, refuses internal addresses, and connects to a checked address."""

    def __init__(self, policy: URLPolicy, resolve: Resolver) -> None:
        self.policy, self.resolve = policy, resolve

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        name = host.lower().rstrip(".")
        addresses = _addresses(name, port, self.resolve)
        if not self.policy.allows_host(name, port):
            for address in addresses:
                reason = why_refused(address)
                if reason is not None and not self.policy.allows_address(address, port):
                    raise UnsafeURL(f"{host}:{port}", reason, host=name, address=_shown(address))
        error: Exception | None = None
        for address in addresses:
            try:
                wait = _within_limit(timeout, httpcore.ConnectTimeout)
                stream = super().connect_tcp(str(address), port, wait, local_address, socket_options)
                return _LimitedStream(stream)
            except httpcore.ConnectError as failed:
                error = failed
        assert error is not None
        raise error


def _guarded_pool(policy: URLPolicy, resolve: Resolver) -> httpcore.ConnectionPool:
    # TLS still names the original host, so certificates are checked against it.
    return httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=_CheckedNetwork(policy, resolve)
    )


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, pool: httpcore.ConnectionPool) -> None:
        super().__init__()
        self._pool = pool  # httpx offers no parameter for the network backend; its pool takes one


def outbound_client(
    settings: Settings,
    *,
    timeout: float | None = None,
    headers: dict[str, str] | None = None,
    resolve: Resolver = default_resolver,
) -> httpx.Client:
    """An HTTP client for anything wirewatch requests: timeouts, redirects, gzip and deflate, an
    honest User-Agent, and every request (redirects included) refused before it connects to an
    internal address, unless `url_allow` allows it."""
    policy = URLPolicy.from_setting(settings.url_allow)
    return _client(settings, policy, resolve, _guarded_pool(policy, resolve), timeout=timeout, headers=headers)


def _client(
    settings: Settings,
    policy: URLPolicy,
    resolve: Resolver,
    pool: httpcore.ConnectionPool,
    *,
    timeout: float | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Client:
    return httpx.Client(
        timeout=timeout if timeout is not None else settings.fetch_timeout_seconds,
        follow_redirects=True,
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate", **(headers or {})},
        event_hooks={"request": [httpx_request_guard(policy, resolve)]},
        transport=_GuardedTransport(pool),
    )


CHECKED_HOST_SECONDS = 60.0  # how long a host's passed check spares the next requests from it
REPLY_BYTES_READ = 65536  # of a reply's body, which a poster never keeps; a longer one costs its connection
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTTPCORE_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
}


@dataclass(frozen=True)
class Reply:
    """A receiver's answer to a POST: its status and reason phrase (the body is not kept)."""

    status: int
    reason: str


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    check_key: tuple[str, str, int]  # what the address check depends on: scheme, host and port
    origin: tuple[bytes, bytes, int | None, bytes]  # scheme, host, port, path and query, as httpcore takes them
    host_header: bytes


class Poster:
    """POSTs of small bodies (webhooks, Slack) made straight on a guarded connection pool: the
    same refusals as `outbound_client`, without the client's per-request machinery (cookies,
    hooks, URL merging, decoding), which costs as much CPU as the request itself. A host's
    check is reused for a minute; every new connection is still checked as it is made, so a
    host that turns internal is refused on its next connection. The full client, on the same
    connections, follows the rare redirect and sends to a URL with credentials."""

    def __init__(self, settings: Settings, *, timeout: float, resolve: Resolver = default_resolver) -> None:
        self.policy, self.resolve = URLPolicy.from_setting(settings.url_allow), resolve
        self.pool = _guarded_pool(self.policy, resolve)
        self.client = _client(settings, self.policy, resolve, self.pool, timeout=timeout)
        self._headers = [(b"User-Agent", settings.user_agent.encode())]
        self._extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}}
        self._targets: dict[str, _Target] = {}
        self._checked: dict[tuple[str, str, int], float] = {}  # passed checks, until when they hold

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        """POST `body`; raises UnsafeURL, UnresolvableHost, or an `httpx.HTTPError` as the full
        client would."""
        target = self._target(url)
        if target.url.userinfo:
            return self._post_fully(url, body, headers)
        self._check_host(url, target)
        scheme, host, port, path = target.origin
        request = httpcore.Request(
            b"POST",
            httpcore.URL(scheme=scheme, host=host, port=port, target=path),
            headers=[
                (b"Host", target.host_header),
                *self._headers,
                *((name.encode(), value.encode()) for name, value in headers.items()),
                (b"Content-Length", str(len(body)).encode()),
            ],
            content=body,
            extensions=self._extensions,
        )
        try:
            response = self.pool.handle_request(request)
            try:
                read = 0
                for chunk in response.iter_stream():
                    read += len(chunk)
                    if read > REPLY_BYTES_READ:
                        break
            finally:
                response.close()
        except tuple(_HTTPCORE_ERRORS) as error:
            mapped = next(ours for theirs, ours in _HTTPCORE_ERRORS.items() if isinstance(error, theirs))
            raise mapped(str(error)) from error
        if response.status in _REDIRECTS:
            location = httpx.Headers(response.headers).get("location")
            if location is not None:
                return self._follow(target.url, response.status, location, body, headers)
        reason = response.extensions.get("reason_phrase")
        return Reply(
            response.status,
            reason.decode("ascii", errors="ignore")
            if reason is not None
            else httpx.codes.get_reason_phrase(response.status),
        )

    def close(self) -> None:
        self.client.close()

    def _post_fully(self, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        response = self.client.post(url, content=body, headers=headers)
        return Reply(response.status_code, response.reason_phrase)

    def _follow(self, url: httpx.URL, status: int, location: str, body: bytes, headers: dict[str, str]) -> Reply:
        """Go on where a redirect points, as the full client would have: 307 and 308 repeat
        the POST, the others turn it into a GET; every further hop is checked too."""
        try:
            following = url.join(location)
        except httpx.InvalidURL as error:
            raise httpx.RemoteProtocolError(f"Invalid URL in location header: {error}") from None
        if status in (307, 308):
            return self._post_fully(str(following), body, headers)
        response = self.client.get(following, headers=headers)
        return Reply(response.status_code, response.reason_phrase)

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            try:
                parsed = httpx.URL(url)
            except httpx.InvalidURL as error:
                raise UnsafeURL(url, f"not a valid URL: {error}") from None
            scheme = parsed.scheme.lower()
            key = (scheme, parsed.host.lower().rstrip("."), parsed.port or DEFAULT_PORTS.get(scheme, 0))
            origin = (parsed.raw_scheme, parsed.raw_host, parsed.port, parsed.raw_path)
            target = _Target(parsed, key, origin, parsed.netloc)
            if len(self._targets) >= 10_000:  # a bound, not an eviction policy: hook URLs are few
                self._targets.clear()
            self._targets[url] = target
        return target

    def _check_host(self, url: str, target: _Target) -> None:
        now = time.monotonic()
        if self._checked.get(target.check_key, 0.0) > now:
            return
        _check(target.url, url, self.policy, self.resolve)
        if len(self._checked) >= 10_000:
            self._checked.clear()
        self._checked[target.check_key] = now + CHECKED_HOST_SECONDS
