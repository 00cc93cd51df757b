//! `tessera serve`: the HTTP API over the data directory.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tessera::Tessera;
use tessera::server::{self, AppState, ServerOptions};
use tessera::store::DEFAULT_TEAM;

/// Serves until the process is stopped. On a store without users, creates the user `admin`
/// and prints its token once.
pub fn run(tessera: Tessera, addr: SocketAddr, options: ServerOptions) -> anyhow::Result<()> {
    let store = tessera.store();
    if store.users()?.is_empty() {
        let (user, token) = store.add_user("admin", &[DEFAULT_TEAM.to_string()], true)?;
        println!("created user `{}` (admin, team {DEFAULT_TEAM})", user.name);
        println!("admin token: {token}");
        println!("(shown once; `tessera user add NAME --team T` makes more)");
    }
    let state = AppState::new(Arc::new(tessera), options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(server::serve(state, addr, |bound| {
        println!("listening on http://{bound}");
    }))
}
