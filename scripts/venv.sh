#!/usr/bin/env bash
# Create or refresh the project's virtual environment from pyproject.toml.
# Sourced by start.sh and test.sh; usage: ensure_venv [extra]   (extra = "test" for the test tools)
# Re-installs only when pyproject.toml (or the requested extra) changed since the last install.
ensure_venv() {
    local extra="${1:-}"
    local root; root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    local venv="${VENV_DIR:-$root/.venv}"
    local py="${PYTHON:-}"
    if [ -z "$py" ]; then
        for candidate in python3.13 python3.12 python3.11 python3; do
            if command -v "$candidate" >/dev/null 2>&1 &&
               "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)' 2>/dev/null; then
                py="$candidate"; break
            fi
        done
    fi
    if [ -z "$py" ]; then
        echo "error: Python 3.11, 3.12 or 3.13 is required (trio-asyncio does not run on 3.14)" >&2
        return 1
    fi
    if [ ! -x "$venv/bin/python" ]; then
        echo "creating virtual environment in $venv" >&2
        "$py" -m venv "$venv" || return 1
    fi
    local stamp="$venv/.installed-$extra"
    local want; want="$( (cat "$root/pyproject.toml"; echo "extra=$extra") | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "installing dependencies from pyproject.toml${extra:+ (with $extra extras)}" >&2
        "$venv/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
        # Dependencies only: the project runs from its source tree, it is not installed as a package.
        local reqs; reqs="$("$venv/bin/python" - "$root/pyproject.toml" "$extra" <<'PY'
import sys, tomllib
data = tomllib.load(open(sys.argv[1], "rb"))["project"]
deps = list(data["dependencies"])
if sys.argv[2]:
    deps += data.get("optional-dependencies", {}).get(sys.argv[2], [])
print("\n".join(deps))
PY
)" || return 1
        printf '%s\n' "$reqs" > "$venv/requirements.txt"
        # (this machine's pip config names local mirrors that may be absent: drop that noise)
        "$venv/bin/python" -m pip install --quiet -r "$venv/requirements.txt" 2> >(grep -v "is ignored: it is neither" >&2) || return 1
        echo "$want" > "$stamp"
    fi
    VENV_PY="$venv/bin/python"
    export VENV_PY
}
