"""What every request to `bya serve` passes before a handler runs: bearer token, CORS, body caps.

The live server's handlers assume an authorised caller and a bounded body; this module is where that is
made true. Tokens are compared in constant time; a request refused here never reaches a handler, so it
cannot create a peer connection. Every request's Host must name the bound address (421 otherwise) and its
Origin, if any, must be the page's own or an allowed one (403 otherwise): a DNS-rebinding page reaches an
open loopback server under its own name, and is refused on that. Body caps are checked against
Content-Length first and again while reading, so neither a lying header nor a chunked upload can make
the server hold more than the cap.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from realtime.errors import BYAError

MAX_SDP_BYTES = 64 * 1024  # a browser offer with every codec and candidate is ~10 KiB
MAX_JSON_BYTES = 16 * 1024  # a binding table for 4 characters and 8 inputs is a few hundred bytes
PREFLIGHT_MAX_AGE_S = 600  # browsers cache a preflight this long
ALLOWED_HEADERS = "Authorization, Content-Type"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})  # what a local browser puts in Host
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # bound to every address: the names are unknown
EXPOSED_HEADERS = "Location, ETag, Link"  # WHIP/WHEP clients read the Location of the session

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServerConfigError(BYAError):
    """The server was asked to start in a way that is unsafe or impossible (e.g. open on a public address)."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class GuardConfig:
    """Who may call the media and control endpoints, and from which web origins."""

    token: str | None  # bearer token; None only when the server is open (loopback only)
    cors_origins: frozenset[str] = frozenset()  # exact origins ("http://host:port") allowed cross-origin
    # names (lower case, no port) a request's Host may carry; None: any (bound to every address)
    hosts: frozenset[str] | None = None

    @classmethod
    def build(
        cls,
        token: str | None,
        open_access: bool,
        host: str,
        cors_origins: Iterable[str] = (),
        extra_hosts: Iterable[str] = (),
    ) -> GuardConfig:
        """Validate the combination: a token is required unless explicitly open, and open means loopback.

        Host headers may name `host` (and the localhost names when it is loopback) or one of `extra_hosts`;
        bound to every address (0.0.0.0, ::) without extra hosts, any Host is taken.
        """
        if open_access and token:
            raise ServerConfigError("--open and --token exclude each other: an open server takes no token")
        if open_access and not is_loopback(host):
            raise ServerConfigError(f"--open is allowed on a loopback address only, not on {host!r}")
        if not open_access and not token:
            raise ServerConfigError("a token is required (--token T), or start open on loopback with --open")
        if token is not None and (len(token) < 8 or len(token) > 256 or not token.isprintable()):
            raise ServerConfigError("the token must be 8-256 printable characters")
        origins = frozenset(cors_origins)
        for origin in origins:
            if origin == "*" or not origin.startswith(("http://", "https://")) or origin.endswith("/"):
                raise ServerConfigError(
                    f"CORS origin {origin!r} must be an exact origin like http://127.0.0.1:8080 (no '*')"
                )
        extra = {h.strip().lower().strip("[]") for h in extra_hosts}
        if any(not h or not h.isprintable() or "/" in h for h in extra):
            raise ServerConfigError(f"allowed hosts must be bare names or addresses, got {sorted(extra)}")
        if host in WILDCARD_HOSTS:
            hosts = frozenset(extra) or None
        else:
            hosts = frozenset(
                {host.lower().strip("[]"), *extra} | (LOOPBACK_NAMES if is_loopback(host) else set())
            )
        return cls(token=None if open_access else token, cors_origins=origins, hosts=hosts)


def token_ok(config: GuardConfig, header: str | None) -> bool:
    """Whether an Authorization header carries the configured bearer token (constant-time compare)."""
    if config.token is None:
        return True
    if header is None or header[:7].lower() != "bearer ":  # the scheme is case-insensitive (RFC 9110)
        return False
    given = header[len("Bearer ") :].strip().encode("utf-8", "replace")
    return hmac.compare_digest(given, config.token.encode("utf-8"))


def require_token(config: GuardConfig, request: web.Request) -> None:
    """Raise 401 (with a WWW-Authenticate challenge) unless the request carries the token."""
    if not token_ok(config, request.headers.get("Authorization")):
        raise web.HTTPUnauthorized(
            text="missing or wrong bearer token\n", headers={"WWW-Authenticate": 'Bearer realm="bya"'}
        )


def cors_middleware(config: GuardConfig) -> Callable:
    """Check Host and Origin on every request; answer preflights for allowed origins (403 for others);
    tag responses to allowed origins."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = check_host(config, request)
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin in config.cors_origins
        if origin is not None and not allowed and origin.lower() != f"{request.scheme}://{host}".lower():
            raise web.HTTPForbidden(text=f"origin {origin[:80]!r} is not allowed\n")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allowed:
                raise web.HTTPForbidden(text=f"origin {origin!r} is not allowed\n")
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
                    "Vary": "Origin",
                },
            )
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if allowed:  # an error must be readable by the page too, or it only sees "network error"
                _tag(exc.headers, origin)
            raise
        if allowed:
            _tag(response.headers, origin)
        return response

    return middleware


def check_host(config: GuardConfig, request: web.Request) -> str:
    """The request's Host header if it names this server (else 421: a rebound name or a wrong server)."""
    host = request.headers.get("Host", "")
    if config.hosts is None:
        return host
    if host_name(host) not in config.hosts:
        raise web.HTTPMisdirectedRequest(
            text=f"host {host[:80]!r} is not this server's (expected one of {sorted(config.hosts)})\n"
        )
    return host


def host_name(host: str) -> str:
    """The name in a Host header, lower case, without its port or IPv6 brackets ('[::1]:80' -> '::1')."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return name.rstrip(".") if colon and port.isdigit() else host.rstrip(".")


def _tag(headers, origin: str) -> None:
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    headers["Vary"] = "Origin"


async def read_body(request: web.Request, content_type: str, cap: int) -> bytes:
    """The request body if its type is `content_type` (else 415) and it fits in `cap` bytes (else 413)."""
    given = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if given != content_type:
        raise web.HTTPUnsupportedMediaType(
            text=f"Content-Type must be {content_type}, got {given or 'none'!r}\n"
        )
    if request.content_length is not None and request.content_length > cap:
        raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=request.content_length)
    body = bytearray()
    while chunk := await request.content.read(cap + 1 - len(body)):  # read past cap by 1 to detect it
        body += chunk
        if len(body) > cap:
            raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=len(body))
    return bytes(body)
