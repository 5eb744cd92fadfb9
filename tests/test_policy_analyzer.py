"""The policy pack started the way the Pulumi CLI starts a Python pack, spoken to over the
analyzer gRPC protocol the way the CLI speaks to it.

The CLI reads PulumiPolicy.yaml, runs `<virtualenv>/bin/python -u -m pulumi.policy <engine
address> .` in the pack's directory (the `pulumi-analyzer-policy-python` shim) with the
stack in PULUMI_* variables, reads the port the pack prints, then calls Handshake (a pack
may not implement it), ConfigureStack, GetAnalyzerInfo, GetPluginInfo, Configure (each
policy's level and config, schema defaults filled in) and Analyze per resource.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc

from tests.conftest import plan_for

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "policy"
PACK_NAME = "aws2aliyun-vpc-security"
STARTUP_TIMEOUT_S = 20
RPC_TIMEOUT_S = 10
# What the engine sends for a value it cannot know during a preview (KeepUnknowns).
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"

SG_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
ECS = "alicloud:ecs/instance:Instance"
VPN = "aws:ec2/vpnConnection:VpnConnection"


class _Engine(engine_pb2_grpc.EngineServicer):
    """Stands in for the CLI's engine endpoint, whose address the pack gets as an argument."""

    def __init__(self) -> None:
        self.logs: list[str] = []

    def Log(self, request, context):
        self.logs.append(request.message)
        return empty_pb2.Empty()


