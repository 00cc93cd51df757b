//! `tessera gpu info`: the backend the plugins' kernels run on, its adapter and limits.

use clap::Subcommand;

use tessera::gpu::{BackendChoice, Gpu};

/// `tessera gpu ...`
#[derive(Subcommand)]
pub enum GpuCommand {
    /// Open the kernels' backend (as `TESSERA_GPU_BACKEND` or `--backend` chooses) and print
    /// it, its adapter and its limits.
    Info {
        /// `auto`, `wgpu`, `cuda` or `cpu`; default: the `TESSERA_GPU_BACKEND` setting.
        #[arg(long)]
        backend: Option<String>,
    },
}

/// Runs a `gpu` command. Needs no data directory.
pub fn run(command: GpuCommand) -> anyhow::Result<()> {
    match command {
        GpuCommand::Info { backend } => {
            let choice = match backend {
                Some(b) => BackendChoice::parse(&b),
                None => BackendChoice::from_env(),
            }
            .map_err(anyhow::Error::msg)?;
            let gpu = Gpu::open(choice)?;
            println!("backend   {}", gpu.kind().name());
            println!("adapter   {}", gpu.adapter());
            for (name, value) in gpu.limits() {
                println!("  {name:<26} {value}");
            }
            Ok(())
        }
    }
}
