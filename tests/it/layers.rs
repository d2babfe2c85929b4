//! The module map of `src/lib.rs` is true: each top-level module's code imports only
//! modules the map lists before it, so no import goes up a layer and none goes round
//! in a circle; every module is on the map.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The modules in the order the `# Layout` list of `src/lib.rs` names them.
fn layout_order(lib: &str) -> Vec<String> {
    let mut order = Vec::new();
    for line in lib.lines().filter_map(|line| line.strip_prefix("//! - ")) {
        let head = line.split(':').next().unwrap_or_default();
        for name in head.split("[`").skip(1) {
            let name = name.split('`').next().unwrap_or_default();
            if !name.contains("::") && !order.iter().any(|known| known == name) {
                order.push(name.to_owned());
            }
        }
    }
    order
}

/// A module's source files: `src/<name>.rs`, or every file under `src/<name>/` but
/// the sibling test files.
fn files_of(src: &Path, name: &str) -> Vec<PathBuf> {
    let file = src.join(format!("{name}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut files = Vec::new();
    let mut dirs = vec![src.join(name)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs")
                && path.file_name().is_some_and(|file| file != "tests.rs")
            {
                files.push(path);
            }
        }
    }
    files
}

/// The top-level modules a file's code (not its comments, not its tests) names.
fn imports_of(text: &str, known: &[String]) -> BTreeSet<String> {
    let code = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .flat_map(|line| line.split("crate::").skip(1))
        .map(|rest| {
            rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
        })
        .filter_map(|name| known.iter().find(|known| Some(known.as_str()) == name))
        .cloned()
        .collect()
}

#[test]
fn the_module_map_is_true_and_no_import_goes_up() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let order = layout_order(&lib);
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("pub mod "))
        .map(|name| name.trim_end_matches(';'))
        .collect();
    for name in &declared {
        assert!(
            order.iter().any(|known| known == name),
            "lib.rs's map leaves out `{name}`"
        );
    }
    let mut upward = Vec::new();
    for (level, name) in order.iter().enumerate() {
        for file in files_of(&src, name) {
            let text = std::fs::read_to_string(&file).unwrap();
            for import in imports_of(&text, &order) {
                let at = order.iter().position(|known| *known == import).unwrap();
                if at > level {
                    upward.push(format!("{} imports {import}", file.display()));
                }
            }
        }
    }
    assert!(upward.is_empty(), "imports going up a layer: {upward:#?}");
}
