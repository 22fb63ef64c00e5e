"""The province's source of truth as typed objects: every flow (render, deploy, audit, lab, meeting) reads them."""

from __future__ import annotations

import logging
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from conftool.inventory.secrets import CredentialRef

logger = logging.getLogger(__name__)


class Level(StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"


class Era(StrEnum):
    """Which administrative map the inventory follows (DESIGN §9)."""

    LEGACY = "legacy"  # three levels: province → district → commune (pre-2025, the seeds' map)
    Y2025 = "2025"  # two levels: communes directly under the province


class LinkKind(StrEnum):
    LAN = "lan"
    INTERNET = "internet"
    DEDICATED = "dedicated"  # TSLCD: the state's dedicated data network (IP/MPLS VPN)


class Role(StrEnum):
    CORE = "core"  # province core router
    EDGE = "edge"  # district router
    CPE = "cpe"  # commune router
    FIREWALL = "firewall"
    MEETING_ENDPOINT = "meeting-endpoint"  # the meeting-room PC
    SERVER = "server"


# Template family -> Netmiko device_type. FRR's vtysh speaks the IOS dialect closely enough
# for Netmiko's cisco_ios driver (show, config mode, end, write memory), checked on FRR 8.4.
PLATFORMS: dict[str, str] = {
    "frr": "cisco_ios",
    "cisco_ios": "cisco_ios",
    "huawei_vrp": "huawei",
    "mikrotik_routeros": "mikrotik_routeros",
    "linux": "linux",
}
ROUTER_ROLES = frozenset({Role.CORE, Role.EDGE, Role.CPE, Role.FIREWALL})
HOST_ROLES = frozenset({Role.MEETING_ENDPOINT, Role.SERVER})

_HOSTNAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_SLUG = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_SITE_ID = r"^[0-9]{2,5}$"


class _Model(BaseModel):
    """Strict base: unknown keys are errors (a typo must never be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=False, validate_default=False)


class Contact(_Model):
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 .-]{6,20}$")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    role: str | None = None


class Thresholds(_Model):
    """Meeting-quality limits a link must meet (defaults from DESIGN / the audit issue)."""

    rtt_ms: float = Field(default=150.0, gt=0)
    loss_pct: float = Field(default=1.0, ge=0, le=100)
    jitter_ms: float = Field(default=30.0, ge=0)


class Link(_Model):
    kind: LinkKind
    prefix: IPv4Network
    address: IPv4Address | None = None  # this site's address on the link
    gateway: IPv4Address | None = None  # next hop: the telco PE / ISP / (LAN) the router itself
    provider: str | None = None
    bandwidth_mbps: float | None = Field(default=None, gt=0)
    vlan: int | None = Field(default=None, ge=1, le=4094)
    circuit_id: str | None = None
    interface: str | None = None

    @field_validator("prefix", mode="before")
    @classmethod
    def _strict_prefix(cls, v: Any) -> Any:
        # "10.1.1.5/24" is almost always a typo for the network; say so rather than mask it.
        if isinstance(v, str) and "/" in v:
            IPv4Network(v, strict=True)
        return v


class Device(_Model):
    hostname: Annotated[str, Field(pattern=_HOSTNAME)]
    platform: str
    role: Role
    mgmt_address: IPv4Address | None = None
    address: IPv4Address | None = None  # data-plane address (e.g. a room PC on the site LAN)
    username: str | None = None
    credentials: CredentialRef | None = None
    enable_credentials: CredentialRef | None = None  # IOS enable secret, when it differs from the login password
    managed: bool = True  # false: the telco owns it — audited, never deployed
    timeout_s: float = Field(default=20.0, gt=0, le=600)
    port: int = Field(default=22, ge=1, le=65535)

    @field_validator("platform")
    @classmethod
    def _known_platform(cls, v: str) -> str:
        if v not in PLATFORMS:
            raise ValueError(f"unknown platform {v!r}; known: {', '.join(sorted(PLATFORMS))}")
        return v

    @property
    def device_type(self) -> str:
        """The Netmiko driver name for this device."""
        return PLATFORMS[self.platform]

    @property
    def is_router(self) -> bool:
        return self.role in ROUTER_ROLES


class Site(_Model):
    id: Annotated[str, Field(pattern=_SITE_ID)]
    name: str = Field(min_length=1, max_length=200)
    slug: Annotated[str, Field(pattern=_SLUG)]
    level: Level
    parent: str | None = None
    kind: str | None = None  # Tỉnh, Thành phố, Thị xã, Huyện, Xã, Phường, Thị trấn
    code_2025: str | None = Field(default=None, pattern=_SITE_ID)
    name_2025: str | None = None
    links: list[Link] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    vars: dict[str, Any] = Field(default_factory=dict)

    def link(self, kind: LinkKind | str) -> Link | None:
        """The site's link of this kind (a site has at most one of each)."""
        kind = LinkKind(kind)
        return next((lk for lk in self.links if lk.kind == kind), None)

    @property
    def routers(self) -> list[Device]:
        return [d for d in self.devices if d.is_router]

    @property
    def router(self) -> Device | None:
        """The site's main router (first router device), or None for a site without one."""
        return next(iter(self.routers), None)

    @property
    def hosts(self) -> list[Device]:
        return [d for d in self.devices if not d.is_router]

    @property
    def full_name(self) -> str:
        return f"{self.kind} {self.name}" if self.kind else self.name


class Services(_Model):
    """Province-wide services that templates, playbooks and audits point at."""

    noc_prefix: IPv4Network  # where the NOC manages from: the only source allowed to SSH to devices
    mgmt_prefix: IPv4Network  # the management network every device's mgmt_address lives in
    soc_syslog: IPv4Address
    ntp: list[IPv4Address] = Field(min_length=1)
    dns: list[IPv4Address] = Field(min_length=1)
    meeting_server: IPv4Address | None = None


class LinkDefaults(_Model):
    provider: str | None = None
    bandwidth_mbps: float | None = Field(default=None, gt=0)


class DeviceDefaults(_Model):
    platform: str | None = None
    username: str | None = None
    credentials: CredentialRef | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=600)
    managed: bool | None = None


class Defaults(_Model):
    """Values a site inherits when it does not set them itself (province → district → commune)."""

    links: dict[LinkKind, LinkDefaults] = Field(default_factory=dict)
    devices: dict[Role, DeviceDefaults] = Field(default_factory=dict)
    thresholds: Thresholds | None = None


class ProvinceMeta(_Model):
    id: Annotated[str, Field(pattern=_SITE_ID)]
    name: str
    slug: Annotated[str, Field(pattern=_SLUG)]
    era: Era = Era.LEGACY
    # Today's (2025 map) communes of this province, code -> name, so legacy sites can be viewed by them.
    communes_2025: dict[str, str] = Field(default_factory=dict)


class InventoryData(_Model):
    """The serialisable whole: what `export --format json` writes and `load()` of a .json file reads."""

    province: ProvinceMeta
    services: Services
    defaults: Defaults = Field(default_factory=Defaults)
    level_defaults: dict[Level, Defaults] = Field(default_factory=dict)
    sites: list[Site]
