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
    # Known-bad combinations of an older Airflow with newer libraries are capped in constraints/.
    local constraints=() inputs=(pyproject.toml) cfile="constraints/airflow-$airflow.txt"
    if [ -f "$cfile" ]; then constraints=(-c "$cfile"); inputs+=("$cfile"); fi
    # The stamp holds a hash of what we install from, so a change of dependencies reinstalls.
    local want; want=$(cat "${inputs[@]}" | sha256sum | cut -c1-16)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        "$dir/bin/python" -m pip install -q --disable-pip-version-check uv
        # Machines here set PYTHONDONTWRITEBYTECODE: compile at install time, or each `import airflow` costs ~2 s more.
        # `editables`: hatch's exact editable mode (only the package on sys.path, not the repo root)
        # imports it at start-up; uv reads the metadata before hatch adds it, so name it here.
        "$dir/bin/uv" pip install -q --python "$dir/bin/python" --compile-bytecode \
            "${constraints[@]}" "apache-airflow==$airflow" editables -e ".[$extras]"
        echo "$want" > "$stamp"
    fi
}
