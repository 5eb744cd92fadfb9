"""The gateway ECS's user-data: pure functions from tunnel facts to a #cloud-config."""

from userdata.cloud_config import cloud_config, render
from userdata.model import Bgp, Gateway, HaPair, Tunnel

__all__ = ["Bgp", "Gateway", "HaPair", "Tunnel", "cloud_config", "render"]
