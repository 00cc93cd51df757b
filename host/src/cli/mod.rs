//! Command-line flags, parsed once into a [`tessera::Config`], and the commands themselves.

mod author;
mod demo;
mod gc;
mod gpu;
pub mod output;
mod plugin;
mod serve;
mod users;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tessera::config::{DATA_DIR_ENV, DEFAULT_DATA_DIR};
use tessera::jobs::{self, RunOptions};
use tessera::plugins::params::split_assignment;
use tessera::server;
use tessera::store::DEFAULT_PROJECT;
use tessera::{Config, Tessera};

/// Digital pathology data lake and app catalog with sandboxed WebAssembly plugins.
#[derive(Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// Data directory (metadata, blobs, caches, results).
    #[arg(long, global = true, env = DATA_DIR_ENV, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,

    /// More log output (-v: info, -vv: debug). `RUST_LOG` overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import image files (PNG, JPEG, TIFF, SVS) or every image in a directory.
    Import {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The project to import into.
        #[arg(long, default_value = DEFAULT_PROJECT)]
        project: String,
    },
    /// Serve the HTTP API (see docs/api.md). The data directory is locked while it runs.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Largest upload in bytes.
        #[arg(long, default_value_t = server::DEFAULT_MAX_UPLOAD_BYTES)]
        max_upload_bytes: u64,
        /// Runs executing at once.
        #[arg(long, default_value_t = server::DEFAULT_WORKERS)]
        workers: usize,
    },
    /// Manage API users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage teams.
    Team {
        #[command(subcommand)]
        command: TeamCommand,
    },
    /// Manage projects (grants and datasets are managed over the API).
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Remove blobs that no project, result or plugin refers to any more.
    Gc,
    /// Install, upgrade and manage plugins; create, build, test, pack and sign them.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Publisher key pairs for signing packages.
    Key {
        #[command(subcommand)]
        command: plugin::KeyCommand,
    },
    /// The publisher keys this data directory trusts.
    Trust {
        #[command(subcommand)]
        command: plugin::TrustCommand,
    },
    /// List the images in the store.
    Images,
    /// Run a plugin on an image (an id or name in the store, or a file, imported first).
    Run {
        /// Plugin id.
        plugin: String,
        /// Image id, image name, or path to an image file.
        image: String,
        /// A parameter, `name=value`; repeat for more.
        #[arg(long = "param", short = 'p')]
        params: Vec<String>,
        /// Also write the GeoJSON FeatureCollection to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The compute device of the plugins' GPU kernels.
    Gpu {
        #[command(subcommand)]
        command: gpu::GpuCommand,
    },
    /// The main job: import the bundled samples, install the first-party plugins, run them all.
    Demo {
        /// Directory of sample images.
        #[arg(long, default_value = "examples/data")]
        samples: PathBuf,
        /// Directory of first-party plugins (each with a tessera.toml, built for wasm32-wasip2).
        #[arg(long, default_value = "plugins")]
        plugins: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (or give it a new token); prints the token once.
    Add {
        /// User name (a-z, 0-9, -).
        name: String,
        /// A team to belong to (created if missing); repeat for more.
        #[arg(long = "team", required = true)]
        teams: Vec<String>,
        /// Give the admin role.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Subcommand)]
enum TeamCommand {
    /// Create a team.
    Add {
        /// Team name (a-z, 0-9, -).
        name: String,
    },
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project owned by a team; prints its id.
    Add {
        /// Display name.
        name: String,
        /// Owning team.
        #[arg(long)]
        team: String,
    },
}

/// Sends `tracing` output to stderr; quiet by default so progress bars stay readable.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,tessera=info",
        _ => "debug,cranelift=info,wasmtime=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::new(cli.data_dir);
    let open = || {
        Tessera::open(config.clone())
            .with_context(|| format!("cannot open data directory {}", config.data_dir.display()))
    };
    match cli.command {
        Command::Import { paths, project } => import(&open()?, &paths, &project),
        Command::Serve {
            addr,
            max_upload_bytes,
            workers,
        } => {
            let options = server::ServerOptions {
                max_upload_bytes,
                workers,
            };
            serve::run(open()?, addr, options)
        }
        Command::User {
            command: UserCommand::Add { name, teams, admin },
        } => users::add_user(&open()?, &name, &teams, admin),
        Command::Team {
            command: TeamCommand::Add { name },
        } => users::add_team(&open()?, &name),
        Command::Project {
            command: ProjectCommand::Add { name, team },
        } => users::add_project(&open()?, &name, &team),
        Command::Gc => gc::run(&open()?),
        Command::Images => {
            output::images(&open()?.store().images()?);
            Ok(())
        }
        Command::Plugin { command } => plugin::run(command, &open),
        Command::Key { command } => plugin::key(command),
        Command::Trust { command } => plugin::trust(&open()?, command),
        Command::Run {
            plugin,
            image,
            params,
            out,
        } => run_one(&open()?, &plugin, &image, &params, out.as_deref()),
        Command::Demo { samples, plugins } => demo::run(&open()?, &samples, &plugins),
        Command::Gpu { command } => gpu::run(command),
    }
}

/// The image files in `paths` (directories are listed, non-image extensions skipped there).
pub fn image_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "tif", "tiff", "svs"];
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn import(t: &Tessera, paths: &[PathBuf], project: &str) -> anyhow::Result<()> {
    if t.store().project(project)?.is_none() {
        anyhow::bail!("no project `{project}`; hint: `tessera project add NAME --team T`");
    }
    let files = image_files(paths)?;
    let mut failed = 0;
    for file in &files {
        match t.import_file_to(file, project) {
            Ok((record, new)) => output::imported(&record, new),
            Err(e) => {
                failed += 1;
                output::error(&anyhow::Error::from(e));
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files could not be imported", files.len());
    }
    Ok(())
}

fn run_one(
    t: &Tessera,
    plugin: &str,
    image: &str,
    raw_params: &[String],
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let params = raw_params
        .iter()
        .map(|p| split_assignment(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let record = if Path::new(image).is_file() && t.find_image(image).is_err() {
        t.import_file(Path::new(image))?.0
    } else {
        t.find_image(image)?
    };

    let bar = output::run_bar(&format!("{plugin} on {}", record.name));
    let progress_bar = bar.clone();
    let options = RunOptions {
        params,
        progress: Some(Arc::new(move |done, total| {
            progress_bar.set_length(total);
            progress_bar.set_position(done);
        })),
        ..RunOptions::default()
    };
    let outcome = jobs::run_on_image(t, plugin, &record, options);
    bar.finish_and_clear();
    let outcome = outcome?;

    if let Some(out) = out {
        std::fs::write(out, &outcome.geojson)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    output::run_summary(&record, &outcome, out);
    Ok(())
}
