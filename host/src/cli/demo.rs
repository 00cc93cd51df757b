//! `tessera demo`: the bundled samples through the first-party plugins, with a table at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tessera::Tessera;
use tessera::jobs::{self, RunOptions};
use tessera::store::ImageRecord;

use super::output;

/// The plugins the demo runs, in order.
const DEMO_PLUGINS: &[&str] = &["tissue-detect", "nuclei-detect"];

struct Row {
    image: ImageRecord,
    nuclei: Option<f64>,
    mean_area: Option<f64>,
    tissue: Option<f64>,
    time: Duration,
    outputs: Vec<PathBuf>,
    failures: Vec<String>,
}

/// Imports every sample, installs every plugin under `plugins_dir`, runs the demo plugins.
pub fn run(t: &Tessera, samples: &Path, plugins_dir: &Path) -> anyhow::Result<()> {
    // 1. Samples.
    let files = super::image_files(&[samples.to_path_buf()])?;
    if files.is_empty() {
        anyhow::bail!("no sample images in {}", samples.display());
    }
    let mut images = Vec::new();
    for file in &files {
        let (record, new) = t.import_file(file)?;
        output::imported(&record, new);
        images.push(record);
    }

    // 2. Plugins.
    for id in DEMO_PLUGINS {
        let dir = plugins_dir.join(id);
        let record = t
            .install_plugin(&dir, None)
            .with_context(|| format!("installing {}", dir.display()))?;
        output::installed(&record);
    }

    // 3. Runs, with one bar overall and one per run.
    let multi = MultiProgress::new();
    let total = multi.add(ProgressBar::new((images.len() * DEMO_PLUGINS.len()) as u64));
    total.set_style(
        ProgressStyle::with_template("{prefix:<40} [{bar:30}] {pos}/{len} runs")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("##-"),
    );
    total.set_prefix("all samples");
    let mut rows = Vec::new();
    for image in images {
        let mut row = Row {
            image: image.clone(),
            nuclei: None,
            mean_area: None,
            tissue: None,
            time: Duration::ZERO,
            outputs: Vec::new(),
            failures: Vec::new(),
        };
        for plugin in DEMO_PLUGINS {
            let bar = multi.add(output::run_bar(&format!("{plugin} on {}", image.name)));
            let b = bar.clone();
            let options = RunOptions {
                progress: Some(Arc::new(move |done, total| {
                    b.set_length(total);
                    b.set_position(done);
                })),
                ..RunOptions::default()
            };
            match jobs::run_on_image(t, plugin, &image, options) {
                Ok(outcome) => {
                    let m = |name: &str| {
                        outcome
                            .record
                            .measurements
                            .iter()
                            .find(|m| m.name == name)
                            .map(|m| m.value)
                    };
                    row.nuclei = row.nuclei.or(m("nuclei-count"));
                    row.mean_area = row.mean_area.or(m("mean-nucleus-area"));
                    row.tissue = row.tissue.or(m("tissue-fraction"));
                    row.time += outcome.elapsed;
                    row.outputs.push(outcome.geojson_path);
                }
                Err(e) => row.failures.push(format!("{plugin}: {e}")),
            }
            bar.finish_and_clear();
            multi.remove(&bar);
            total.inc(1);
        }
        rows.push(row);
    }
    total.finish_and_clear();

    print_table(&rows);
    let failed: usize = rows.iter().map(|r| r.failures.len()).sum();
    if failed > 0 {
        anyhow::bail!("{failed} runs failed");
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    let cell =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    println!();
    println!(
        "{:<30} {:>11} {:>7} {:>16} {:>16} {:>10}",
        "IMAGE", "SIZE", "NUCLEI", "MEAN AREA (px)", "TISSUE FRACTION", "TIME"
    );
    for r in rows {
        println!(
            "{:<30} {:>11} {:>7} {:>16} {:>16} {:>10}",
            r.image.name,
            format!("{}x{}", r.image.info.width, r.image.info.height),
            cell(r.nuclei, 0),
            cell(r.mean_area, 1),
            cell(r.tissue, 4),
            output::human(r.time)
        );
    }
    println!();
    println!("GeoJSON results:");
    for r in rows {
        for p in &r.outputs {
            println!("  {}", p.display());
        }
        for f in &r.failures {
            println!("  failed: {} {f}", r.image.name);
        }
    }
}
