"""`tuner launch --backend slurm|k8s`, pure: the sbatch script and the LeaderWorkerSet made from
the plan of a real report (the 87-GPU `mlperf-llama2-70b` check, tests/data/reports/), checked
by their consumers' own rules: bash parses the script; the manifests validate against the
Kubernetes schemas (kubernetes-validate, offline, strict) and LWS's published CRD schema
(tests/data/k8s/lws-crd-schema.json, trimmed from kubernetes-sigs/lws, origin inside)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from agent.launch.backends import (
    JOB_HEAD_ADDRESS,
    LEADER_ADDRESS,
    k8s_manifests,
    k8s_yaml,
    slurm_script,
)
from agent.launch.plan import LaunchPlan, load_template, make_plan
from tests.test_launch_plan import inv

DATA = Path(__file__).parent / "data"
K8S_VERSION = "1.30.0"


def plan(tp: int = 2, i: Any = None, **kw: Any) -> LaunchPlan:
    return make_plan(
        i or inv(),
        "r.json",
        ["vllm", "serve", "meta-llama/Llama-2-70b-chat-hf"],
        head=None,
        port=29500,
        policy="equal",
        template=load_template("vllm"),
        tp=tp,
        **kw,
    )


def test_slurm_script_exactly_the_usable_nodes(tmp_path: Path) -> None:
    i = inv()
    i.nodes[2].status, i.nodes[2].reason = "excluded", "drained by the operator"
    i.nodes[2].excluded, i.nodes[2].usable = i.nodes[2].usable, []
    p = plan(2, i)
    s = slurm_script(p)
    f = tmp_path / "job.sh"
    f.write_text(s)
    assert subprocess.run(["bash", "-n", str(f)], capture_output=True).returncode == 0
    sbatch = dict(
        line[len("#SBATCH ") :].split("=", 1)
        for line in s.splitlines()
        if line.startswith("#SBATCH --") and "=" in line
    )
    nodes = [n.name for n in p.nodes]
    assert "node03" not in nodes and len(nodes) == 10
    assert sbatch["--nodelist"] == ",".join(nodes) and sbatch["--nodes"] == "10"
    assert sbatch["--gres"] == "gpu:8" and "#SBATCH --exclusive" in s
    assert "# not in the run: node03 (excluded: drained by the operator)" in s
    steps = [shlex.split(line[:-2]) for line in s.splitlines() if line.startswith("srun ")]
    assert len(steps) == 10
    for n, step in zip(p.nodes, steps, strict=True):
        assert f"--nodelist={n.name}" in step
        env = dict(w.split("=", 1) for w in step if w.startswith(("ROCR_", "TUNER_")))
        assert env["ROCR_VISIBLE_DEVICES"] == ",".join(e.mask for e in n.engines)
        assert env["TUNER_DP_START_RANK"] == str(n.dp_start)
        assert step[step.index("vllm") :] == n.argv
        for m in ("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
            assert step[step.index(m) - 1] == "-u"


def test_slurm_script_comment_cannot_become_a_command() -> None:
    p = plan(1)
    p.report = "r.json\nrm -rf /"
    p.excluded_nodes["nodeX"] = "failed: boom\ntouch /tmp/pwned"
    s = slurm_script(p)
    assert not any(line.startswith(("rm ", "touch ")) for line in s.splitlines())


def _lws_schema() -> dict[str, Any]:
    doc = json.loads((DATA / "k8s" / "lws-crd-schema.json").read_text())
    assert "kubernetes-sigs/lws" in doc["origin"] and doc["licence"].startswith("Apache-2.0")
    return doc["schema"]  # type: ignore[no-any-return]


def _pod(template: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**template.get("metadata", {}), "name": name},
        "spec": template["spec"],
    }


@pytest.mark.parametrize("tp", [1, 2, 8])
def test_k8s_manifests_validate(tp: int) -> None:
    p = plan(tp, head_value=LEADER_ADDRESS)
    docs = k8s_manifests(p, "rocm/vllm:latest", "inference")
    assert len(docs) == 1
    lws = docs[0]
    jsonschema.validate(lws, _lws_schema())
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1" and lws["kind"] == "LeaderWorkerSet"
    t = lws["spec"]["leaderWorkerTemplate"]
    assert t["size"] == p.num_nodes
    for which in ("leaderTemplate", "workerTemplate"):
        kubernetes_validate.validate(_pod(t[which], "x"), K8S_VERSION, strict=True)
        c = t[which]["spec"]["containers"][0]
        assert c["resources"]["limits"] == {"amd.com/gpu": 8}
    pinned = t["leaderTemplate"]["spec"]["affinity"]["nodeAffinity"]
    terms = pinned["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [p.head]
    wterms = t["workerTemplate"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert wterms[0]["matchExpressions"][0]["values"] == [n.name for n in p.nodes[1:]]
    head_cmd = t["leaderTemplate"]["spec"]["containers"][0]["command"]
    assert "--data-parallel-address" in head_cmd
    assert head_cmd[head_cmd.index("--data-parallel-address") + 1] == "$(LWS_LEADER_ADDRESS)"
    # the worker's per-node script: sh parses it, one case per worker node
    script = t["workerTemplate"]["spec"]["containers"][0]["command"][2]
    assert subprocess.run(["sh", "-n", "-c", script], capture_output=True).returncode == 0
    assert script.count(") exec env ") == p.num_nodes - 1
    assert k8s_yaml(docs).startswith("apiVersion: leaderworkerset.x-k8s.io/v1")


def test_k8s_worker_script_picks_its_node(tmp_path: Path) -> None:
    """The worker's script, run by sh with NODE_NAME set, execs that node's command with its
    mask (here the command is `env`-printed by a stand-in for vllm)."""
    p = plan(2, head_value=LEADER_ADDRESS)
    t = k8s_manifests(p, "img")[0]["spec"]["leaderWorkerTemplate"]["workerTemplate"]
    script = t["spec"]["containers"][0]["command"][2]
    fake = tmp_path / "vllm"
    fake.write_text('#!/bin/sh\necho "mask=$ROCR_VISIBLE_DEVICES args=$*"\n')
    fake.chmod(0o755)
    n = p.nodes[3]
    r = subprocess.run(
        ["sh", "-c", script, "tuner-node"],
        env={"NODE_NAME": n.name, "PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert f"mask={n.env['ROCR_VISIBLE_DEVICES']}" in r.stdout
    assert f"--data-parallel-start-rank {n.dp_start}" in r.stdout
    r = subprocess.run(
        ["sh", "-c", script, "tuner-node"], env={"NODE_NAME": "node99"}, capture_output=True
    )
    assert r.returncode == 2


@pytest.mark.parametrize("tp", [2, 8])
def test_k8s_job_form_validates(tp: int, tmp_path: Path) -> None:
    """Where LWS is absent: a headless Service, a head Job and an Indexed Job of workers,
    each validated against the Kubernetes schemas (strict); the head's DNS name is the
    Service's; the workers' script picks its node's command."""
    p = plan(tp, head_value=JOB_HEAD_ADDRESS)
    docs = k8s_manifests(p, "rocm/vllm:latest", "inference", form="job")
    for d in docs:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)
    svc, head, workers = docs
    assert [d["kind"] for d in docs] == ["Service", "Job", "Job"]
    name = svc["metadata"]["name"]
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"]
    hspec = head["spec"]["template"]["spec"]
    # the Service selects exactly the head pod, whose DNS name is head.<service>
    assert svc["spec"]["selector"].items() <= head["spec"]["template"]["metadata"]["labels"].items()
    assert (
        not svc["spec"]["selector"].items()
        <= workers["spec"]["template"]["metadata"]["labels"].items()
    )
    assert hspec["hostname"] == "head" and hspec["subdomain"] == name
    env = {e["name"]: e.get("value") for e in hspec["containers"][0]["env"]}
    assert env["TUNER_HEAD_ADDRESS"] == f"head.{name}"
    cmd = hspec["containers"][0]["command"]
    assert cmd[cmd.index("--data-parallel-address") + 1] == "$(TUNER_HEAD_ADDRESS)"
    assert head["spec"]["backoffLimit"] == 0 and hspec["restartPolicy"] == "Never"
    ws = workers["spec"]
    assert ws["completionMode"] == "Indexed"
    assert ws["completions"] == ws["parallelism"] == p.num_nodes - 1
    terms = ws["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [n.name for n in p.nodes[1:]]
    c = ws["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"] == {"amd.com/gpu": 8}
    fake = tmp_path / "vllm"
    fake.write_text('#!/bin/sh\necho "mask=$ROCR_VISIBLE_DEVICES args=$*"\n')
    fake.chmod(0o755)
    n = p.nodes[2]
    r = subprocess.run(
        ["sh", "-c", c["command"][2], "tuner-node"],
        env={"NODE_NAME": n.name, "PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and f"mask={n.env['ROCR_VISIBLE_DEVICES']}" in r.stdout
    assert "--data-parallel-address $(TUNER_HEAD_ADDRESS)" in r.stdout  # the kubelet's to expand
    assert k8s_yaml(docs).count("\n---\n") == 2


def test_k8s_job_form_one_node() -> None:
    i = inv()
    for n in i.nodes[1:]:
        n.status, n.reason, n.excluded, n.usable = "excluded", "t", n.usable, []
    docs = k8s_manifests(plan(8, i, head_value=JOB_HEAD_ADDRESS), "img", form="job")
    assert [d["kind"] for d in docs] == ["Service", "Job"]
