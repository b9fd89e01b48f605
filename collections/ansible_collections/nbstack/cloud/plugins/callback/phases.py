# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Screen output a person reads: one line per phase, the playbook's own messages, errors in full, phase timings."""

from __future__ import annotations

DOCUMENTATION = """
    name: phases
    type: stdout
    short_description: One line per phase, the playbook's messages, errors in full, and how long each phase took
    version_added: 0.1.0
    description:
      - Without C(-v), the output of ansible.builtin.default is reduced to what a person reads.
        A phase is the outermost role a task comes from (for up.yml last_run, preflight, network, persistent,
        work, secrets, instance); a line names each phase the first time it starts. Only the first play's name
        is printed, since a playbook of several plays is one command.
      - The messages of the playbook's own debug tasks (tasks outside any role, such as up.yml's summary) are
        printed as plain lines. A debug message from inside a role, a diff (C(--diff)), a failure, a warning and an
        unreachable host are printed exactly as ansible.builtin.default prints them, task header included.
        Results of other tasks (ok, changed, skipped, included) are not printed; C(-v) and more print everything
        as ansible.builtin.default does.
      - At the end, at every verbosity, one line gives each phase's duration and how many of its tasks changed
        something, then the usual PLAY RECAP.
      - What reaches this callback is what Ansible passes every callback, so no_log results stay censored.
    extends_documentation_fragment:
      - default_callback
      - result_format_callback
    requirements:
      - set as stdout_callback in ansible.cfg
"""

import time

from ansible.plugins.callback.default import CallbackModule as DefaultCallback

from ansible_collections.nbstack.cloud.plugins.module_utils.wording import counted, duration

DEBUG_ACTIONS = frozenset({"debug", "ansible.builtin.debug", "ansible.legacy.debug"})


def phase_of(task):
    """The outermost role the task comes from, through include_role and include_tasks; None outside roles."""
    outermost = None
    node = task
    while node is not None:
        role = getattr(node, "_role", None)
        if role is not None:
            outermost = role.get_name()
        node = getattr(node, "_parent", None)
    return outermost


#: A duration as a person reads it: "0.4 s", "12 s", "3 min 05 s" (the same words as up.yml's AWS phases).
seconds = duration


class Phases:
    """The phases of a run in order, with their durations and counts of changed tasks."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self.order = []
        self.durations = {}
        self.changed = {}
        self.current = None
        self._since = None
        self._started = None

    def enter(self, phase):
        """Note that a task of `phase` (None: outside any role) starts; True when a phase starts for the first time with it."""
        now = self._clock()
        if self._started is None:
            self._started = now
        if phase == self.current:
            return False
        self._close(now)
        self.current = phase
        self._since = now
        if phase is None:
            return False
        if phase in self.durations:
            # Back in a phase already named (up.yml records its run in last_run's after the summary).
            return False
        self.order.append(phase)
        self.durations[phase] = 0.0
        self.changed[phase] = 0
        return True

    def count_change(self):
        if self.current is not None:
            self.changed[self.current] += 1

    def _close(self, now):
        if self.current is not None and self._since is not None:
            self.durations[self.current] += now - self._since

    def finish(self):
        """Close the current phase; the line of timings (None when no phase ran)."""
        now = self._clock()
        self._close(now)
        self.current = None
        if not self.order:
            return None
        parts = []
        for phase in self.order:
            part = f"{phase} {seconds(self.durations[phase])}"
            if self.changed[phase]:
                part += f" ({counted(self.changed[phase], 'change')})"
            parts.append(part)
        total = seconds(now - self._started) if self._started is not None else seconds(0)
        return f"Phases: {', '.join(parts)}; total {total}"


class CallbackModule(DefaultCallback):
    """ansible.builtin.default, reduced to phases, messages and errors below -v, with phase timings."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "nbstack.cloud.phases"

    def __init__(self):
        super().__init__()
        self._phases = Phases()

    @property
    def _brief(self):
        return self._display.verbosity < 1

    def v2_playbook_on_play_start(self, play):
        if not self._brief:
            return super().v2_playbook_on_play_start(play)
        self._play = play
        # A playbook of several plays (up.yml's short way, its whole way, its summary) is one command to a person.
        if getattr(self, "_play_named", False):
            return
        self._play_named = True
        self._display.display(play.get_name().strip() + (" (check mode: nothing is changed)" if play.check_mode else ""))

    def v2_playbook_on_task_start(self, task, is_conditional):
        starts = self._phases.enter(phase_of(task))
        if not self._brief:
            return super().v2_playbook_on_task_start(task, is_conditional)
        # Kept for the header of a failure or a diff, printed only then.
        self._task_type_cache[task._uuid] = "TASK"
        self._last_task_name = task.get_name().strip()
        if starts:
            self._display.display(f"{time.strftime('%H:%M:%S')} {self._phases.current}")
        return None

    def v2_playbook_on_handler_task_start(self, task):
        self._phases.enter(phase_of(task))
        return super().v2_playbook_on_handler_task_start(task)

    def v2_runner_on_ok(self, result):
        if result.result.get("changed", False):
            self._phases.count_change()
        if not self._brief:
            return super().v2_runner_on_ok(result)
        if result.task.action not in DEBUG_ACTIONS:
            # The result is not printed; its warnings and deprecations are.
            self._handle_warnings_and_exception(result)
            return None
        if phase_of(result.task) is not None or "msg" not in result.result:
            # A message from inside a role keeps the header that says where it comes from.
            return super().v2_runner_on_ok(result)
        self._handle_warnings_and_exception(result)
        message = result.result["msg"]
        for line in message if isinstance(message, list) else [message]:
            self._display.display(str(line))
        return None

    def v2_runner_on_skipped(self, result):
        if not self._brief:
            super().v2_runner_on_skipped(result)

    def v2_runner_item_on_ok(self, result):
        if not self._brief or result.task.action in DEBUG_ACTIONS:
            super().v2_runner_item_on_ok(result)
        else:
            self._handle_warnings_and_exception(result)

    def v2_runner_item_on_skipped(self, result):
        if not self._brief:
            super().v2_runner_item_on_skipped(result)

    def v2_runner_retry(self, result):
        if not self._brief:
            super().v2_runner_retry(result)

    def v2_playbook_on_include(self, included_file):
        if not self._brief:
            super().v2_playbook_on_include(included_file)

    def v2_playbook_on_stats(self, stats):
        line = self._phases.finish()
        if line:
            self._display.display(line)
        return super().v2_playbook_on_stats(stats)
