//! `tessera plugin …`, `tessera key …` and `tessera trust …`: the admin's and the plugin
//! author's commands. Admin actions go through `tessera::plugins::admin`, as the HTTP routes
//! do; author commands (new, build, test, pack, sign) are in [`super::author`].

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use tessera::Tessera;
use tessera::plugins::admin::{self, Approval, Options, Outcome, Review, Source};
use tessera::plugins::{catalog, keys};

use super::author;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Install a plugin: a package file, a catalog entry (`CATALOG#ID[@VERSION]`, CATALOG a
    /// path or file:// URL of a catalog folder or its index.json), or a source directory
    /// (a development install: unsigned, installed without asking, replaces an older build).
    Install {
        /// Package file, catalog entry or plugin directory.
        source: String,
        #[command(flatten)]
        flags: InstallFlags,
    },
    /// Upgrade an installed plugin to a newer version, showing how its grant changes.
    Upgrade {
        /// Package file, catalog entry or plugin directory.
        source: String,
        #[command(flatten)]
        flags: InstallFlags,
    },
    /// List installed plugins with their state, grants and parameters.
    List,
    /// Let an installed plugin run again.
    Enable {
        /// Plugin id.
        id: String,
    },
    /// Keep a plugin installed but refuse to run it.
    Disable {
        /// Plugin id.
        id: String,
    },
    /// Uninstall a plugin; its results stay.
    Remove {
        /// Plugin id.
        id: String,
    },
    /// Search a catalog.
    Search {
        /// Words to look for in ids, names and descriptions (all plugins when empty).
        #[arg(default_value = "")]
        query: String,
        /// The catalog: a folder or index.json, as a path or file:// URL.
        #[arg(long)]
        catalog: String,
    },
    /// Write the catalog index (index.json) of a folder of packages.
    Catalog {
        /// Folder of .tpkg files.
        dir: PathBuf,
    },
    /// Create a new plugin crate.
    New {
        /// Plugin id and crate name.
        name: String,
        /// Kind of plugin.
        #[arg(long, default_value = "algorithm")]
        kind: String,
        /// The tessera-sdk crate (default: the one of the source tree tessera was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build a plugin crate for wasm32-wasip2 and embed the plugin API version.
    Build {
        /// The plugin crate.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a plugin crate's built component on images, in a throwaway store.
    Test {
        /// The plugin crate.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// An image file; repeat for more. Without one, the bundled samples are used.
        #[arg(long)]
        image: Vec<PathBuf>,
        /// Folder of sample images (default: examples/data of the source tree).
        #[arg(long)]
        samples: Option<PathBuf>,
        /// A parameter, `name=value`; repeat for more.
        #[arg(long = "param", short = 'p')]
        params: Vec<String>,
        /// The component file, when not the crate's build output.
        #[arg(long)]
        component: Option<PathBuf>,
    },
    /// Pack a plugin crate into one package file (manifest, component, README, icon).
    Pack {
        /// The plugin crate.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The component file, when not the crate's build output.
        #[arg(long)]
        component: Option<PathBuf>,
        /// The package file (default: DIR/ID-VERSION.tpkg).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Sign a package with a publisher's secret key (replacing any signature).
    Sign {
        /// The package file.
        package: PathBuf,
        /// The secret key file written by `tessera key new`.
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct InstallFlags {
    /// For a directory: the component file, when not found in the cargo target dir.
    #[arg(long)]
    component: Option<PathBuf>,
    /// Accept unsigned packages and packages signed by untrusted publisher keys.
    #[arg(long)]
    allow_unsigned: bool,
    /// Approve the grant without asking.
    #[arg(long, short = 'y')]
    yes: bool,
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Write a new publisher key pair: NAME.key (secret) and NAME.pub (public).
    New {
        /// Publisher name, also the file name.
        name: String,
        /// Folder to write the files into.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum TrustCommand {
    /// Trust a publisher's public key (a .pub file); check its key id with the publisher.
    Add {
        /// The public key file.
        key: PathBuf,
        /// Name to list it under (default: the name in the file).
        #[arg(long)]
        name: Option<String>,
    },
    /// List trusted publisher keys.
    List,
    /// Stop trusting a key (plugins it signed stay installed).
    Remove {
        /// The key id.
        key_id: String,
    },
}

/// Runs a plugin command; `open` opens the data directory (author commands do not need it).
pub fn run(
    command: PluginCommand,
    open: &dyn Fn() -> anyhow::Result<Tessera>,
) -> anyhow::Result<()> {
    match command {
        PluginCommand::Install { source, flags } => install(&open()?, &source, flags, false),
        PluginCommand::Upgrade { source, flags } => install(&open()?, &source, flags, true),
        PluginCommand::List => {
            super::output::plugins(&open()?.store().plugins()?);
            Ok(())
        }
        PluginCommand::Enable { id } => {
            let p = admin::set_enabled(&open()?, &id, true)?;
            println!("enabled {} {}", p.id, p.version);
            Ok(())
        }
        PluginCommand::Disable { id } => {
            let p = admin::set_enabled(&open()?, &id, false)?;
            println!("disabled {} {}", p.id, p.version);
            Ok(())
        }
        PluginCommand::Remove { id } => {
            let p = admin::remove(&open()?, &id)?;
            println!("removed {} {} (its results stay)", p.id, p.version);
            Ok(())
        }
        PluginCommand::Search { query, catalog } => {
            let found = admin::search(&catalog, &query)?;
            if found.is_empty() {
                println!("no plugin matches `{query}`");
            }
            for p in found {
                let versions: Vec<&str> = p.versions.iter().map(|v| v.version.as_str()).collect();
                let newest = p.versions.last();
                println!(
                    "{:<24} {:<10} api {:<7} {}  versions {}",
                    p.id,
                    newest.map_or("", |v| v.version.as_str()),
                    newest.map_or("", |v| v.api.as_str()),
                    newest
                        .and_then(|v| v.publisher_key.as_deref())
                        .map_or("unsigned".to_string(), |k| format!("key {k}")),
                    versions.join(", ")
                );
                if !p.description.is_empty() {
                    println!("    {}", p.description);
                }
            }
            Ok(())
        }
        PluginCommand::Catalog { dir } => {
            let index = catalog::build(&dir)?;
            let count: usize = index.plugins.iter().map(|p| p.versions.len()).sum();
            println!(
                "wrote {} ({} plugins, {count} packages)",
                dir.join(catalog::INDEX_FILE).display(),
                index.plugins.len()
            );
            Ok(())
        }
        PluginCommand::New {
            name,
            kind,
            sdk,
            dir,
        } => author::new(&name, &kind, sdk, dir),
        PluginCommand::Build { dir } => author::build(&dir).map(|_| ()),
        PluginCommand::Test {
            dir,
            image,
            samples,
            params,
            component,
        } => author::test(&dir, component, &image, samples, &params),
        PluginCommand::Pack {
            dir,
            component,
            out,
        } => author::pack(&dir, component, out),
        PluginCommand::Sign { package, key } => author::sign(&package, &key),
    }
}

fn install(t: &Tessera, source: &str, flags: InstallFlags, upgrade: bool) -> anyhow::Result<()> {
    let source = Source::parse(source, flags.component);
    let options = Options {
        allow_unsigned: flags.allow_unsigned,
    };
    let mut ask = |review: &Review| confirm(review, upgrade);
    // A source directory is the admin's own development build: shown, not asked about.
    let development = matches!(source, Source::Directory { .. });
    let approval = if flags.yes || development {
        Approval::Yes
    } else {
        Approval::Ask(&mut ask)
    };
    let outcome = if upgrade {
        admin::upgrade(t, &source, options, approval)?
    } else {
        admin::install(t, &source, options, approval)?
    };
    match outcome {
        Outcome::Installed { review, plugin } => {
            if flags.yes || development {
                print_review(&review);
            }
            let verb = if upgrade { "upgraded" } else { "installed" };
            println!(
                "{verb} {} {} (api {}, component {})",
                plugin.id,
                plugin.version,
                plugin.api,
                &plugin.component_digest[..12]
            );
            Ok(())
        }
        Outcome::Unchanged { plugin } => {
            println!("{} {} is already installed", plugin.id, plugin.version);
            Ok(())
        }
        Outcome::Declined { review } => {
            anyhow::bail!(
                "not approved: {} {} was not installed",
                review.id,
                review.version
            )
        }
    }
}

/// Prints what the plugin asks for.
fn print_review(review: &Review) {
    println!(
        "{} {} ({}, plugin api {}): {}",
        review.id, review.version, review.kind, review.api, review.name
    );
    println!("  {}", review.signer.describe());
    if let Some(old) = &review.installed {
        println!("  replaces {} {}", review.id, old.version);
        if review.changes.is_empty() {
            println!("  grant unchanged");
        }
        for c in &review.changes {
            let more = if c.widens { "  (more access)" } else { "" };
            println!("  {:<16} {} -> {}{more}", c.field, c.from, c.to);
        }
    } else {
        println!("  it asks for:");
        for (field, value) in review.grant.fields() {
            println!("  {field:<16} {value}");
        }
    }
}

/// Shows the review and asks on the terminal.
fn confirm(review: &Review, upgrade: bool) -> bool {
    print_review(review);
    if !std::io::stdin().is_terminal() {
        eprintln!("error: confirmation needed; hint: pass --yes to approve without asking");
        return false;
    }
    let verb = if upgrade { "upgrade" } else { "install" };
    print!("{verb} with this grant? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Runs a key command.
pub fn key(command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::New { name, dir } => {
            let (secret, public) = keys::generate(&name).map_err(anyhow::Error::msg)?;
            let secret_path = dir.join(format!("{name}.key"));
            let public_path = dir.join(format!("{name}.pub"));
            keys::write(&secret_path, &secret)?;
            if let Err(e) = keys::write(&public_path, &public) {
                let _ = std::fs::remove_file(&secret_path);
                return Err(e.into());
            }
            println!("key {} for {name}", public.key_id);
            println!("  secret {} (keep it private)", secret_path.display());
            println!(
                "  public {} (admins: `tessera trust add`)",
                public_path.display()
            );
            Ok(())
        }
    }
}

/// Runs a trust command.
pub fn trust(t: &Tessera, command: TrustCommand) -> anyhow::Result<()> {
    match command {
        TrustCommand::Add { key, name } => {
            let file = keys::read(&key, keys::PUBLIC_KIND)?;
            let added = admin::trust_add(t, &file, name.as_deref())
                .with_context(|| format!("trusting {}", key.display()))?;
            println!("trusted key {} of {}", added.key_id, added.name);
            Ok(())
        }
        TrustCommand::List => {
            let keys = admin::trust_list(t)?;
            if keys.is_empty() {
                println!("no trusted keys; hint: `tessera trust add KEY.pub`");
            }
            for k in keys {
                println!("{}  {:<24} added {}", k.key_id, k.name, k.added_at);
            }
            Ok(())
        }
        TrustCommand::Remove { key_id } => {
            admin::trust_remove(t, &key_id)?;
            println!("no longer trusting key {key_id}");
            Ok(())
        }
    }
}
