#!/usr/bin/env bash
# Build the Ansible collection tuner.tuner from playbooks/ (the source of truth) and, with
# --sanity, run ansible-test's offline sanity tests on it (docs/collection.md).
#
#   scripts/collection.sh [--sanity] [OUT_DIR]     (default OUT_DIR: dist/)
#
# The collection tree is made in a temporary ansible_collections/tuner/tuner/ (ansible-test
# needs that layout): modules from playbooks/library (the simulator's tuner_sim_reboot left
# out), module_utils from playbooks/module_utils (links to agent/ followed), playbooks/*.yml,
# with their `ansible.module_utils.tuner_*` imports and short module names rewritten to the
# collection's; galaxy.yml, README.md and meta/ come from collection/.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SANITY=0
if [ "${1:-}" = "--sanity" ]; then SANITY=1; shift; fi
OUT=$(realpath -m "${1:-dist}")
PY=${PYTHON:-$REPO/.venv/bin/python}
BIN=$(dirname "$PY")
NS=tuner
NAME=tuner
FQ="ansible_collections.$NS.$NAME.plugins.module_utils"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
COLL=$WORK/ansible_collections/$NS/$NAME
mkdir -p "$COLL/plugins/modules" "$COLL/plugins/module_utils" "$COLL/playbooks" "$COLL/meta"
cp collection/galaxy.yml collection/README.md "$COLL/"
cp collection/meta/runtime.yml "$COLL/meta/"
# ansible-test reads tests/sanity/ignore-<ansible-core X.Y>.txt: one list, for the installed one
ACV=$("$PY" -c 'import ansible.release as r; print(".".join(r.__version__.split(".")[:2]))')
mkdir -p "$COLL/tests/sanity"
cp collection/tests/sanity/ignore.txt "$COLL/tests/sanity/ignore-$ACV.txt"
cp LICENSE "$COLL/" 2>/dev/null || true

rewrite() {  # the collection's import path for tuner's module_utils
    sed -e "s/from ansible\.module_utils\.tuner_/from $FQ.tuner_/" \
        -e "s/import ansible\.module_utils\.tuner_/import $FQ.tuner_/"
}
for f in playbooks/library/tuner_*.py; do
    name=$(basename "$f")
    [ "$name" = tuner_sim_reboot.py ] && continue  # drives the simulator: not for sites
    rewrite <"$f" >"$COLL/plugins/modules/$name"
done
: >"$COLL/plugins/module_utils/__init__.py"
for f in playbooks/module_utils/tuner_*.py; do
    rewrite <"$(realpath "$f")" >"$COLL/plugins/module_utils/$(basename "$f")"
done
for f in playbooks/*.yml; do
    # short module names -> the collection's (tuner_os: -> tuner.tuner.tuner_os:)
    sed -E "s/^(\s+)(tuner_[a-z_]+):(\s*)$/\1$NS.$NAME.\2:\3/" "$f" >"$COLL/playbooks/$(basename "$f")"
done

mkdir -p "$OUT"
"$BIN/ansible-galaxy" collection build "$COLL" --output-path "$OUT" --force
if [ "$SANITY" = 1 ]; then
    # Offline, with this Python (--local): ansible-test's sanity tests that install nothing.
    # The others (validate-modules, ansible-doc, pep8, pylint, yamllint, import,
    # runtime-metadata) build a virtualenv whose pip they download from
    # ci-files.testing.ansible.com: not reachable here (docs/collection.md).
    (
        cd "$COLL"
        git init -q . && git add -A  # ansible-test looks at the files git knows
        "$BIN/ansible-test" sanity --local \
            --python "$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
            --color no --test compile --test shebang --test empty-init --test line-endings \
            --test no-smart-quotes --test action-plugin-docs --test symlinks --test no-assert \
            --test no-illegal-filenames --test use-argspec-type-path --test replace-urlopen \
            --test no-get-exception --test use-compat-six
    )
    # ansible-doc itself reads every module's DOCUMENTATION, EXAMPLES and RETURN from the
    # installed collection (what `ansible-doc tuner.tuner.X` shows an operator).
    INST=$WORK/installed
    "$BIN/ansible-galaxy" collection install "$OUT/$NS-$NAME-"*.tar.gz -p "$INST" --force >/dev/null 2>&1
    for m in "$COLL"/plugins/modules/*.py; do
        mod=$(basename "$m" .py)
        ANSIBLE_COLLECTIONS_PATH=$INST "$BIN/ansible-doc" --json "$NS.$NAME.$mod" >"$WORK/doc.json"
        "$PY" - "$WORK/doc.json" "$NS.$NAME.$mod" <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1]))[sys.argv[2]]
d = doc["doc"]
missing = [o for o, v in d.get("options", {}).items() if not v.get("description")]
assert not missing, f"{sys.argv[2]}: options without a description: {missing}"
assert doc.get("examples") and doc.get("return"), f"{sys.argv[2]}: no EXAMPLES or RETURN"
print(f"ansible-doc {sys.argv[2]}: {len(d.get('options', {}))} options, "
      f"{len(doc['return'])} return values")
PYEOF
    done
fi
