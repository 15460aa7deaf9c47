"""Where a webhook may go: the SSRF rule, checked when a channel is saved and at each delivery.

A URL's host is resolved, and every address it resolves to must be public: loopback, private,
link-local (the cloud metadata address 169.254.169.254 among them) and other non-global
addresses are refused unless settings.ALERT_ALLOW_PRIVATE_TARGETS is on. A delivery connects
to the very address that was checked, so a name that resolves differently a moment later
(DNS rebinding) cannot slip past the check.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

METADATA_ADDRESS = ipaddress.ip_address("169.254.169.254")

URL_SCHEME = "The URL must start with http:// or https://."
URL_INVALID = "This is not a valid URL."
URL_UNRESOLVED = "The host {host!r} does not resolve to an address."
URL_REFUSED = (
    "The host {host!r} resolves to {address}, a {kind} address; alerts send only to public "
    "addresses (ALERT_ALLOW_PRIVATE_TARGETS=true allows others)."
)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL may not be sent to: `permanent` when its address is refused, not when it
    merely did not resolve (DNS can come back)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`address`), and what to ask for there."""

    scheme: str
    host: str  # ASCII (IDNA), for the Host header and the TLS server name
    port: int
    path: str  # path and query string
    address: str

    @property
    def host_header(self) -> str:
        """The Host header: the port only when it is not the scheme's own."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def address_kind(address: str) -> str | None:
    """Why alerts may not send to `address` ("loopback", "private", ...), or None if public."""
    ip: IpAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip == METADATA_ADDRESS:
        return "metadata"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    if not ip.is_global:  # multicast, reserved, unspecified, shared (100.64/10), ...
        return "non-public"
    return None


def target_resolve(url: str, *, allow_private: bool) -> Target:
    """The checked target of `url`; TargetRefused says why it may not be sent to."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise TargetRefused(URL_INVALID, permanent=True) from exc
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(URL_SCHEME, permanent=True)
    if not host:
        raise TargetRefused(URL_INVALID, permanent=True)
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:
        raise TargetRefused(URL_UNRESOLVED.format(host=host), permanent=False) from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise TargetRefused(URL_UNRESOLVED.format(host=host), permanent=False)
    if not allow_private:
        # Every address must pass, not just the first: the resolver's order may change.
        for address in addresses:
            kind = address_kind(address)
            if kind is not None:
                message = URL_REFUSED.format(host=host, address=address, kind=kind)
                raise TargetRefused(message, permanent=True)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, host, port, path, addresses[0])
