"""Where everything sits inside the VM: a pure function of the plan's inputs.

    awshost --- awsrouter ==(transit)== aws1 / aws2 --- internet --- alirouter --- vSwitch
    (AWS VPC)   (VPC router: one         (AWS-like      (bridge)    (1:1 NAT EIP,   |- ECS eth0
    awshost2 ---  healthy tunnel)         endpoints)                 route entries, |  (root ns)
    (2nd AWS prefix)                                                 DHCP, NAT to   |- alihost
                                                                     QEMU user net)
                                                                         |--- alihost2 (2nd
                                                                              Alibaba prefix)

The root namespace is the ECS; every other box is a network namespace. The ECS's NIC and
the Alibaba router's vSwitch port are two QEMU NICs on one QEMU hub, so the ECS has a real
virtio NIC named eth0, addressed by DHCP like on Alibaba Cloud.

Each side has one host per prefix the plan routes: awshost in the first AWS prefix and
alihost on the vSwitch (in the Alibaba prefix that holds it); every other prefix gets a host
on a small subnet of its own behind its side's router (`HostNet`), as a subnet or vSwitch
in a VPC's secondary CIDR sits behind the VPC's router.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import asdict, dataclass

from lab import mirror
from lab.inputs import LabInputs, Tunnel

ECS_MAC = "52:54:00:1a:00:01"
ALI_LAN_MAC = "52:54:00:1a:00:02"
ALI_WAN_MAC = "52:54:00:1a:00:03"
HOST_MTU = 1500
# The lab's own addresses must not collide with anything the plan uses.
SLIRP_CANDIDATES = ("10.0.2.0/24", "10.254.2.0/24", "192.168.254.0/24", "100.127.254.0/24")
TRANSIT_CANDIDATES = ("10.255.250.0/24", "192.168.250.0/24", "172.31.250.0/24", "100.127.250.0/24")
# Addresses the lab must never use: package downloads leave the VM from this range.
FORBIDDEN = ("203.0.113.0/24",)
PEER_MARKS = (100, 200)
HOST_NET_PREFIXLEN = 28  # an extra host's subnet inside its prefix (the prefix itself when smaller)


def gateway_mac(k: int) -> str:
    """The MAC of the k-th gateway instance created after the first (k >= 1): a replacement
    ECS gets a NIC of its own on a real cloud, so a new MAC (locally administered, unicast)."""
    if not 1 <= k <= 0xFF:
        raise ValueError(f"gateway index {k} out of range 1..255")
    return f"52:54:00:1a:01:{k:02x}"


@dataclass(frozen=True)
class PeerNet:
    number: int
    outside: str
    vgw_inside: str
    cgw_inside: str
    inside_prefix: int
    mark: int
    vti_mtu: int
    transit_peer: str
    transit_router: str


@dataclass(frozen=True)
class GatewayNet:
    """A gateway of a pair in a VM of its own: its NIC's MAC on the vSwitch, the address the
    vSwitch's DHCP gives it, its port on the world VM's hub (`lab.vswitch.port(run_dir, port)`)."""

    number: int
    mac: str
    ip: str
    port: int


@dataclass(frozen=True)
class HostNet:
    """A host for a prefix beyond its side's first: namespace `ns` on a link of its own to
    its side's router, `subnet` (inside `prefix`) addressed router_ip / host_ip."""

    ns: str
    prefix: str
    subnet: str
    router_ip: str
    host_ip: str

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    @property
    def router_if(self) -> str:
        """The router's end of the link (the host's end is its eth0)."""
        return f"h-{self.ns}"


