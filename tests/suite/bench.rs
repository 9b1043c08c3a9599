//! The benchmark suite's smoke mode (`flowc-bench --quick`): every section runs and reports
//! sensible counts. No timing is asserted: figures are for docs/performance.md, not for CI.

use std::path::Path;

#[test]
fn the_quick_suite_runs_every_section() {
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engine/bench");
    let mut options = flowc::bench::Options::quick(project);
    options.flowc_binary = Some(env!("CARGO_BIN_EXE_flowc").into());
    let report = flowc::bench::run(&options).expect("the quick suite runs");
    for section in [
        "engine", "state", "timers", "flows", "simulate", "binary", "check",
    ] {
        assert!(
            report.figures.iter().any(|f| f.section == section),
            "no `{section}` figure in\n{}",
            report.table()
        );
    }
    for figure in &report.figures {
        assert_eq!(figure.samples.len(), options.runs.max(1), "{figure:?}");
        assert!(
            figure.samples.iter().all(|v| v.is_finite() && *v >= 0.0),
            "{figure:?}"
        );
    }
    let size = "100 contacts";
    let records = report
        .find("records in the workload", size)
        .expect("records");
    assert!(records.median() > 500.0, "{}", report.table());
    let deliveries = report.find("delivery decisions", size).expect("deliveries");
    assert!(deliveries.median() > 0.0, "{}", report.table());
    let fired = report
        .find("contacts whose timer fired", size)
        .expect("timers");
    assert_eq!(fired.median(), 100.0, "every waiting cart fires once");
    // The check project of about 500 lines: every file parsed and checked, one re-checked.
    let check_size = &report
        .figures
        .iter()
        .find(|f| f.section == "check")
        .expect("check")
        .size;
    let lines = report.find("project lines", check_size).expect("lines");
    assert!(lines.median() >= 500.0, "{}", report.table());
    let files = report.find("project files", check_size).expect("files");
    assert!(files.median() >= 5.0, "{}", report.table());
    let edited = report
        .find("edited file lines", check_size)
        .expect("edited");
    assert!(
        edited.median() > 50.0 && edited.median() < lines.median(),
        "{}",
        report.table()
    );
    for name in [
        "parse + check of the whole project",
        "re-check after editing one file, project lines checked",
    ] {
        let rate = report.find(name, check_size).expect(name);
        assert!(rate.median() > 0.0, "{}", report.table());
    }
    assert!(report.table().lines().count() > report.figures.len());
    daemon_counts(&report);
}

/// The daemon sections (run against the real binary): counts only — every acknowledged
/// record applied, every waiting instance stored, every due timer fired, the reload seen.
fn daemon_counts(report: &flowc::bench::Report) {
    let table = report.table();
    for section in flowc::bench::daemon::SECTIONS {
        assert!(
            report.figures.iter().any(|f| f.section == section),
            "no `{section}` figure in\n{table}"
        );
    }
    for figure in &report.figures {
        assert_eq!(figure.samples.len(), 1, "{figure:?}");
        assert!(
            figure.samples.iter().all(|v| v.is_finite() && *v >= 0.0),
            "{figure:?}"
        );
    }
    let count = |name: &str| {
        report
            .figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no `{name}` in\n{table}"))
            .median()
    };
    assert_eq!(count("records acknowledged"), 400.0, "{table}");
    assert_eq!(count("waiting instances in the store"), 400.0, "{table}");
    assert_eq!(count("timers fired after the jump"), 400.0, "{table}");
    assert_eq!(count("timers fired while ingesting"), 400.0, "{table}");
    assert_eq!(count("orders acknowledged"), 2_000.0, "{table}");
    let per_instance = report
        .figures
        .iter()
        .find(|f| f.section == "daemon-disk")
        .expect("disk figure")
        .median();
    assert!(per_instance > 0.0, "{table}");
    assert!(report
        .figures
        .iter()
        .any(|f| f.section == "daemon-reload" && f.median() > 0.0));
}
