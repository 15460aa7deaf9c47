# shellcheck shell=bash
# Elasticsearch on this machine, for scripts/services.sh (one node) and scripts/cluster.sh
# (three). Sourced, not run: the caller sets ROOT, VAR and LOG, and defines say and die.

ES_VERSION="${ES_VERSION:-8.19.7}"
ES_USER="${ES_USER:-elasticsearch}"
CACHE="${PYLOGGER_CACHE:-/var/cache/python-logger}"
ES_HOME="$CACHE/elasticsearch-$ES_VERSION"

# Debian packages that bring what fetching and running Elasticsearch needs: a headless JDK (java,
# and javac and jar for the root-info plugin; the release's default, 17 or newer) and Maven.
JDK_PACKAGE="${JDK_PACKAGE:-default-jdk-headless}"
MAVEN_PACKAGE="${MAVEN_PACKAGE:-maven}"

# Installs the JDK and Maven with apt when missing, as services.sh does Redis and stack.sh nginx.
es_tools_ensure() {
  local missing=()
  if ! command -v java >/dev/null || ! command -v javac >/dev/null; then missing+=("$JDK_PACKAGE"); fi
  command -v mvn >/dev/null || missing+=("$MAVEN_PACKAGE")
  [ "${#missing[@]}" -eq 0 ] && return
  say "installing Debian's ${missing[*]} (Elasticsearch needs Java 17+, and Maven fetches it)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}") >"$LOG/apt-java.log" 2>&1 \
    || { tail -20 "$LOG/apt-java.log"; die "could not install ${missing[*]}"; }
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    die "${missing[*]} installed, but java or mvn is still not on PATH ($PATH)"
  fi
}

java_home() {
  # The integ-test zip has no JDK: use a Java 17+ from the machine.
  local java
  java="$(command -v java || true)"
  [ -n "$java" ] || die "no java on PATH; Elasticsearch $ES_VERSION needs Java 17 or newer"
  dirname "$(dirname "$(readlink -f "$java")")"
}

fetch_es() {
  [ -x "$ES_HOME/bin/elasticsearch" ] && return
  mkdir -p "$CACHE"
  local zip="$CACHE/elasticsearch-$ES_VERSION.zip"
  if [ ! -s "$zip" ]; then
    say "fetching Elasticsearch $ES_VERSION (integ-test-zip) with Maven, once"
    mvn -q dependency:copy \
      -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
      -DoutputDirectory="$CACHE" >"$LOG/mvn-es.log" 2>&1 \
      || { tail -20 "$LOG/mvn-es.log"; die "could not fetch Elasticsearch $ES_VERSION"; }
  fi
  command -v unzip >/dev/null || (apt-get update -qq && apt-get install -y -qq unzip) >/dev/null 2>&1
  rm -rf "$ES_HOME.tmp" && mkdir -p "$ES_HOME.tmp"
  unzip -q "$zip" -d "$ES_HOME.tmp"
  mv "$ES_HOME.tmp/elasticsearch-$ES_VERSION" "$ES_HOME" && rm -rf "$ES_HOME.tmp"
}

install_root_info() {  # java home
  # The integ-test zip lacks the rest-root module, so GET / answers 405. A small plugin, compiled
  # here against the zip's own jars, answers it with the node's name and version instead.
  local jh="$1" src="$ROOT/scripts/es-root-info" dest="$ES_HOME/plugins/root-info"
  local stamp="$CACHE/root-info-$ES_VERSION.stamp" digest
  digest="$(cat "$src"/* | sha256sum | cut -d' ' -f1)"
  if [ -s "$dest/root-info.jar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then return; fi
  if [ ! -x "$jh/bin/javac" ]; then
    say "WARNING: no javac in $jh; Elasticsearch will answer GET / with 405"
    return
  fi
  local build; build="$(mktemp -d)"
  if "$jh/bin/javac" --release 17 -cp "$ES_HOME/lib/*" -d "$build" "$src/RootInfoPlugin.java" \
    >"$LOG/es-root-info.log" 2>&1; then
    rm -rf "$dest" && mkdir -p "$dest"
    "$jh/bin/jar" --create --file "$dest/root-info.jar" -C "$build" .
    sed "s/@ES_VERSION@/$ES_VERSION/g" "$src/plugin-descriptor.properties.in" \
      >"$dest/plugin-descriptor.properties"
    printf '%s' "$digest" >"$stamp"
    say "installed the root-info plugin (GET / shows the version)"
  else
    # Elasticsearch works without it; the log says why it did not build.
    say "WARNING: the root-info plugin did not compile (see $LOG/es-root-info.log)"
  fi
  rm -rf "$build"
}

# What every node needs first: a JDK and Maven (apt, when missing), the zip, the JDK's home (in
# ES_JAVA), the root-info plugin and the user the nodes run as.
es_install() {
  es_tools_ensure
  fetch_es
  ES_JAVA="$(java_home)"
  install_root_info "$ES_JAVA"
  # Elasticsearch refuses to run as root: it gets a system user of its own.
  id "$ES_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
  chown -R "$ES_USER" "$ES_HOME"
}

# A node's data and logs, in a folder outside the checkout that its user owns.
es_data_prepare() {  # folder
  mkdir -p "$1/data" "$1/logs"
  # Which checkout a folder belongs to, for whoever cleans $STATE up later.
  printf '%s\n' "$VAR" >"$1/var-path"
  chown -R "$ES_USER" "$1"
  su -s /bin/sh "$ES_USER" -c "test -w '$1/data'" \
    || die "user $ES_USER cannot write $1 (is a parent folder closed to other users?)"
}

# Starts one node as $ES_USER, with the settings every node here shares (loopback, security
# off, no disk watermarks) plus the caller's ports and discovery; returns once it has started.
es_launch() {  # folder, pid file, start log, heap, -E settings...
  local dir="$1" pidfile="$2" startlog="$3" heap="$4"; shift 4
  # Elasticsearch writes its pid where it can; root copies it into $RUN, which it may not reach.
  rm -f "$pidfile" "$dir/elasticsearch.pid"
  su -s /bin/sh "$ES_USER" -c "cd '$ES_HOME' && ES_JAVA_HOME='$ES_JAVA' ES_JAVA_OPTS='-Xms$heap -Xmx$heap' \
    ./bin/elasticsearch -d -p '$dir/elasticsearch.pid' $* -Enetwork.host=127.0.0.1 \
    -Expack.security.enabled=false -Ecluster.routing.allocation.disk.threshold_enabled=false \
    -Eaction.destructive_requires_name=false \
    -Epath.data='$dir/data' -Epath.logs='$dir/logs'" >"$startlog" 2>&1 \
    || { tail -30 "$startlog"; die "Elasticsearch failed to start"; }
  # -d returns once the node has started, and the node writes its pid file before that.
  cp "$dir/elasticsearch.pid" "$pidfile" \
    || die "Elasticsearch started but wrote no pid file in $dir"
}
