"""Policy pack aws2aliyun-vpc-security (Pulumi CrossGuard).

    pulumi preview --policy-pack policy
    pulumi preview --policy-pack policy --policy-pack-config policy/config.legacy.json   # legacy stacks

The Pulumi CLI starts this file as `python -u -m pulumi.policy <engine address> .` in this
directory, with the virtualenv of PulumiPolicy.yaml; PolicyPack then serves the analyzer
gRPC protocol and prints its port on stdout. The checks are in rules.py (pure functions),
the policies, their levels and the legacy downgrade in policies.py.
"""

from policies import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="aws2aliyun-vpc-security",
    description="Security baseline of the AWS <-> Alibaba Cloud site-to-site VPN: no ingress from the "
    "internet, no DH group 2 / SHA1 on the tunnels (advisory with the legacy profile), ECS metadata "
    "only with session tokens, tunnel logs on.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
