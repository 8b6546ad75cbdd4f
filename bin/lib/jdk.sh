# Shared by bin/trainer and bin/launch (sourced, not run): finds a JDK >= 25 and keeps
# cli/target/trainer.jar built.
#
#   hanlin_java        prints the path of a java >= 25, or explains what to install and returns 3.
#                      Looks at $JAVA_HOME, then the first `java` on PATH, then the newest
#                      */bin/java under $HANLIN_JDK_DIRS (colon-separated; default /usr/lib/jvm).
#   hanlin_java_home JAVA   prints the JDK folder of JAVA (for JAVA_HOME).
#   hanlin_jar JAVA    prints the trainer jar: $HANLIN_JAR as is, else cli/target/trainer.jar,
#                      built with Maven (using JAVA's JDK) when missing or older than a source.

HANLIN_MIN_JAVA=25
HANLIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# The feature release of a java binary, from its -version banner ("17.0.15", "25", "1.8.0_412").
hanlin_java_major() {
  local banner v
  banner=$("$1" -version 2>&1 | head -n 1)
  v=$(sed -n 's/^[^"]*"\([^"]*\)".*/\1/p' <<<"$banner")
  [ -n "$v" ] || return 1
  [[ $v == 1.* ]] && v=${v#1.}
  v=${v%%[.+_-]*}
  [[ $v =~ ^[0-9]+$ ]] || return 1
  echo "$v"
}

# Prints the java found; says on stderr why JAVA_HOME was passed over, if it was (an older
# default java on PATH is the usual case and needs no word).
hanlin_found() {
  local j=$1
  shift
  if [[ ${1:-} == JAVA_HOME=* ]]; then echo "note: $1; using $j" >&2; fi
  echo "$j"
}

hanlin_java() {
  local j major tried=() best="" best_major=0 dir
  if [ -n "${JAVA_HOME:-}" ]; then
    j="$JAVA_HOME/bin/java"
    major=$( [ -x "$j" ] && hanlin_java_major "$j")
    if [ -n "$major" ] && [ "$major" -ge "$HANLIN_MIN_JAVA" ]; then echo "$j"; return 0; fi
    if [ -n "$major" ]; then tried+=("JAVA_HOME=$JAVA_HOME is Java $major")
    else tried+=("JAVA_HOME=$JAVA_HOME holds no working bin/java"); fi
  fi
  if j=$(command -v java); then
    major=$(hanlin_java_major "$j")
    if [ -n "$major" ] && [ "$major" -ge "$HANLIN_MIN_JAVA" ]; then hanlin_found "$j" "${tried[@]}"; return 0; fi
    tried+=("'java' on PATH ($j) is Java ${major:-?}")
  else
    tried+=("no 'java' on PATH")
  fi
  local IFS=:
  for dir in ${HANLIN_JDK_DIRS:-/usr/lib/jvm}; do
    for j in "$dir"/*/bin/java; do
      [ -x "$j" ] || continue
      major=$(hanlin_java_major "$j") || continue
      if [ "$major" -ge "$HANLIN_MIN_JAVA" ] && [ "$major" -gt "$best_major" ]; then
        best=$j best_major=$major
      fi
    done
  done
  unset IFS
  if [ -n "$best" ]; then hanlin_found "$best" "${tried[@]}"; return 0; fi
  tried+=("no JDK >= $HANLIN_MIN_JAVA under ${HANLIN_JDK_DIRS:-/usr/lib/jvm}")
  {
    echo "Hanlin needs a JDK $HANLIN_MIN_JAVA or newer, and found none:"
    printf '  %s\n' "${tried[@]}"
    # Debian 12 and Ubuntu 24.04 have no openjdk-25 package; a newer release may
    if apt-cache policy openjdk-25-jdk-headless 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      echo "Install it with:  sudo apt-get install -y openjdk-25-jdk-headless"
    else
      echo "Install Temurin 25 from Adoptium's apt repository (this system's own packages have no JDK 25):"
      echo "  sudo apt-get install -y wget gpg"
      echo "  wget -qO- https://packages.adoptium.net/artifactory/api/gpg/key/public | sudo gpg --dearmor -o /etc/apt/trusted.gpg.d/adoptium.gpg"
      echo "  echo \"deb https://packages.adoptium.net/artifactory/deb \$(. /etc/os-release; echo \$VERSION_CODENAME) main\" | sudo tee /etc/apt/sources.list.d/adoptium.list"
      echo "  sudo apt-get update && sudo apt-get install -y temurin-25-jdk"
    fi
    echo "(or download a JDK 25 from https://adoptium.net and set JAVA_HOME to it)"
  } >&2
  return 3
}

# The JDK folder of a java binary (for JAVA_HOME).
hanlin_java_home() {
  dirname "$(dirname "$(readlink -f "$1")")"
}

hanlin_jar() {
  local java=$1 jar="$HANLIN_ROOT/cli/target/trainer.jar" why="" newer
  if [ -n "${HANLIN_JAR:-}" ]; then echo "$HANLIN_JAR"; return 0; fi
  if [ ! -f "$jar" ] || [ ! -d "$HANLIN_ROOT/cli/target/lib" ]; then
    why="$jar is not built yet"
  else
    # only what goes into the jar: a walk of the whole tree would read output/ and .git too
    newer=$(cd "$HANLIN_ROOT" && find pom.xml ./*/pom.xml ./*/src/main ./configs -type f \
      -newer "$jar" -print -quit 2>/dev/null)
    [ -n "$newer" ] && why="${newer#./} changed since $jar was built"
  fi
  if [ -n "$why" ]; then
    if ! command -v mvn >/dev/null; then
      echo "$why, and building it needs Maven 3.8+: sudo apt-get install -y maven" >&2
      return 3
    fi
    echo "$why: building it (mvn -B -q package -DskipTests; a minute or two the first time)" >&2
    local home
    home=$(hanlin_java_home "$java")
    (cd "$HANLIN_ROOT" && JAVA_HOME=$home mvn -B -q package -DskipTests ${HANLIN_MVN_OPTS:-}) >&2 \
      || { echo "the build failed (see above)" >&2; return 1; }
  fi
  echo "$jar"
}

# Under a locale that is not UTF-8 (LANG unset, as in a fresh container: POSIX), the JVM decodes
# the command line and encodes its output as ASCII, so `--prompt 春风` reaches the trainer as
# U+FFFD and Chinese output prints as '?'. Switch such a shell to C.UTF-8, which glibc always has.
hanlin_utf8_locale() {
  local charmap
  charmap=$(locale charmap 2>/dev/null)
  case "$charmap" in
    UTF-8 | utf8) ;;
    *) export LC_ALL=C.UTF-8 ;;
  esac
}
