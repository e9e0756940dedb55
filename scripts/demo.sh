#!/usr/bin/env bash
# The main job on a simulated fleet: set up, start 4 simulated MI355X nodes (real sshd per
# node when OpenSSH's server is installed, else local connections), provision each node's
# runtime, dry-run, apply and verify the `inference` profile (kernel command line, BIOS, OS),
# run the GPU health gate, then roll back.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export TUNER_STATE_DIR=${TUNER_STATE_DIR:-$PWD/.demo-state}
T=.venv/bin/tuner
$T sim down >/dev/null
$T sim up --nodes 4 --bmc-reset-delay 1   # + one simulated Redfish BMC per node
echo; echo "== provision: each node's runtime (/opt/tuner/venv, the amdsmi of its ROCm) from a wheelhouse pushed by the controller, no index on the nodes"
$T provision
echo; echo "== dry run on the head node only (--limit head): what would change, nothing is written"
$T apply --profile inference --check --limit head
echo; echo "== apply to all 4 nodes: kernel command line, BIOS through each BMC with rolling reboots (one per node), then OS settings"
$T apply --profile inference --reboot if-needed --batch-size 2
echo; echo "== verify"
$T verify --profile inference
echo; echo "== apply again: nothing left to change"
$T apply --profile inference
echo; echo "== GPU health gate: usable-GPU inventory in $TUNER_STATE_DIR/usable-gpus.json"
$T check --output "$TUNER_STATE_DIR/usable-gpus.json"
echo; echo "== rollback, dry run: what would be restored"
$T rollback --check
echo; echo "== rollback: OS settings restored now; the kernel command line and the BIOS originals are staged, pending the next reboot (tuner rollback --reboot if-needed reboots for them)"
$T rollback
echo; echo "== status: the fleet and the runs above"
$T status --runs 8
echo; echo "The fleet stays up in $TUNER_STATE_DIR. Try: TUNER_STATE_DIR=$TUNER_STATE_DIR $T apply --profile inference"
echo "Stop it with: $T sim down --state-dir $TUNER_STATE_DIR"