@dataclass(frozen=True)
class Topology:
    ecs_mac: str
    ali_lan_mac: str
    ali_wan_mac: str
    private_ip: str
    vswitch_cidr: str
    vswitch_gw: str
    alihost_ip: str
    ali_prefixes: tuple[str, ...]  # routed by AWS into the VPN
    ali_host_nets: tuple[HostNet, ...]  # the Alibaba prefixes without the vSwitch
    eip: str
    slirp_net: str
    slirp_addr: str
    slirp_gw: str
    slirp_dns: str
    aws_prefixes: tuple[str, ...]  # routed by the Alibaba route entries to the ECS
    awsrouter_ip: str
    awshost_ip: str
    aws_host_nets: tuple[HostNet, ...]  # the AWS prefixes after the first
    peers: tuple[PeerNet, ...]
    host_mtu: int = HOST_MTU
    # A pair (gatewayCount 2): each gateway in a VM of its own on the world VM's vSwitch, the
    # EIP's NAT and the route entries to the HaVip; the world VM's root namespace is then only
    # a bystander on the vSwitch at `private_ip` (a lab address). One gateway: empty, and the
    # world VM's root namespace is the ECS.
    gateways: tuple[GatewayNet, ...] = ()
    havip: str | None = None
    # static: the AWS ends route the Alibaba prefixes into their VTIs, guest/awsrouter-monitor.sh
    # picks the tunnel; bgp: FRR on both AWS ends and the AWS router (lab/bgp.py, guest/frr.sh)
    routing: str = "static"
    ecmp: bool = False  # the AWS side spreads flows over both tunnels (a Transit Gateway)

    @property
    def pair(self) -> bool:
        return bool(self.gateways)

    @property
    def ingress_ip(self) -> str:
        """The EIP's 1:1 NAT target and the route entries' next hop: the HaVip, or the ECS."""
        return self.havip or self.private_ip

    @property
    def vswitch_prefix(self) -> int:
        return ipaddress.ip_network(self.vswitch_cidr).prefixlen

    @property
    def aws_prefixlen(self) -> int:
        """awshost's link: the whole first AWS prefix."""
        return ipaddress.ip_network(self.aws_prefixes[0]).prefixlen

    def ali_hosts(self) -> tuple[tuple[str, str], ...]:
        """(namespace, address) of every Alibaba host, alihost (on the vSwitch) first."""
        return (("alihost", self.alihost_ip), *((h.ns, h.host_ip) for h in self.ali_host_nets))

    def aws_hosts(self) -> tuple[tuple[str, str], ...]:
        """(namespace, address) of every AWS host, awshost (the first AWS prefix) first."""
        return (("awshost", self.awshost_ip), *((h.ns, h.host_ip) for h in self.aws_host_nets))

    def summary(self) -> dict:
        return asdict(self)


class TopologyError(ValueError):
    pass


def _free(candidates: tuple[str, ...], taken: list[ipaddress.IPv4Network], what: str) -> ipaddress.IPv4Network:
    for c in candidates:
        n = ipaddress.IPv4Network(c)
        if not any(n.overlaps(t) for t in taken):
            return n
    raise TopologyError(f"no free {what} network among {', '.join(candidates)}")


def aws_vti_mtu(t: Tunnel) -> int:
    """AWS's NAT-T MTU for the weakest-fitting cipher family it may negotiate (FACTS.md)."""
    mtus = []
    for enc in t.phase2_encryption:
        if "GCM" in enc.upper():
            mtus.append(1438)
        elif any(i.upper() == "SHA2-512" for i in t.phase2_integrity):
            mtus.append(1406)
        else:
            mtus.append(1422)
    return min(mtus) if mtus else 1422


def host_net(ns: str, prefix: str, avoid: list[ipaddress.IPv4Network]) -> HostNet:
    """An extra host's subnet: the first /28 of `prefix` (the prefix itself when smaller)
    clear of `avoid` (the lab's and the plan's other addresses); the router gets its first
    address, the host its tenth (its last in a smaller subnet)."""
    p = ipaddress.IPv4Network(prefix)
    for sub in p.subnets(new_prefix=max(p.prefixlen, HOST_NET_PREFIXLEN)):
        hosts = list(sub.hosts())
        if len(hosts) >= 2 and not any(sub.overlaps(a) for a in avoid):
            return HostNet(ns, str(p), str(sub), str(hosts[0]), str(hosts[min(9, len(hosts) - 1)]))
    raise TopologyError(f"no subnet of {prefix} for {ns} clear of the lab's addresses")


