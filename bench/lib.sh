# Sourced by the bench scripts: what several of them set up the same way.

# Sets root (the repository), assets (test-data/assets) and model (the Llama 2 tokenizer.model),
# exits naming the setup script when the model is missing, and exports JAVA_HOME (JDK 25 unless
# set). Call it from a script in bench/.
require_tokenizer_assets() {
  root="$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)"
  assets="$root/test-data/assets"
  model="$assets/tokenizer/tokenizer.model"
  [ -f "$model" ] || { echo "missing $model: run test-data/tokenizer/setup.sh" >&2; exit 1; }
  export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
}
