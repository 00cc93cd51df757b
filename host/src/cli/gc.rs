//! `tessera gc`: removes blobs nothing refers to any more.

use tessera::Tessera;

/// Collects and prints what was freed.
pub fn run(t: &Tessera) -> anyhow::Result<()> {
    let report = t.store().gc()?;
    println!(
        "removed {} blobs ({:.1} MB) and {} image records no project holds",
        report.blobs,
        report.bytes as f64 / 1e6,
        report.images
    );
    Ok(())
}
