# Sourced by scripts/demo and scripts/test: make (or reuse) a virtualenv with Airflow and this provider.
# usage: ensure_venv DIR AIRFLOW_VERSION [EXTRAS]
set -euo pipefail

find_python() {
    for candidate in python3.11 python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "Python 3.11 or newer is needed" >&2; return 1
}

ensure_venv() {
    local dir=$1 airflow=$2 extras=${3:-test}
    local stamp="$dir/.installed-$airflow-$extras"
    if [ ! -x "$dir/bin/python" ]; then
        "$(find_python)" -m venv "$dir"
    fi
    # Airflow 3.2.x does not cap FastAPI, and FastAPI >= 0.137 breaks its in-process execution API
    # (dag.test, tasks); Airflow 3.3 caps it itself. Users of 3.2.x get the cap from Airflow's
    # constraints file. fastapi is our own dependency too, so a requirement acts as the constraint.
    local caps=()
    case $airflow in 3.2.*) caps=("fastapi<0.137") ;; esac
    # The stamp holds a hash of what we install from, so a change of dependencies reinstalls.
    local want; want=$({ cat pyproject.toml; echo "${caps[@]}"; } | sha256sum | cut -c1-16)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        "$dir/bin/python" -m pip install -q --disable-pip-version-check uv
        # Machines here set PYTHONDONTWRITEBYTECODE: compile at install time, or each `import airflow` costs ~2 s more.
        # `editables`: hatch's exact editable mode (only the package on sys.path, not the repo root)
        # imports it at start-up; uv reads the metadata before hatch adds it, so name it here.
        "$dir/bin/uv" pip install -q --python "$dir/bin/python" --compile-bytecode \
            "apache-airflow==$airflow" "${caps[@]}" editables -e ".[$extras]"
        echo "$want" > "$stamp"
    fi
}
