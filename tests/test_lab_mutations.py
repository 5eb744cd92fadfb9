"""The mutations that share one VM (no VM here): what each must rewrite on a gateway booted
from the one before, and what cannot be applied by a reboot; `--mutate A,B,C`'s stages and
report paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab import mutations
from lab.inputs import from_plan
from lab.options import Options
from lab.report import report_path
from lab.run import stages
from tests.test_lab_units import make_plan
from userdata.cloud_config import shipped_text

GOLDEN = Path(__file__).parent / "golden" / "cloud-config.modern.yaml"
USER_DATA = GOLDEN.read_text()


def mutated(name: str) -> str:
    return mutations.apply(name, USER_DATA, from_plan(make_plan()))


def test_the_golden_user_data_is_what_the_mutations_break():
    assert USER_DATA.startswith("#cloud-config\n")
    for name in mutations.MUTATIONS:
        assert mutated(name) != USER_DATA


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("wrong-mark", "/etc/swanctl/conf.d/aws2aliyun.conf"),
        ("wrong-identity", "/etc/swanctl/conf.d/aws2aliyun.conf"),
        ("no-mss-clamp", "/usr/local/sbin/aws2aliyun-updown"),
    ],
)
def test_each_mutation_changes_one_file_and_only_its_content(name, path):
    files = mutations.changed_files(USER_DATA, mutated(name))
    assert [f["path"] for f in files] == [path]
    new = next(f for f in yaml.safe_load(mutated(name))["write_files"] if f["path"] == path)
    # owner and mode as the user-data has them; a packed file (the updown script) written as text
    assert {k: v for k, v in files[0].items() if k != "content"} == {
        k: v for k, v in new.items() if k not in ("content", "encoding")
    }
    assert files[0]["content"] == shipped_text(new)
    assert "encoding" not in files[0]


def test_from_one_mutation_to_the_next_the_first_is_undone():
    """A gateway booted with no-mss-clamp, given wrong-mark's files: the updown script comes
    back whole, swanctl.conf gets the wrong mark."""
    files = {f["path"]: f["content"] for f in mutations.changed_files(mutated("no-mss-clamp"), mutated("wrong-mark"))}
    assert set(files) == {"/usr/local/sbin/aws2aliyun-updown", "/etc/swanctl/conf.d/aws2aliyun.conf"}
    assert "-j TCPMSS" in files["/usr/local/sbin/aws2aliyun-updown"]
    assert "mark_in = 101" in files["/etc/swanctl/conf.d/aws2aliyun.conf"]


def test_anything_but_file_contents_cannot_be_applied_by_a_reboot():
    cfg = yaml.safe_load(USER_DATA)
    cfg["runcmd"] = [*cfg["runcmd"], ["true"]]
    other_cmd = "#cloud-config\n" + yaml.safe_dump(cfg)
    cfg = yaml.safe_load(USER_DATA)
    cfg["write_files"][0]["permissions"] = "0600"
    other_mode = "#cloud-config\n" + yaml.safe_dump(cfg)
    with pytest.raises(mutations.MutationError, match="runcmd"):
        mutations.changed_files(USER_DATA, other_cmd)
    with pytest.raises(mutations.MutationError, match="paths, owners or modes"):
        mutations.changed_files(USER_DATA, other_mode)
    with pytest.raises(mutations.MutationError, match="not a #cloud-config"):
        mutations.changed_files(USER_DATA, "#!/bin/sh\necho hi\n")


def test_mutation_names():
    assert mutations.parse_names(" wrong-mark, no-mss-clamp ") == ("wrong-mark", "no-mss-clamp")
    for bad in ("", "wrong-mark,nonsense", "wrong-mark,wrong-mark"):
        with pytest.raises(mutations.MutationError):
            mutations.parse_names(bad)


def test_stages_of_a_run():
    one = Options(config_file=Path("Pulumi.dev.yaml"), mutate="wrong-mark")
    assert stages(one) == [one]  # one mutation: every check unless --only, as before
    chain = Options(config_file=Path("Pulumi.dev.yaml"), mutate="no-mss-clamp", then_mutate=("wrong-mark",))
    got = stages(chain)
    assert [(s.mutate, s.only, s.then_mutate) for s in got] == [
        ("no-mss-clamp", mutations.MUTATIONS["no-mss-clamp"].checks, ()),
        ("wrong-mark", mutations.MUTATIONS["wrong-mark"].checks, ()),
    ]
    forced = stages(Options(config_file=Path("x"), mutate="wrong-mark", then_mutate=("no-mss-clamp",), only=("a",)))
    assert [s.only for s in forced] == [("a",), ("a",)]


def test_each_mutation_of_a_chain_has_its_report():
    assert report_path(Path("r/m.json"), "wrong-mark") == Path("r/m.wrong-mark.json")
    assert report_path(Path("r/m.json"), None) == Path("r/m.json")
    assert report_path(None, "wrong-mark") is None
