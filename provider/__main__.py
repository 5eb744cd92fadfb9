"""The `aws2aliyun` component package's provider: serves `VpnLink` to programs in any language.

Pulumi starts it (PulumiPlugin.yaml) when a program adds the package, to read its schema,
and at every `pulumi preview`/`up` of that program, to construct the component. The schema
is inferred from the typed arguments (components/args.py, generated from core/settings.py)
and the component's annotated outputs (components/link.py).
"""

import sys
from pathlib import Path

# components/, core/ and userdata/ live at the repository root, next to this directory.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.provider.experimental import component_provider_host

from components.link import PACKAGE, VERSION, VpnLink

if __name__ == "__main__":
    component_provider_host(components=[VpnLink], name=PACKAGE, version=VERSION)
