//! A program's processes: what both front ends share about them.
//!
//! A program is a template; each of its `numprocs` processes is an instance, numbered from
//! `numprocs_start`, named by `process_name` and with every `%(process_num)d` (and the other
//! supervisord expansions) of its settings worked out for it. The YAML front end validates
//! each instance's expanded values as it validates any program's; the INI front end expands
//! the options supervisord expands per process. Both then name the instances and check the
//! names here, with the same rules and the same words.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::values::{invalid_program_name, is_valid_program_name};
use crate::{GroupSpec, ProcessSpec, ProgramSpec};

/// `process_name` when none is given: the program's name for one process, else a number
/// after it (`web_00`, `web_01`...).
pub(crate) fn default_process_name(numprocs: u32) -> &'static str {
    if numprocs == 1 {
        "%(program_name)s"
    } else {
        "%(program_name)s_%(process_num)02d"
    }
}

/// The numbers of a program's processes.
pub(crate) fn numbers(spec: &ProgramSpec) -> impl Iterator<Item = u32> {
    let start = spec.numprocs_start;
    (0..spec.numprocs).map(move |i| start.saturating_add(i))
}

/// What is wrong with the names the processes of `program` got, each named once; empty when
/// every name is valid and they are all different.
pub(crate) fn check_names(program: &str, names: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut first_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut said_invalid = false;
    for (i, name) in names.iter().enumerate() {
        if *name == program && !is_valid_program_name(program) {
            continue; // said of the program already
        }
        if !is_valid_program_name(name) {
            if !std::mem::replace(&mut said_invalid, true) {
                let why = invalid_program_name(name).replace("invalid program name", "");
                problems.push(format!("process {i} gets an invalid name{why}"));
            }
        } else if let Some(first) = first_of.insert(name, i) {
            problems.push(format!(
                "processes {first} and {i} of {program} are both named {name:?}: process_name \
                 must tell them apart (use %(process_num)d in it)"
            ));
        }
        if problems.len() >= 3 {
            break;
        }
    }
    problems
}

/// The processes of `program`, from each one's name and settings.
pub(crate) fn processes(instances: Vec<(String, u32, ProgramSpec)>) -> Vec<ProcessSpec> {
    // Collected into a vector of its own: collected in place, the processes would keep the
    // instances' allocation (a whole ProgramSpec's room per process, 1.1 KB, unused).
    let mut processes = Vec::with_capacity(instances.len());
    processes.extend(
        instances
            .into_iter()
            .map(|(name, num, spec)| process(name, num, spec)),
    );
    processes
}

/// Process `name`, number `num`, of a program, running with `spec`.
pub(crate) fn process(name: String, num: u32, mut spec: ProgramSpec) -> ProcessSpec {
    spec.processes.clear();
    never_rotate_devices(&mut spec);
    ProcessSpec {
        name,
        num,
        spec: Arc::new(spec),
    }
}

/// Every process name used by more than one program, in a way that would make a bare name
/// ambiguous: a program's lone process named like another program's process (`web_01` beside
/// a `web` pool that has a `web_01`). The messages are for the first program of each pair.
pub(crate) fn clashes(programs: &BTreeMap<String, ProgramSpec>) -> Vec<(String, String)> {
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for spec in programs.values() {
        if spec.numprocs > 1 || spec.processes.first().is_some_and(|p| p.name != spec.name) {
            for process in &spec.processes {
                owners.entry(&process.name).or_insert(&spec.name);
            }
        }
    }
    programs
        .values()
        .filter(|spec| spec.numprocs == 1)
        .filter_map(|spec| {
            let process = spec.processes.first()?;
            let owner = owners.get(process.name.as_str())?;
            (*owner != spec.name).then(|| {
                (
                    spec.name.clone(),
                    format!(
                        "process name {:?} is also a process of program {owner:?}",
                        process.name
                    ),
                )
            })
        })
        .collect()
}

