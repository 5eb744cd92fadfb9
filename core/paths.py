"""Where the gateway keeps everything the user-data writes, and the names of its units: one
declaration each, read by the renderer (userdata/), the verify command (components/), the
lab, `tools/status.py` and the tests."""

from __future__ import annotations

# Scripts
UPDOWN_PATH = "/usr/local/sbin/aws2aliyun-updown"
VERIFY_PATH = "/usr/local/sbin/aws2aliyun-verify"
WATCHDOG_PATH = "/usr/local/sbin/aws2aliyun-watchdog"
LIVENESS_PATH = "/usr/local/sbin/aws2aliyun-liveness"
HA_PATH = "/usr/local/sbin/aws2aliyun-ha"  # a gateway pair's keepalived notify and track script
BGP_HOOK_PATH = "/usr/local/sbin/aws2aliyun-bgp"  # routing: bgp: the liveness verdicts applied to BGP

# Configuration
LINK_ENV_PATH = "/etc/aws2aliyun/link.env"
FIREWALL_PATH = "/etc/aws2aliyun/firewall.nft"
SWANCTL_CONF_PATH = "/etc/swanctl/conf.d/aws2aliyun.conf"
SWANCTL_SECRETS_PATH = "/etc/swanctl/conf.d/aws2aliyun-secrets.conf"
CHARON_CONF_PATH = "/etc/strongswan.d/charon-aws2aliyun.conf"
SYSCTL_PATH = "/etc/sysctl.d/90-aws2aliyun.conf"
KEEPALIVED_CONF_PATH = "/etc/keepalived/keepalived.conf"
FRR_DAEMONS_PATH = "/etc/frr/daemons"  # routing: bgp
FRR_CONF_PATH = "/etc/frr/frr.conf"
# a standby gateway of a pair loads this empty set of connections (aws2aliyun-ha): it initiates nothing
HA_STANDBY_CONF_PATH = "/etc/aws2aliyun/standby-swanctl.conf"
# ...and readies the kernel for these ESP transforms (aws2aliyun-ha: one throwaway SA each)
HA_ESP_ALGORITHMS_PATH = "/etc/aws2aliyun/esp-algorithms"

# State
LIVENESS_STATE_PATH = "/run/aws2aliyun/liveness.json"  # the liveness daemon's view of each tunnel
HA_ROLE_PATH = "/run/aws2aliyun/ha-role"  # a pair's gateway: MASTER, BACKUP, FAULT or STOP (keepalived's word)

# systemd units
UNIT_DIR = "/etc/systemd/system"
FIREWALL_UNIT = "aws2aliyun-firewall.service"
WATCHDOG_SERVICE = "aws2aliyun-watchdog.service"
WATCHDOG_TIMER = "aws2aliyun-watchdog.timer"
LIVENESS_SERVICE = "aws2aliyun-liveness.service"
KEEPALIVED_SERVICE = "keepalived.service"
FRR_SERVICE = "frr.service"
FIREWALL_UNIT_PATH = f"{UNIT_DIR}/{FIREWALL_UNIT}"
WATCHDOG_SERVICE_PATH = f"{UNIT_DIR}/{WATCHDOG_SERVICE}"
WATCHDOG_TIMER_PATH = f"{UNIT_DIR}/{WATCHDOG_TIMER}"
LIVENESS_SERVICE_PATH = f"{UNIT_DIR}/{LIVENESS_SERVICE}"
