//! The layering of `src/`, checked: every reference from one file to
//! another (`crate::…` and `super::…` paths outside test code) must point
//! down the layers below, and no files may depend on each other in a cycle.
//!
//! ```text
//! cli                          the command line (main.rs calls it)
//! servers                      the wire: pgwire, HTTP, the console
//! engine                       the one API the servers call
//! query sql import export sys catalog config   (acyclic among themselves)
//! storage                      files, locations, buckets, the Delta log
//! metrics time schema heap     leaves, below everything but error
//! error
//! ```

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    const MIDDLE: u8 = 3;

    /// The layer of each top-level module; a file may name files of its
    /// own module or of a lower layer (the middle layer's modules may name
    /// each other, as long as no cycle forms).
    fn layer(module: &str) -> Option<u8> {
        Some(match module {
            "error" => 0,
            "metrics" | "time" | "schema" | "heap" => 1,
            "storage" => 2,
            "query" | "sql" | "import" | "export" | "sys" | "catalog" | "config" => MIDDLE,
            "engine" => 4,
            "servers" => 5,
            "cli" => 6,
            _ => return None,
        })
    }

    /// Every `.rs` file below `src/` by module path (`catalog::table`;
    /// a `mod.rs` is its directory's module), with whether it is a
    /// `mod.rs`, and its text before the first `#[cfg(test)]`.
    fn files() -> BTreeMap<String, (bool, String)> {
        fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, (bool, String)>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_stem().unwrap().to_string_lossy().to_string();
                let join = |n: &str| match prefix {
                    "" => n.to_string(),
                    _ => format!("{prefix}::{n}"),
                };
                if p.is_dir() {
                    walk(&p, &join(&name), out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    let text = match text.find("#[cfg(test)]") {
                        Some(i) => text[..i].to_string(),
                        None => text,
                    };
                    let (module, is_mod) = match name.as_str() {
                        "mod" => (prefix.to_string(), true),
                        "lib" | "main" if prefix.is_empty() => continue,
                        _ => (join(&name), false),
                    };
                    out.insert(module, (is_mod, text));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            "",
            &mut out,
        );
        out
    }

    /// The paths after `crate::` or `super::` in `text`, comments left out.
    fn paths(text: &str) -> Vec<(bool, Vec<String>)> {
        let code: String = text
            .lines()
            .map(|l| match l.find("//") {
                Some(i) => &l[..i],
                None => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut out = Vec::new();
        for (base, is_crate) in [("crate::", true), ("super::", false)] {
            let mut rest = code.as_str();
            while let Some(i) = rest.find(base) {
                let before = rest[..i].chars().last();
                rest = &rest[i + base.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                let segs: Vec<String> = rest[..end]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                out.push((is_crate, segs));
            }
        }
        out
    }

    /// File-to-file edges.
    fn edges() -> BTreeMap<String, BTreeSet<String>> {
        let files = files();
        let resolve = |segs: &[String]| {
            (1..=segs.len())
                .rev()
                .map(|k| segs[..k].join("::"))
                .find(|m| files.contains_key(m))
        };
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (module, (_, text)) in &files {
            // `super` is the parent of the file's module (a mod.rs's
            // module is its directory).
            let mut sup: Vec<String> = module.split("::").map(str::to_string).collect();
            sup.pop();
            for (is_crate, segs) in paths(text) {
                let full: Vec<String> = if is_crate {
                    segs
                } else {
                    sup.iter().cloned().chain(segs).collect()
                };
                if let Some(target) = resolve(&full)
                    && &target != module
                {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
        edges
    }

    #[test]
    fn references_point_down_the_layers() {
        let mut up = Vec::new();
        for (from, tos) in edges() {
            let a = from.split("::").next().unwrap().to_string();
            for to in tos {
                let b = to.split("::").next().unwrap();
                if a == b {
                    continue;
                }
                let (Some(la), Some(lb)) = (layer(&a), layer(b)) else {
                    up.push(format!("{from} -> {to} (a module without a layer)"));
                    continue;
                };
                // The servers see the engine and the leaves only.
                let servers_skip = a == "servers" && lb > 1 && b != "engine";
                if lb > la || (lb == la && la != MIDDLE) || servers_skip {
                    up.push(format!("{from} -> {to}"));
                }
            }
        }
        assert!(
            up.is_empty(),
            "references that point up:\n{}",
            up.join("\n")
        );
    }

    #[test]
    fn no_files_depend_on_each_other_in_a_cycle() {
        let edges = edges();
        // Every cycle shows as a file that reaches itself.
        let mut cycles = Vec::new();
        for start in edges.keys() {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
            while let Some((at, path)) = stack.pop() {
                for next in edges.get(&at).into_iter().flatten() {
                    if next == start {
                        cycles.push(format!("{} -> {start}", path.join(" -> ")));
                    } else if seen.insert(next.clone()) {
                        let mut p = path.clone();
                        p.push(next.clone());
                        stack.push((next.clone(), p));
                    }
                }
            }
        }
        cycles.sort_by_key(|c| c.len());
        assert!(
            cycles.is_empty(),
            "cycles between files:\n{}",
            cycles.join("\n")
        );
    }

    #[test]
    fn the_check_sees_references() {
        let edges = edges();
        // A known downward edge of each kind: `crate::` and `super::`.
        assert!(edges["catalog::meta"].contains("schema"), "{edges:?}");
        assert!(
            edges["storage::delta"].contains("storage::location"),
            "{edges:?}"
        );
        assert!(
            edges["servers::pgwire::handler"].contains("engine"),
            "{edges:?}"
        );
    }
}
