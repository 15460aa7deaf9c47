#!/usr/bin/env bash
# Runs a command on this machine as if Debian's JDK and Maven were not installed, for
# tests/deploy/test_java_install.py. Run it in a mount namespace of its own
# (`unshare --mount --propagation private`): nothing it mounts is seen outside.
#   without_java.sh WORK HIDE COMMAND...
# HIDE names what to take away: "jdk", "maven", both or neither. Their /etc/alternatives links
# (java, javac, jar, mvn...) leave a copy of that folder mounted in its place, so PATH stays as
# it is and finds no java or mvn. apt-get becomes a stand-in that writes each call to
# WORK/apt-get.calls and "installs" default-jdk-headless and maven by putting their links back;
# it refuses any other package, and every install when APT_REFUSE is set.
set -euo pipefail

work="$1" hide="$2"; shift 2
alternatives="$work/alternatives"
mkdir -p "$alternatives" "$work/hidden/jdk" "$work/hidden/maven"
for link in /etc/alternatives/*; do
  case "$(readlink "$link")" in
    /usr/lib/jvm/*) part=jdk ;;
    /usr/share/maven/*) part=maven ;;
    *) part="" ;;
  esac
  if [ -n "$part" ] && [[ " $hide " == *" $part "* ]]; then
    cp -P "$link" "$work/hidden/$part/"
  else
    cp -P "$link" "$alternatives/"
  fi
done
mount --bind "$alternatives" /etc/alternatives

cat >"$work/apt-get" <<STUB
#!/usr/bin/env bash
printf '%s\n' "\$*" >>"$work/apt-get.calls"
command="" packages=()
for arg in "\$@"; do
  case "\$arg" in -*) ;; *) if [ -z "\$command" ]; then command="\$arg"; else packages+=("\$arg"); fi ;; esac
done
[ "\$command" = install ] || exit 0
if [ -n "\${APT_REFUSE:-}" ]; then echo "E: Unable to fetch some archives" >&2; exit 100; fi
for package in "\${packages[@]}"; do
  case "\$package" in
    default-jdk-headless) cp -a "$work/hidden/jdk/." /etc/alternatives/ ;;
    maven) cp -a "$work/hidden/maven/." /etc/alternatives/ ;;
    *) echo "E: Unable to locate package \$package" >&2; exit 100 ;;
  esac
done
STUB
chmod +x "$work/apt-get"
mount --bind "$work/apt-get" "$(command -v apt-get)"

# What is hidden must really be gone, or the test proves nothing.
for tool in java javac mvn; do
  part=jdk; [ "$tool" = mvn ] && part=maven
  if [[ " $hide " == *" $part "* ]] && command -v "$tool" >/dev/null; then
    echo "without_java.sh: $tool is still on PATH at $(command -v "$tool")" >&2
    exit 97
  fi
done
exec "$@"
