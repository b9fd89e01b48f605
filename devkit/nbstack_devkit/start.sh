#!/bin/bash
# The devkit's stand-in for docker-stacks' start.sh (and its run-hooks.sh),
# which this machine does not have. Like start.sh, it is bash, and it runs
# under `tini -g` as the container's start (see container.py and start.py,
# which prepare its environment and command):
#
#     start.sh HOOKS_DIR COMMAND...
#
# 1. Run the hooks in HOOKS_DIR in name order, as the user this runs as
#    (root in the image, since the task starts as root), as run-hooks.sh
#    does: a `*.sh` hook is sourced, so its exports and its `cd` stay for
#    what follows, an `exit` in it ends the start with its code, and a
#    `set -e` in it holds for the rest of that hook; any other hook is run
#    if it is executable. One that fails is logged and skipped. The hooks
#    cannot change COMMAND (start.sh keeps it apart from its arguments too).
# 2. Unset every variable named in JUPYTER_ENV_VARS_TO_UNSET (separated by
#    commas or white space), and that variable itself; a name that is not a
#    variable's, or one that cannot be unset, ends the start.
# 3. As root, drop to the notebook user NB_USER (start.sh: `sudo --user`;
#    here setpriv, which execs COMMAND in its place where sudo stays as its
#    parent), keeping HOME; not root, run as this user (docker-stacks'
#    non-root mode).
# 4. exec COMMAND (start.py's default: the image's CMD, jupyter-lab), so
#    this process becomes the server.
#
# Its log lines have the Python logging format the devkit's other parts use
# (bench/startup.py reads their times).

_nbstack_log() {
    local now=${EPOCHREALTIME} level=$1
    shift
    local fraction=${now#*.}
    printf '%(%Y-%m-%d %H:%M:%S)T,%s %s nbstack.start: %s\n' "${now%.*}" "${fraction:0:3}" "${level}" "$*" >&2
}

_nbstack_hooks_dir=${1:?usage: start.sh HOOKS_DIR COMMAND...}
shift
if [ "$#" -eq 0 ]; then
    _nbstack_log ERROR "no command to run (usage: start.sh HOOKS_DIR COMMAND...)"
    exit 2
fi
# Out of the hooks' reach: a sourced hook sees, and may shift or set, "$@".
_nbstack_command=("$@")
set --
if [ ! -d "${_nbstack_hooks_dir}" ]; then
    _nbstack_log ERROR "hooks directory ${_nbstack_hooks_dir} does not exist"
    exit 1
fi

# A sourced hook that calls `exit` ends this script, as it ends start.sh.
_nbstack_hook=""
_nbstack_on_exit() {
    local status=$?
    if [ -n "${_nbstack_hook}" ]; then
        _nbstack_log ERROR "${_nbstack_hook} ended the start with exit code ${status}"
    fi
}
trap _nbstack_on_exit EXIT

_nbstack_started_in=${PWD}
for _nbstack_hook in "${_nbstack_hooks_dir}"/*; do
    case "${_nbstack_hook}" in
        *.sh)
            _nbstack_log INFO "Sourcing shell script: ${_nbstack_hook}"
            # Not in a condition, which would turn off a `set -e` inside the hook.
            # shellcheck disable=SC1090
            source "${_nbstack_hook}"
            _nbstack_status=$?
            set +e # a hook may have turned errexit on and left it on
            if [ "${_nbstack_status}" -ne 0 ]; then
                _nbstack_log ERROR "${_nbstack_hook} has failed, continuing execution"
            fi
            ;;
        *)
            if [ -f "${_nbstack_hook}" ] && [ -x "${_nbstack_hook}" ]; then
                _nbstack_log INFO "Running executable: ${_nbstack_hook}"
                if ! "${_nbstack_hook}"; then
                    _nbstack_log ERROR "${_nbstack_hook} has failed, continuing execution"
                fi
            elif [ -e "${_nbstack_hook}" ]; then
                _nbstack_log INFO "Ignoring non-executable: ${_nbstack_hook}"
            fi
            ;;
    esac
done
_nbstack_hook=""
if [ "${PWD}" != "${_nbstack_started_in}" ]; then
    _nbstack_log INFO "Working directory: ${PWD}"
fi

# Every name, whatever separates them; none may stay set (the secrets).
IFS=$', \t\n' read -r -d '' -a _nbstack_names <<< "${JUPYTER_ENV_VARS_TO_UNSET:-}"
for _nbstack_name in "${_nbstack_names[@]}" JUPYTER_ENV_VARS_TO_UNSET; do
    if [[ ! "${_nbstack_name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        _nbstack_log ERROR "JUPYTER_ENV_VARS_TO_UNSET names '${_nbstack_name}', which is not a variable's name"
        exit 1
    fi
    if ! unset -v "${_nbstack_name}" 2> /dev/null || [ -n "${!_nbstack_name+set}" ]; then
        _nbstack_log ERROR "${_nbstack_name} could not be unset: not starting the server with it"
        exit 1
    fi
done

if [ "${EUID}" -eq 0 ]; then
    _nbstack_user=${NB_USER:-nobody}
    if ! _nbstack_uid=$(/usr/bin/id -u -- "${_nbstack_user}") || ! _nbstack_gid=$(/usr/bin/id -g -- "${_nbstack_user}"); then
        _nbstack_log ERROR "NB_USER ${_nbstack_user} does not exist"
        exit 1
    fi
    if [ "${_nbstack_uid}" -eq 0 ]; then
        _nbstack_log ERROR "NB_USER '${_nbstack_user}' is root: the notebook user must be unprivileged"
        exit 1
    fi
    export USER=${_nbstack_user} LOGNAME=${_nbstack_user}
    _nbstack_log INFO "Running as ${_nbstack_user} (uid ${_nbstack_uid})"
    _nbstack_log INFO "Executing the command: ${_nbstack_command[*]}"
    exec /usr/bin/setpriv --reuid="${_nbstack_uid}" --regid="${_nbstack_gid}" --init-groups -- "${_nbstack_command[@]}"
fi
_nbstack_log WARNING "not root: Jupyter runs as uid ${EUID}; the init's environment keeps the secrets"
_nbstack_log INFO "Executing the command: ${_nbstack_command[*]}"
exec "${_nbstack_command[@]}"