def host_nets(side: str, prefixes: list[str], avoid: list[ipaddress.IPv4Network]) -> tuple[HostNet, ...]:
    """One HostNet per prefix, namespaces {side}host2, {side}host3, ... in prefix order."""
    return tuple(host_net(f"{side}host{k}", p, avoid) for k, p in enumerate(prefixes, 2))


def pairs(t: Topology, direction: str) -> list[tuple[str, str, str, str]]:
    """(client ns, client ip, server ns, server ip) of every Alibaba host x every AWS host,
    clients on the side `direction` starts from (ali_to_aws / aws_to_ali); alihost and
    awshost first."""
    if direction not in ("ali_to_aws", "aws_to_ali"):
        raise ValueError(f"direction {direction!r} is neither ali_to_aws nor aws_to_ali")
    clients, servers = (t.ali_hosts(), t.aws_hosts()) if direction == "ali_to_aws" else (t.aws_hosts(), t.ali_hosts())
    return [(cns, cip, sns, sip) for cns, cip in clients for sns, sip in servers]


def plan_topology(i: LabInputs) -> Topology:
    net, addr = ipaddress.IPv4Network, ipaddress.ip_address  # the lab is IPv4 (the plan validates it)
    vsw = net(i.vswitch_cidr)
    aws = net(i.aws_prefixes[0])
    # Alibaba's vSwitch gateway is the third address from the top (x.x.x.253 in a /24).
    gw = vsw.broadcast_address - 2
    hosts = [h for h in vsw.hosts() if h not in (addr(i.private_ip), gw)]
    if len(hosts) < 12:
        raise TopologyError(f"vSwitch {vsw} is too small for the lab")
    alihost = hosts[9]
    pair_ips = [g.private_ip for g in i.gateways] if i.pair else []
    world_ip = i.private_ip
    if i.havip is not None:
        taken_here = {addr(a) for a in (*pair_ips, i.havip)}
        spare = [h for h in hosts if h not in taken_here]
        alihost = spare[9]
        world_ip = str(spare[10])  # the world VM's root namespace: a bystander on the vSwitch
    aws_hosts = list(_first_hosts(aws, 12))
    if len(aws_hosts) < 11:
        raise TopologyError(f"AWS prefix {aws} is too small for the lab")

    taken = [net(c) for c in (*i.ali_prefixes, *i.aws_prefixes, *FORBIDDEN)]
    taken += [net(t.inside_cidr) for t in i.tunnels]
    public = [net(f"{a}/32") for a in (i.eip, *(t.outside_address for t in i.tunnels))]
    clash = [str(n) for n in taken + public if addr(mirror.ADDRESS) in n]
    if clash:
        raise TopologyError(
            f"{', '.join(clash)} holds the image's package mirror address {mirror.ADDRESS} (lab/mirror.py)"
        )
    slirp = _free(SLIRP_CANDIDATES, taken + public, "QEMU user-net")
    transit = _free(TRANSIT_CANDIDATES, [*taken, *public, slirp], "transit")
    transit30 = list(transit.subnets(new_prefix=30))
    peers = []
    for t, mark, tn in zip(i.tunnels, PEER_MARKS, transit30, strict=False):
        th = list(tn.hosts())
        peers.append(
            PeerNet(
                number=t.number,
                outside=t.outside_address,
                vgw_inside=t.vgw_inside_address,
                cgw_inside=t.cgw_inside_address,
                inside_prefix=net(t.inside_cidr).prefixlen,
                mark=mark,
                vti_mtu=aws_vti_mtu(t),
                transit_peer=str(th[0]),
                transit_router=str(th[1]),
            )
        )
    # the extra hosts' subnets lie inside plan prefixes: clear of everything else there
    avoid = [vsw, *public, *(net(c) for c in FORBIDDEN), *(net(t.inside_cidr) for t in i.tunnels)]
    return Topology(
        ecs_mac=ECS_MAC,
        ali_lan_mac=ALI_LAN_MAC,
        ali_wan_mac=ALI_WAN_MAC,
        private_ip=world_ip if i.pair else i.private_ip,
        vswitch_cidr=str(vsw),
        vswitch_gw=str(gw),
        alihost_ip=str(alihost),
        ali_prefixes=i.ali_prefixes,
        ali_host_nets=host_nets("ali", [p for p in i.ali_prefixes if not vsw.subnet_of(net(p))], avoid),
        eip=i.eip,
        slirp_net=str(slirp),
        slirp_addr=str(slirp.network_address + 15),
        slirp_gw=str(slirp.network_address + 2),
        slirp_dns=str(slirp.network_address + 3),
        aws_prefixes=i.aws_prefixes,
        awsrouter_ip=str(aws_hosts[0]),
        awshost_ip=str(aws_hosts[9]),
        aws_host_nets=host_nets("aws", list(i.aws_prefixes[1:]), avoid),
        peers=tuple(peers),
        gateways=tuple(GatewayNet(g.number, gateway_mac(g.number), g.private_ip, g.number) for g in i.gateways)
        if i.pair
        else (),
        havip=i.havip,
        routing=i.routing,
        ecmp=bool(i.bgp and i.bgp.ecmp),
    )


