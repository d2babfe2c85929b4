//! Children of `pingfleet run` end with it: the parent marks each child it starts, and
//! the child asks the kernel for SIGTERM when the thread that started it goes away
//! (`PR_SET_PDEATHSIG`), so a `kill -9` of the orchestrator leaves no partition or
//! worker running.

use std::process::Command;

/// The variable that carries the parent's pid to the child.
const PARENT_PID: &str = "PINGFLEET_PARENT_PID";

/// A child of this run: `exe`, run by `wrapper` when one is given (e.g. `ip netns exec
/// NS`, which enters a network namespace and execs it, so the pid stays the child's),
/// marked to end with this process.
pub(crate) fn child(wrapper: &[String], exe: &std::path::Path) -> Command {
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(exe);
            command
        }
        None => Command::new(exe),
    };
    mark(&mut command);
    command
}

/// Marks a child about to be started: it will end when this process does.
pub(crate) fn mark(command: &mut Command) {
    command.env(PARENT_PID, std::process::id().to_string());
}

/// In a child marked by [`mark`]: asks for SIGTERM when the parent goes, and reports
/// whether the parent is already gone (the child should then stop at once).
pub(crate) fn bind_to_parent() -> bool {
    let Some(parent) = std::env::var(PARENT_PID)
        .ok()
        .and_then(|pid| pid.parse::<i32>().ok())
    else {
        return true;
    };
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM));
    // The parent may have died before the request took effect.
    rustix::process::getppid().is_some_and(|pid| pid.as_raw_nonzero().get() == parent)
}
