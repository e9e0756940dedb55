"""The Ansible collection tuner.tuner: built from playbooks/ by scripts/collection.sh, checked
with ansible-test's offline sanity tests and ansible-doc, and used from a site's own
playbook (FQCN module names, the collection installed with ansible-galaxy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import REPO

from agent.sim import nicsim
from agent.sim.nodetree import Topology, build_node

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow  # ansible-test sanity, ansible-doc, a playbook run


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collection")
    r = subprocess.run(
        [str(REPO / "scripts/collection.sh"), "--sanity", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "ansible-doc tuner.tuner.tuner_nic: 5 options" in r.stdout
    (tarball,) = out.glob("tuner-tuner-*.tar.gz")
    return tarball


def test_built_from_playbooks(built: Path) -> None:
    with tarfile.open(built) as t:
        names = set(t.getnames())
        manifest = json.load(t.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
        nic_mod = t.extractfile("plugins/modules/tuner_nic.py").read().decode()  # type: ignore[union-attr]
        play = t.extractfile("playbooks/nic.yml").read().decode()  # type: ignore[union-attr]
    assert manifest["collection_info"]["namespace"] == "tuner"
    mods = {n.split("/")[-1] for n in names if n.startswith("plugins/modules/")}
    want = {p.name for p in (REPO / "playbooks/library").glob("tuner_*.py")}
    assert mods == want - {"tuner_sim_reboot.py"}  # the simulator's module stays out
    utils = {n.split("/")[-1] for n in names if n.startswith("plugins/module_utils/tuner_")}
    assert utils == {p.name for p in (REPO / "playbooks/module_utils").glob("tuner_*.py")}
    # the same code as the repository's, imports pointed at the collection
    assert "ansible_collections.tuner.tuner.plugins.module_utils.tuner_nic import" in nic_mod
    assert "ansible.module_utils.tuner_" not in nic_mod
    assert "tuner.tuner.tuner_nic:" in play


def test_site_playbook_calls_the_modules(built: Path, tmp_path: Path) -> None:
    coll = tmp_path / "collections"
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", str(built), "-p", str(coll)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    root = tmp_path / "node"
    build_node(root, "n1", Topology(cores_per_socket=4))
    nicsim.install(root, "connectx-7")
    before = (root / "sys/class/net/rdma0/mtu").read_text()
    book = tmp_path / "site.yml"
    nic = {"model": "connectx-7", "mtu": 9000, "irq_affinity": "numa"}
    book.write_text(
        json.dumps(
            [
                {
                    "hosts": "all",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "tuner.tuner.tuner_nic": {
                                "mode": "apply",
                                "root": str(root),
                                "sim": True,
                                "settings": nic,
                            },
                            "register": "applied",
                        },
                        {
                            "tuner.tuner.tuner_nic": {
                                "mode": "verify",
                                "root": str(root),
                                "sim": True,
                                "settings": nic,
                            },
                            "register": "checked",
                        },
                        {"tuner.tuner.tuner_os": {"mode": "verify", "root": str(root)}},
                        {
                            "tuner.tuner.tuner_nic": {
                                "mode": "rollback",
                                "root": str(root),
                                "sim": True,
                            }
                        },
                        {"debug": {"msg": "{{ applied.facts.status }} {{ checked.facts.status }}"}},
                    ],
                }
            ]
        )
    )
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(coll),
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_STDOUT_CALLBACK": "default",
    }
    r = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(book),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert '"msg": "changed ok"' in r.stdout
    assert (root / "sys/class/net/rdma0/mtu").read_text() == before  # rolled back