/// Puts each group's programs in it; what is wrong with a group, by group name: a program it
/// lists that does not exist or is in another group already, or a name a program outside it
/// has.
pub(crate) fn join_groups(
    programs: &mut BTreeMap<String, ProgramSpec>,
    groups: &BTreeMap<String, GroupSpec>,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (group, spec) in groups {
        if !is_valid_program_name(group) {
            let why = invalid_program_name(group).replace("invalid program name", "");
            problems.push((group.clone(), format!("invalid group name{why}")));
        }
        if programs
            .get(group)
            .is_some_and(|program| !spec.programs.contains(&program.name))
        {
            problems.push((
                group.clone(),
                format!("group {group:?} has the name of a program that is not in it"),
            ));
        }
        for member in &spec.programs {
            let Some(program) = programs.get_mut(member) else {
                problems.push((group.clone(), format!("no program {member:?} to put in it")));
                continue;
            };
            if let Some(other) = &program.group {
                problems.push((
                    group.clone(),
                    format!("program {member:?} is in group {other:?} already"),
                ));
                continue;
            }
            set_group(program, group, spec.priority);
            for process in &mut program.processes {
                set_group(Arc::make_mut(&mut process.spec), group, spec.priority);
            }
        }
    }
    problems
}

fn set_group(spec: &mut ProgramSpec, group: &str, priority: u32) {
    spec.group = Some(group.to_string());
    spec.group_priority = Some(priority);
}

/// Sends `stream` of program `spec` to its AUTO log file (supervisord's default), stderr too
/// when `with_stderr`: each process to a file of its own, named after it as supervisord names
/// them (`path_for(name)`), and the program's own view to the file named after the program.
/// Returns the files named: the program's own view's (which `convert` recognizes as AUTO) and
/// the processes'.
pub(crate) fn set_auto_log(
    spec: &mut ProgramSpec,
    stream: crate::Stream,
    with_stderr: bool,
    path_for: impl Fn(&str) -> std::path::PathBuf,
) -> Vec<std::path::PathBuf> {
    let point = |spec: &mut ProgramSpec, path: std::path::PathBuf| {
        match stream {
            crate::Stream::Stdout => spec.stdout = Some(path.clone()),
            crate::Stream::Stderr => spec.stderr = Some(path.clone()),
        }
        if with_stderr {
            spec.stderr = Some(path);
        }
    };
    let own = path_for(&spec.name);
    point(spec, own.clone());
    let mut files = vec![own];
    for process in &mut spec.processes {
        let path = path_for(&process.name);
        point(Arc::make_mut(&mut process.spec), path.clone());
        files.push(path);
    }
    files
}

/// A stream sent to a device (`/dev/stdout`, `/dev/fd/1`, a terminal: what containers do) is
/// never rotated, whatever its `maxbytes` says: renaming a device's name away would break it
/// for every other user, and a device has no size to reach.
fn never_rotate_devices(spec: &mut ProgramSpec) {
    let is_device = |file: &Option<std::path::PathBuf>| {
        file.as_deref()
            .is_some_and(|file| file.starts_with("/dev") || file.starts_with("/proc"))
    };
    if is_device(&spec.stdout) {
        spec.stdout_rotation.maxbytes = 0;
    }
    if is_device(&spec.stderr) {
        spec.stderr_rotation.maxbytes = 0;
    }
}

/// A file that several streams write to is one file, rotated as one: their rotation settings
/// must agree, or which of them is in force is an accident of start order. For each program of
/// `names` (in file order) with a stream whose file an earlier stream writes to with other
/// settings: its name and the error.
pub(crate) fn rotation_conflicts<'n>(
    names: impl Iterator<Item = &'n str>,
    programs: &BTreeMap<String, ProgramSpec>,
) -> Vec<(&'n str, String)> {
    let mut first_writer: BTreeMap<&Path, (&str, &str, crate::Rotation)> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for name in names {
        let Some(program) = programs.get(name) else {
            continue;
        };
        let streams = program.processes.iter().flat_map(|process| {
            let spec = &process.spec;
            [
                ("stdout", spec.stdout.as_deref(), spec.stdout_rotation),
                ("stderr", spec.stderr.as_deref(), spec.stderr_rotation),
            ]
        });
        for (stream, file, rotation) in streams {
            let Some(file) = file else {
                continue;
            };
            match first_writer.get(file) {
                Some((other, other_stream, theirs)) if *theirs != rotation => conflicts.push((
                    name,
                    format!(
                        "{stream} goes to {} as {other}'s {other_stream} does, with other \
                         rotation settings \
                         ({stream}_maxbytes {} and {stream}_backups {} here, {} and {} there): \
                         a file shared by streams must rotate alike",
                        file.display(),
                        rotation.maxbytes,
                        rotation.backups,
                        theirs.maxbytes,
                        theirs.backups,
                    ),
                )),
                Some(_) => {}
                None => {
                    first_writer.insert(file, (name, stream, rotation));
                }
            }
        }
    }
    conflicts
}
