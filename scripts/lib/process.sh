# shellcheck shell=bash
# Whether a process the project started is still running. Sourced, not run.
#
# A zombie does not count: a process that died after its starter exited waits for PID 1 to reap
# it, which some inits (a container's) do only every few seconds, and `kill -0` still finds it.
# Counted as alive, it made `up` skip a service that was gone and `down` wait out its timeout.

pid_running() {  # pid
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ $state != Z* ]]
}

pidfile_running() {  # pid file
  [ -f "$1" ] && pid_running "$(cat "$1")"
}
