# shellcheck shell=bash
# One run at a time per checkout, for the scripts that break things on purpose (faults.sh,
# cluster-faults.sh). Sourced, not run. The lock is held on fd 9 and let go on exit; start
# whatever may outlive the run with fd 9 closed (9>&-), so that nothing else keeps it.

# Takes the lock file (under var/, beside the folder a run may delete), waiting for the run that
# holds it, if any; says so on stderr with `tag`.
run_lock() {  # lock file, tag
  mkdir -p "$(dirname "$1")"
  exec 9>"$1"
  if ! flock -n 9; then
    printf '[%s] another run holds %s; waiting for it\n' "$2" "${1#"$ROOT"/}" >&2
    flock 9
  fi
}
