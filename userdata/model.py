"""What the gateway's configuration is rendered from: plain values, no Pulumi."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from core.crypto import CryptoProfile

# One mark (= VTI key) and route metric per tunnel; tunnel 1 is preferred (lower metric).
TUNNEL_MARKS = (100, 200)
TUNNEL_METRICS = (100, 200)
VTI_NAMES = ("Tunnel1", "Tunnel2")
# The ECS's one NIC (Alibaba's Debian images, and the lab's gateway VMs).
GATEWAY_NIC = "eth0"


@dataclass(frozen=True)
class Tunnel:
    """One AWS tunnel as the VPN connection reports it, seen from the ECS."""

    number: int  # 1 or 2
    outside_address: str  # AWS's public endpoint of this tunnel
    inside_cidr: str  # the /30
    cgw_inside_address: str  # our end of the VTI
    vgw_inside_address: str  # AWS's end
    preshared_key: str

    @property
    def name(self) -> str:
        return f"tunnel{self.number}"

    @property
    def vti(self) -> str:
        return VTI_NAMES[self.number - 1]

    @property
    def mark(self) -> int:
        return TUNNEL_MARKS[self.number - 1]

    @property
    def metric(self) -> int:
        return TUNNEL_METRICS[self.number - 1]

    @property
    def cgw_inside_interface(self) -> str:
        """Our inside address with the /30's prefix, as `ip addr` takes it."""
        prefix = ipaddress.ip_network(self.inside_cidr).prefixlen
        return f"{self.cgw_inside_address}/{prefix}"


@dataclass(frozen=True)
class HaPair:
    """This gateway's place in a pair behind a HaVip (gatewayCount 2)."""

    number: int  # 1 or 2: which of the pair this one is
    addresses: tuple[str, str]  # both gateways' private addresses, gateway 1 first
    vip: str  # the HaVip: the EIP's and the route entries' target, held by the active gateway
    prefixlen: int  # the vSwitch's
    vrrp_password: str  # keepalived's VRRP authentication (8 characters; a secret)

    @property
    def self_ip(self) -> str:
        return self.addresses[self.number - 1]

    @property
    def peer_ip(self) -> str:
        return self.addresses[2 - self.number]


@dataclass(frozen=True)
class Bgp:
    """Dynamic routing: a BGP session over each tunnel to AWS's inside address."""

    asn: int  # ours, the customer gateway's
    # behind a Transit Gateway: both tunnels carry traffic (ECMP); else tunnel 1 is preferred
    ecmp: bool = False


@dataclass(frozen=True)
class Gateway:
    """Everything the ECS's cloud-config depends on."""

    eip: str  # public address: our IKE identity
    # The ECS's only address, IKE binds here (1:1 NAT to the EIP); None when Alibaba assigns
    # it (an existing vSwitch): charon then binds to the one address the ECS has.
    private_ip: str | None
    aws_prefixes: tuple[str, ...]  # reachable on the AWS side: routed over the tunnels
    ali_prefixes: tuple[str, ...]  # reachable on the Alibaba side: forwarded to AWS
    crypto: CryptoProfile
    tunnels: tuple[Tunnel, Tunnel]
    ssh_allowed_cidrs: tuple[str, ...] = ()
    # A virtual private gateway answers pings on its inside addresses (the liveness target);
    # for a Transit Gateway that is not established here, so a tunnel that has never answered
    # is no verify problem there (the routes then follow the SAs, as without liveness).
    aws_end_answers: bool = True
    ha: HaPair | None = None  # one of a pair behind a HaVip; None: the only gateway
    aws_dpd_timeout_s: int = 30  # the AWS end's DPD timeout (dpdTimeoutSeconds)
    bgp: Bgp | None = None  # routing: bgp; None: static routes

    @property
    def ike_address(self) -> str | None:
        """Where IKE binds: the HaVip on a pair (the EIP is bound to it, and only the active
        gateway holds it), else the ECS's own address."""
        return self.ha.vip if self.ha is not None else self.private_ip
