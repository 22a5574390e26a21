#!/usr/bin/env bash
# Run the statsforecast reference (benches/reference/statsforecast_reference.py).
# Installs the pinned Python tools (requirements.txt, about 560 MB) once into a
# folder outside the repository: $PRAE_PYREF, default ~/.cache/prae/pyref.
# Arguments are passed to the script (--repeats N, --skip-mase, --only NAME).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYREF="${PRAE_PYREF:-$HOME/.cache/prae/pyref}"
PYTHON="${PYTHON:-python3}"

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "python >= 3.11 needed (numpy 2.4)")'

stamp="$PYREF/.prae-requirements-$(sha256sum "$here/requirements.txt" | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    echo "installing the pinned reference tools into $PYREF" >&2
    mkdir -p "$PYREF"
    # requirements.txt is a complete freeze, so --no-deps installs exactly it.
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --upgrade --no-deps \
        --target "$PYREF" -r "$here/requirements.txt"
    touch "$stamp"
fi

# One thread in every numeric library; the script also pins itself to one core.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
       VECLIB_MAXIMUM_THREADS=1 NUMEXPR_NUM_THREADS=1
export PYTHONPATH="$PYREF${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONHASHSEED=0
exec "$PYTHON" "$here/statsforecast_reference.py" "$@"
