//! `flowc build`: the compiled project as JSON.
//!
//! Owns: the command's output (the whole [`crate::compile::CompiledProject`], pretty-printed,
//! every flow with its content hash).
//! Must not: compile anything itself (that is `compile`).

use crate::cli::{BuildArgs, EXIT_CANNOT_RUN, EXIT_OK};

/// `flowc build [PROJECT] [--out FILE]`.
pub fn command(args: &BuildArgs) -> u8 {
    let project = match crate::simulate::load_compiled(&args.project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let json = match serde_json::to_string_pretty(&project) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: cannot serialise the compiled project: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, json + "\n") {
                eprintln!("error: cannot write `{}`: {e}", path.display());
                return EXIT_CANNOT_RUN;
            }
            for flow in &project.flows {
                eprintln!("{} {}", &flow.hash[..12.min(flow.hash.len())], flow.name);
            }
        }
        None => println!("{json}"),
    }
    EXIT_OK
}