def _first_hosts(n: ipaddress.IPv4Network, count: int):
    for k, h in enumerate(n.hosts()):
        if k >= count:
            return
        yield h


def _host_nets_env(nets: tuple[HostNet, ...]) -> str:
    """`NS,ROUTER_IF,ROUTER_IP,HOST_IP,PREFIXLEN` per extra host, space-separated (guest/boot.sh)."""
    return " ".join(f"{h.ns},{h.router_if},{h.router_ip},{h.host_ip},{h.prefixlen}" for h in nets)


def render_env(t: Topology) -> str:
    """/run/lab/lab.env for guest/boot.sh (shell-sourced, values quoted)."""
    v: dict[str, object] = {
        "ECS_MAC": t.ecs_mac,
        "ALI_LAN_MAC": t.ali_lan_mac,
        "ALI_WAN_MAC": t.ali_wan_mac,
        "PRIVATE_IP": t.private_ip,
        "INGRESS_IP": t.ingress_ip,
        # the vSwitch's DHCP: MAC,address of every instance (the world VM's root namespace first)
        "DHCP_HOSTS": " ".join([f"{t.ecs_mac},{t.private_ip}", *(f"{g.mac},{g.ip}" for g in t.gateways)]),
        "VSW_CIDR": t.vswitch_cidr,
        "VSW_PREFIX": t.vswitch_prefix,
        "VSW_NETMASK": str(ipaddress.ip_network(t.vswitch_cidr).netmask),
        "VSW_GW": t.vswitch_gw,
        "ALIHOST_IP": t.alihost_ip,
        "ALI_PREFIXES": " ".join(t.ali_prefixes),
        "ALI_HOST_NETS": _host_nets_env(t.ali_host_nets),
        "EIP": t.eip,
        "SLIRP_ADDR": t.slirp_addr,
        "SLIRP_PREFIX": ipaddress.ip_network(t.slirp_net).prefixlen,
        "SLIRP_GW": t.slirp_gw,
        "SLIRP_DNS": t.slirp_dns,
        "AWS_PREFIXES": " ".join(t.aws_prefixes),
        "AWS_PREFIXLEN": t.aws_prefixlen,
        "AWSRTR_IP": t.awsrouter_ip,
        "AWSHOST_IP": t.awshost_ip,
        "AWS_HOST_NETS": _host_nets_env(t.aws_host_nets),
        "HOST_MTU": t.host_mtu,
        "ROUTING": t.routing,
        "ECMP": "yes" if t.ecmp else "no",
    }
    for p in t.peers:
        k = f"AWS{p.number}_"
        v.update(
            {
                k + "ADDR": p.outside,
                k + "VGW_INSIDE": p.vgw_inside,
                k + "INSIDE_PREFIX": p.inside_prefix,
                k + "MARK": p.mark,
                k + "VTI_MTU": p.vti_mtu,
                k + "TRANSIT": p.transit_peer,
                k + "TRANSIT_RTR": p.transit_router,
            }
        )
    lines = ["# generated by lab/topology.py"] + [f"{k}={shlex.quote(str(x))}" for k, x in v.items()]
    return "\n".join(lines) + "\n"