class CliLikeAnalyzer:
    """The running pack and a client that calls it in the CLI's order."""

    def __init__(self, proc: subprocess.Popen, channel: grpc.Channel, stderr_path: Path) -> None:
        self.proc = proc
        self.channel = channel
        self.stub = analyzer_pb2_grpc.AnalyzerStub(channel)
        self.stderr_path = stderr_path

    def info(self) -> analyzer_pb2.AnalyzerInfo:
        return self.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S)

    def configure(self, user_config: dict[str, Any] | None = None) -> None:
        """What `--policy-pack-config FILE` leads to: every policy with its level and schema
        defaults, then the file's values on top (the CLI's ReconcilePolicyPackConfig)."""
        config: dict[str, tuple[int, dict[str, Any]]] = {}
        for p in self.info().policies:
            schema = json_format.MessageToDict(p.configSchema.properties) if p.HasField("configSchema") else {}
            defaults = {k: v["default"] for k, v in schema.items() if "default" in v}
            config[p.name] = (p.enforcementLevel, defaults)
        levels = {"advisory": analyzer_pb2.ADVISORY, "mandatory": analyzer_pb2.MANDATORY}
        for name, given in (user_config or {}).items():
            level, props = config[name]
            given = dict(given)
            if "enforcementLevel" in given:
                level = levels[given.pop("enforcementLevel")]
            config[name] = (level, props | given)
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, props) in config.items():
            request.policyConfig[name].enforcementLevel = level
            request.policyConfig[name].properties.update(props)
        self.stub.Configure(request, timeout=RPC_TIMEOUT_S)

    def analyze(
        self, resource: dict[str, Any], props: dict[str, Any] | None = None
    ) -> list[analyzer_pb2.AnalyzeDiagnostic]:
        properties = struct_pb2.Struct()
        properties.update(resource["inputs"] if props is None else props)
        request = analyzer_pb2.AnalyzeRequest(
            type=resource["type"],
            urn=resource["urn"],
            name=resource["name"],
            properties=properties,
            options=analyzer_pb2.AnalyzerResourceOptions(parent=resource.get("parent") or ""),
        )
        return list(self.stub.Analyze(request, timeout=RPC_TIMEOUT_S).diagnostics)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def _wait_for_port(proc: subprocess.Popen, stderr_path: Path) -> int:
    """The first line the pack prints is its port; anything else is a failure to start."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                line = proc.stdout.readline().decode().strip()
                if line.isdigit():
                    return int(line)
                raise AssertionError(
                    f"the pack printed {line!r} instead of its port; stderr:\n{stderr_path.read_text()}"
                )
            if proc.poll() is not None:
                raise AssertionError(f"the pack exited with {proc.returncode}; stderr:\n{stderr_path.read_text()}")
        raise AssertionError(f"the pack printed no port within {STARTUP_TIMEOUT_S} s")
    finally:
        sel.close()


@pytest.fixture(scope="module")
def dev_resources() -> list[dict[str, Any]]:
    return plan_for().to_json(show_secrets=False)["resources"]


@pytest.fixture(scope="module")
def analyzer(dev_resources) -> Iterator[CliLikeAnalyzer]:
    engine_servicer = _Engine()
    engine = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(engine_servicer, engine)
    engine_port = engine.add_insecure_port("127.0.0.1:0")
    engine.start()

    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    virtualenv = (POLICY_DIR / project["runtime"]["options"]["virtualenv"]).resolve()
    python = virtualenv / "bin" / "python"
    assert python.exists(), f"PulumiPolicy.yaml's virtualenv {virtualenv} has no bin/python"

    stack_config = {k: str(v) for k, v in yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"].items()}
    env = dict(os.environ)
    env.pop("PYTHONHOME", None)
    env.update(
        {
            "PATH": f"{virtualenv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "PULUMI_CONFIG": json.dumps(stack_config),
            "PULUMI_PROJECT": "aws2aliyun-vpc",
            "PULUMI_STACK": "dev",
            "PULUMI_DRY_RUN": "true",
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        stderr_path = Path(tmp) / "stderr"
        with stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(
                [str(python), "-u", "-m", "pulumi.policy", f"127.0.0.1:{engine_port}", "."],
                cwd=POLICY_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        channel = None
        try:
            port = _wait_for_port(proc, stderr_path)
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT_S)
            client = CliLikeAnalyzer(proc, channel, stderr_path)
            # The CLI's opening calls, in its order.
            try:
                client.stub.Handshake(
                    analyzer_pb2.AnalyzerHandshakeRequest(
                        engine_address=f"127.0.0.1:{engine_port}",
                        root_directory=str(POLICY_DIR),
                        program_directory=str(POLICY_DIR),
                    ),
                    timeout=RPC_TIMEOUT_S,
                )
            except grpc.RpcError as e:
                # The CLI goes on when a pack does not implement Handshake; so must we.
                assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e
            client.stub.ConfigureStack(
                analyzer_pb2.AnalyzerStackConfigureRequest(
                    stack="dev",
                    project="aws2aliyun-vpc",
                    organization="organization",
                    dry_run=True,
                    config=stack_config,
                    tags={"pulumi:project": "aws2aliyun-vpc"},
                ),
                timeout=RPC_TIMEOUT_S,
            )
            client.configure()
            yield client
        finally:
            if channel is not None:
                channel.close()
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
            engine.stop(0)


def _resource(resources: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    return next(r for r in resources if r["type"] == type_)


def _by_policy(diagnostics) -> dict[str, list[analyzer_pb2.AnalyzeDiagnostic]]:
    out: dict[str, list[analyzer_pb2.AnalyzeDiagnostic]] = {}
    for d in diagnostics:
        out.setdefault(d.policyName, []).append(d)
    return out


def test_policy_analyzer_serves_info_and_reports_a_violation(analyzer, dev_resources):
    info = analyzer.info()
    assert info.name == PACK_NAME
    assert info.supportsConfig
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert levels == {
        "no-ingress-from-internet": analyzer_pb2.MANDATORY,
        "vpn-tunnel-no-dh2-sha1": analyzer_pb2.MANDATORY,
        "vpn-tunnel-legacy-crypto": analyzer_pb2.ADVISORY,
        "ecs-metadata-tokens-required": analyzer_pb2.MANDATORY,
        "vpn-tunnel-logging-enabled": analyzer_pb2.MANDATORY,
    }
    assert analyzer.stub.GetPluginInfo(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S).version

    rule = _resource(dev_resources, SG_RULE)
    diagnostics = analyzer.analyze(rule, rule["inputs"] | {"cidrIp": "0.0.0.0/0"})
    assert len(diagnostics) == 1, analyzer.stderr()
    [d] = diagnostics
    assert d.policyName == "no-ingress-from-internet"
    assert d.policyPackName == PACK_NAME
    assert d.enforcementLevel == analyzer_pb2.MANDATORY
    assert "cidrIp is 0.0.0.0/0: ingress from the whole internet" in d.message
    assert "allowed: a source narrower than /0" in d.message


def test_policy_analyzer_finds_nothing_in_the_dev_plan(analyzer, dev_resources):
    analyzer.configure()
    found = {r["urn"]: [d.message for d in analyzer.analyze(r)] for r in dev_resources}
    assert {urn: msgs for urn, msgs in found.items() if msgs} == {}
    assert len(found) == len(dev_resources) > 20


def test_policy_analyzer_reports_each_policy(analyzer, dev_resources):
    analyzer.configure()
    ecs = _resource(dev_resources, ECS)
    no_tokens = {k: v for k, v in ecs["inputs"].items() if k != "httpTokens"}
    [d] = analyzer.analyze(ecs, no_tokens)
    assert (d.policyName, d.enforcementLevel) == ("ecs-metadata-tokens-required", analyzer_pb2.MANDATORY)
    assert "httpTokens is not set" in d.message

    vpn = _resource(dev_resources, VPN)
    props = json.loads(json.dumps(vpn["inputs"]))
    props["tunnel2LogOptions"]["cloudwatchLogOptions"]["logEnabled"] = False
    props["tunnel1Phase1DhGroupNumbers"] = [2, 14]
    found = _by_policy(analyzer.analyze(vpn, props))
    assert set(found) == {"vpn-tunnel-logging-enabled", "vpn-tunnel-no-dh2-sha1"}
    assert (
        "tunnel2LogOptions.cloudwatchLogOptions.logEnabled is False" in found["vpn-tunnel-logging-enabled"][0].message
    )
    [crypto] = found["vpn-tunnel-no-dh2-sha1"]
    assert crypto.enforcementLevel == analyzer_pb2.MANDATORY
    assert "tunnel1Phase1DhGroupNumbers is [2, 14], which includes DH group 2" in crypto.message


def test_policy_analyzer_legacy_profile_downgrades_crypto_to_advisory(analyzer):
    legacy_vpn = _resource(plan_for(cryptoProfile="legacy").to_json(show_secrets=False)["resources"], VPN)

    analyzer.configure()  # defaults: cryptoProfile=modern
    strict = _by_policy(analyzer.analyze(legacy_vpn))
    assert set(strict) == {"vpn-tunnel-no-dh2-sha1"}
    assert len(strict["vpn-tunnel-no-dh2-sha1"]) == 8
    assert {d.enforcementLevel for d in strict["vpn-tunnel-no-dh2-sha1"]} == {analyzer_pb2.MANDATORY}

    analyzer.configure(json.loads((POLICY_DIR / "config.legacy.json").read_text()))
    try:
        relaxed = _by_policy(analyzer.analyze(legacy_vpn))
        assert set(relaxed) == {"vpn-tunnel-legacy-crypto"}
        assert len(relaxed["vpn-tunnel-legacy-crypto"]) == 8
        assert {d.enforcementLevel for d in relaxed["vpn-tunnel-legacy-crypto"]} == {analyzer_pb2.ADVISORY}
        assert all("SHA1" in d.message or "DH group 2" in d.message for d in relaxed["vpn-tunnel-legacy-crypto"])
    finally:
        analyzer.configure()


def test_policy_analyzer_preview_unknowns_are_not_violations(analyzer, dev_resources):
    analyzer.configure()
    rule = _resource(dev_resources, SG_RULE)
    assert analyzer.analyze(rule, rule["inputs"] | {"cidrIp": UNKNOWN_STRING}) == []
    ecs = _resource(dev_resources, ECS)
    assert analyzer.analyze(ecs, ecs["inputs"] | {"httpTokens": UNKNOWN_STRING}) == []
    vpn = _resource(dev_resources, VPN)
    props = json.loads(json.dumps(vpn["inputs"]))
    for n in (1, 2):
        props[f"tunnel{n}LogOptions"]["cloudwatchLogOptions"]["logGroupArn"] = UNKNOWN_STRING
    props["tunnel2LogOptions"]["cloudwatchLogOptions"]["logEnabled"] = UNKNOWN_BOOL
    props["customerGatewayId"] = UNKNOWN_STRING
    # No violation, and no "can't run policy during preview" warning either.
    assert [d.message for d in analyzer.analyze(vpn, props)] == []
