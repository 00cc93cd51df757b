//! `tessera user add`, `tessera team add`, `tessera project add`: what an admin needs before
//! the API is usable. Grants and datasets are managed over the API.

use anyhow::bail;
use tessera::Tessera;
use tessera::store::{ProjectRecord, is_id};

fn check(what: &str, id: &str) -> anyhow::Result<()> {
    if !is_id(id) {
        bail!("{what} `{id}` is not valid; use 1 to 64 of a-z, 0-9 and -");
    }
    Ok(())
}

/// Creates a user (and missing teams) and prints the token once.
pub fn add_user(t: &Tessera, name: &str, teams: &[String], admin: bool) -> anyhow::Result<()> {
    check("user name", name)?;
    if teams.is_empty() {
        bail!("a user needs at least one team; hint: --team NAME");
    }
    for team in teams {
        check("team name", team)?;
    }
    let replaced = t.store().user(name)?.is_some();
    let (user, token) = t.store().add_user(name, teams, admin)?;
    let role = if user.admin { "admin" } else { "member" };
    let what = if replaced {
        "new token for"
    } else {
        "created user"
    };
    println!(
        "{what} `{}` ({role}, teams {})",
        user.name,
        user.teams.join(", ")
    );
    println!("token: {token}");
    Ok(())
}

/// Creates a team.
pub fn add_team(t: &Tessera, name: &str) -> anyhow::Result<()> {
    check("team name", name)?;
    let team = t.store().put_team(name)?;
    println!("team `{}`", team.name);
    Ok(())
}

/// Creates a project owned by `team` and prints its id.
pub fn add_project(t: &Tessera, name: &str, team: &str) -> anyhow::Result<()> {
    check("team name", team)?;
    if t.store().team(team)?.is_none() {
        bail!("no team `{team}`; hint: `tessera team add {team}`");
    }
    let project = ProjectRecord {
        id: t.store().new_id("prj")?,
        name: name.to_string(),
        team: team.to_string(),
        grants: Default::default(),
        created_at: tessera::time::now(),
    };
    t.store().put_project(&project)?;
    println!("project {}  {}  (team {team})", project.id, project.name);
    Ok(())
}
