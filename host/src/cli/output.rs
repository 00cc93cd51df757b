//! Everything the CLI prints for people: tables, summaries, progress bars and errors.
//! Logging goes through `tracing` to stderr; this module owns stdout.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tessera::jobs::RunOutcome;
use tessera::plugins::params::{default_value, value_text};
use tessera::runtime::printable;
use tessera::store::{ImageRecord, PluginRecord};

/// Prints an error as one line with its causes, on stderr.
pub fn error(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
}

/// A progress bar for one plugin run.
pub fn run_bar(prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{prefix:<40} [{bar:30}] {percent:>3}% {elapsed:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

/// One imported file.
pub fn imported(image: &ImageRecord, new: bool) {
    let what = if new { "imported" } else { "already in store" };
    println!(
        "{what:<17} {}  {}  {}x{}  {} levels  {}",
        image.id,
        image.name,
        image.info.width,
        image.info.height,
        image.info.levels.len(),
        image.info.format
    );
}

/// The images in the store.
pub fn images(images: &[ImageRecord]) {
    if images.is_empty() {
        println!("no images; hint: `tessera import FILE`");
        return;
    }
    println!(
        "{:<22} {:<32} {:>12} {:>7} {:>7}",
        "ID", "NAME", "SIZE", "LEVELS", "FORMAT"
    );
    for i in images {
        println!(
            "{:<22} {:<32} {:>12} {:>7} {:>7}",
            i.id,
            i.name,
            format!("{}x{}", i.info.width, i.info.height),
            i.info.levels.len(),
            i.info.format.to_string()
        );
    }
}

/// One installed plugin.
pub fn installed(record: &PluginRecord) {
    let p = &record.manifest.plugin;
    println!(
        "installed {} {} (api {}, component {})",
        p.id,
        p.version,
        p.api,
        &record.component_digest[..12]
    );
}

/// The installed plugins with their parameters.
pub fn plugins(records: &[PluginRecord]) {
    if records.is_empty() {
        println!("no plugins installed; hint: `tessera plugin install PACKAGE`");
        return;
    }
    for r in records {
        let m = &r.manifest;
        let g = r.grant();
        println!(
            "{} {}  {}  api {}  {}  data {}  write {}  gpu {} MiB  memory {} MiB  time {} s",
            m.plugin.id,
            m.plugin.version,
            m.plugin.kind,
            m.plugin.api,
            if r.enabled { "enabled" } else { "disabled" },
            g.data,
            g.write,
            g.gpu_memory_mib,
            g.memory_mib,
            g.time_seconds,
        );
        if !m.plugin.description.is_empty() {
            println!("    {}", m.plugin.description);
        }
        for d in &m.parameters {
            println!(
                "    --param {}=<{}> default {}{}  {}",
                d.name,
                tessera::plugins::manifest::type_name(d.kind),
                value_text(&default_value(d)),
                d.range_text(),
                d.description
            );
        }
    }
}

/// What one run produced.
pub fn run_summary(image: &ImageRecord, outcome: &RunOutcome, out: Option<&Path>) {
    let r = &outcome.record;
    let plural = if r.annotation_count == 1 { "" } else { "s" };
    println!(
        "{} on {} ({}): {} annotation{plural} in {}",
        r.plugin_id,
        image.name,
        image.id,
        r.annotation_count,
        human(outcome.elapsed)
    );
    for m in &r.measurements {
        let value = if m.value.fract() == 0.0 && m.value.abs() < 1e15 {
            format!("{}", m.value as i64)
        } else {
            format!("{:.6}", m.value)
        };
        let name = printable(&m.name, 64);
        let unit = printable(m.unit.as_deref().unwrap_or(""), 16);
        let line = format!("  {name:<24} {value:>14} {unit}");
        println!("{}", line.trim_end());
    }
    println!(
        "  result {}  geojson {}",
        r.id,
        outcome.geojson_path.display()
    );
    if let Some(out) = out {
        println!("  written to {}", out.display());
    }
}

/// A duration for people.
pub fn human(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}
