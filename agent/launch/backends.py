"""The launch plan rendered for the schedulers the field runs jobs on, pure: a Slurm batch
script and Kubernetes manifests (docs/launch.md, "Backends"). Nothing here touches a host.

Every value in them came through the plan: node names, addresses and GPU UUIDs were checked
there (plan.check_identities) and every shell word is quoted with shlex.quote; the manifests
are YAML written by a YAML library (no text templating).
"""

from __future__ import annotations

import hashlib
import shlex
import time
from typing import Any

import yaml

from agent.launch.plan import OTHER_MASKS, LaunchPlan, NodePlan, gc_paused

LWS_API = "leaderworkerset.x-k8s.io/v1"
GPU_RESOURCE = "amd.com/gpu"  # the AMD GPU device plugin's resource (ROCm/k8s-device-plugin)
HOSTNAME_LABEL = "kubernetes.io/hostname"
LEADER_ADDRESS = "$(LWS_LEADER_ADDRESS)"  # set by LWS in every pod; the kubelet expands it
# the Job form: set by tuner in every container (the head pod's DNS name under the headless
# Service); the kubelet expands it in command and args like LWS's
JOB_HEAD_ENV = "TUNER_HEAD_ADDRESS"
JOB_HEAD_ADDRESS = f"$({JOB_HEAD_ENV})"
JOB_HEAD_HOSTNAME = "head"
K8S_FORMS = ("lws", "job")
COMPONENT = "app.kubernetes.io/component"


def head_value(form: str) -> str:
    """What {head} becomes in a k8s form's commands."""
    return LEADER_ADDRESS if form == "lws" else JOB_HEAD_ADDRESS


def _env_words(n: NodePlan) -> list[str]:
    unset = [w for m in OTHER_MASKS for w in ("-u", m)]
    return ["env", *unset, *(f"{k}={v}" for k, v in n.env.items()), *n.argv]


def _gpus_per_node(plan: LaunchPlan) -> int:
    """GPUs asked of the scheduler per node: every GPU the node has (the mask then picks the
    engines' GPUs); the report's installed count, at least the GPUs in the run."""
    return max(max(n.installed or 0, n.local_gpus) for n in plan.nodes)


# ------------------------------------------------------------------------------------ Slurm


def _comment(text: str) -> str:
    """Text fit for one comment line: no control character (a newline would end the comment
    and make the rest a command)."""
    return "".join(c if c.isprintable() else "?" for c in text)[:300]


@gc_paused
def slurm_script(plan: LaunchPlan, job_name: str = "tuner-launch") -> str:
    """An sbatch script over exactly the nodes of the run: one srun step per node, pinned to
    it (--nodelist), with that node's environment (mask, ranks) and command. The first step
    that fails ends the others (and so the job); `scancel` ends them all."""
    names = [n.name for n in plan.nodes]
    gpus = _gpus_per_node(plan)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lines = [
        "#!/bin/bash",
        f"# tuner launch --backend slurm: {len(names)} nodes, {plan.data_parallel_size} engines "
        f"of TP {plan.tp} x PP {plan.pp}, world size {plan.world_size}, head {plan.head}",
        f"# from {_comment(plan.report)}, written {stamp}",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --nodes={len(names)}",
        f"#SBATCH --nodelist={','.join(names)}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gres=gpu:{gpus}",
        "#SBATCH --exclusive",
    ]
    for name, why in plan.excluded_nodes.items():
        lines.append(f"# not in the run: {name} ({_comment(why)})")
    lines += [
        "set -u",
        "pids=()",
    ]
    for n in plan.nodes:
        step = [
            "srun",
            "--nodes=1",
            "--ntasks=1",
            f"--nodelist={n.name}",
            f"--gres=gpu:{gpus}",
            f"--job-name={job_name}-{n.name}",
            *_env_words(n),
        ]
        lines.append(f"# {n.name}: {n.role} rank {n.rank}, {len(n.engines)} engines")
        lines.append(" ".join(shlex.quote(w) for w in step) + " &")
        lines.append("pids+=($!)")
    lines += [
        "rc=0",
        'for _ in "${pids[@]}"; do',
        "  if ! wait -n; then",
        '    [ "$rc" = 0 ] && echo "tuner: a node\'s step failed: stopping the others" >&2',
        '    rc=1; kill "${pids[@]}" 2>/dev/null',
        "  fi",
        "done",
        'exit "$rc"',
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- Kubernetes


def _name(plan: LaunchPlan) -> str:
    digest = hashlib.sha256(
        "|".join(f"{n.name}:{n.env.get('ROCR_VISIBLE_DEVICES')}" for n in plan.nodes).encode()
    ).hexdigest()[:8]
    return f"tuner-launch-{digest}"


def _container(image: str, command: list[str], gpus: int) -> dict[str, Any]:
    return {
        "name": "engine",
        "image": image,
        "command": command,
        "env": [
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ],
        "resources": {"limits": {GPU_RESOURCE: gpus}, "requests": {GPU_RESOURCE: gpus}},
    }


def _pinned(nodes: list[str], app: str) -> dict[str, Any]:
    """Only on these nodes, and one pod of the set per node."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": HOSTNAME_LABEL, "operator": "In", "values": nodes}
                        ]
                    }
                ]
            }
        },
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": app}},
                    "topologyKey": HOSTNAME_LABEL,
                }
            ]
        },
    }


def _worker_script(workers: list[NodePlan]) -> str:
    """sh: exec the command of the node the pod landed on (NODE_NAME), every word quoted."""
    cases = [
        f"{shlex.quote(n.name)}) exec {' '.join(shlex.quote(w) for w in _env_words(n))} ;;"
        for n in workers
    ]
    return "\n".join(
        [
            'case "$NODE_NAME" in',
            *cases,
            '*) echo "tuner: node $NODE_NAME is not in the plan" >&2; exit 2 ;;',
            "esac",
        ]
    )


@gc_paused
def k8s_manifests(
    plan: LaunchPlan, image: str, namespace: str | None = None, form: str = "lws"
) -> list[dict[str, Any]]:
    if form == "job":
        return k8s_job_manifests(plan, image, namespace)
    return k8s_lws_manifests(plan, image, namespace)


def k8s_job_manifests(
    plan: LaunchPlan, image: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    """Where LeaderWorkerSet is not installed: a headless Service, a Job of one pod on the
    head node (hostname `head`, subdomain = the Service: DNS name `head.<service>`), and an
    Indexed Job of one pod per other node of the run. The plan must have been made with
    head_value=JOB_HEAD_ADDRESS. As with LWS, a worker pod picks its node's command by its
    node name (the scheduler decides which index lands on which pinned node); one pod per
    node (pod anti-affinity over both Jobs). backoffLimit 0: a pod that fails fails its Job
    (the run is not restarted pod by pod)."""
    name = _name(plan)
    gpus = _gpus_per_node(plan)
    head, workers = plan.nodes[0], plan.nodes[1:]
    base = {"app.kubernetes.io/managed-by": "tuner", "app.kubernetes.io/instance": name}

    def meta(obj: str, **labels: str) -> dict[str, Any]:
        m: dict[str, Any] = {"name": obj, "labels": {**base, **labels}}
        if namespace:
            m["namespace"] = namespace
        return m

    def container(command: list[str]) -> dict[str, Any]:
        c = _container(image, command, gpus)
        c["env"].append({"name": JOB_HEAD_ENV, "value": f"{JOB_HEAD_HOSTNAME}.{name}"})
        return c

    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {**base, COMPONENT: "head"},
        },
    }
    head_job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(f"{name}-head", **{COMPONENT: "head"}),
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {**base, COMPONENT: "head"}},
                "spec": {
                    "hostname": JOB_HEAD_HOSTNAME,
                    "subdomain": name,
                    "restartPolicy": "Never",
                    "affinity": _pinned([head.name], name),
                    "containers": [container(_env_words(head))],
                },
            },
        },
    }
    docs: list[dict[str, Any]] = [service, head_job]
    if workers:
        docs.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": meta(f"{name}-workers", **{COMPONENT: "worker"}),
                "spec": {
                    "completionMode": "Indexed",
                    "completions": len(workers),
                    "parallelism": len(workers),
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": {**base, COMPONENT: "worker"}},
                        "spec": {
                            "subdomain": name,
                            "restartPolicy": "Never",
                            "affinity": _pinned([n.name for n in workers], name),
                            "containers": [
                                container(["sh", "-c", _worker_script(workers), "tuner-node"])
                            ],
                        },
                    },
                },
            }
        )
    return docs


def k8s_lws_manifests(
    plan: LaunchPlan, image: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    """A LeaderWorkerSet (one group: the leader pod on the head node, one worker pod on each
    other node of the run), for the AMD GPU device plugin's amd.com/gpu. The plan must have
    been made with head_value=LEADER_ADDRESS. A worker pod finds its node's environment and
    command by its node name (the downward API's spec.nodeName): the scheduler picks which
    worker pod lands on which pinned node."""
    name = _name(plan)
    gpus = _gpus_per_node(plan)
    head, workers = plan.nodes[0], plan.nodes[1:]
    labels = {"app.kubernetes.io/managed-by": "tuner", "app.kubernetes.io/instance": name}
    script = _worker_script(workers)
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        meta["namespace"] = namespace
    lws: dict[str, Any] = {
        "apiVersion": LWS_API,
        "kind": "LeaderWorkerSet",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "startupPolicy": "LeaderCreated",
            "leaderWorkerTemplate": {
                "size": len(plan.nodes),
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "affinity": _pinned([head.name], name),
                        "containers": [_container(image, _env_words(head), gpus)],
                    },
                },
                "workerTemplate": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "affinity": _pinned([n.name for n in workers] or [head.name], name),
                        "containers": [_container(image, ["sh", "-c", script, "tuner-node"], gpus)],
                    },
                },
            },
        },
    }
    return [lws]


def k8s_yaml(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=1000)
