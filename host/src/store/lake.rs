//! The lake's metadata: teams, users, projects and their grants, project membership of images,
//! datasets, runs, the change feed, and garbage collection of blobs.
//!
//! Keys (all ids pass [`is_id`], so `/` never occurs inside one):
//!
//! ```text
//! teams        name                 -> TeamRecord
//! users        name                 -> UserRecord
//! tokens       sha256(token) hex    -> user name
//! projects     id                   -> ProjectRecord
//! members      project/image        -> MemberRecord   (an image in a project; no pixels)
//! datasets     project/dataset      -> DatasetRecord
//! runs         id                   -> RunRecord
//! changes      u64 big-endian       -> ChangeRecord   (the feed, in order)
//! ```
//!
//! An image record (`images`, keyed by the content-derived id) is shared by every project that
//! holds the image; a project sees it only through its `members` entry. So copying an image
//! between projects writes one small record, and removing it from a project leaves the pixels
//! for the others until `gc` finds no project, result or plugin refers to them.

use std::collections::HashSet;

use sha2::{Digest, Sha256};
use sled::Transactional;
use sled::transaction::TransactionError;

use super::{
    ChangeKind, ChangeOp, ChangeRecord, DEFAULT_PROJECT, DEFAULT_TEAM, DatasetRecord, ImageRecord,
    MemberRecord, ProjectRecord, Result, RunRecord, RunState, Store, StoreError, TeamRecord,
    UserRecord, decode,
};

/// Longest id.
pub const MAX_ID_LEN: usize = 64;

/// True for a valid id or name: 1 to [`MAX_ID_LEN`] of `a-z`, `0-9`, `-`. Every id that comes
/// from outside is checked with this before it reaches a key.
pub fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What `gc` removed.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Blob files removed.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Image records no project held any more.
    pub images: u64,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl Store {
    pub(super) fn ensure_default_project(&self) -> Result<()> {
        if self.team(DEFAULT_TEAM)?.is_none() {
            self.put_team(DEFAULT_TEAM)?;
        }
        if self.project(DEFAULT_PROJECT)?.is_none() {
            let project = ProjectRecord {
                id: DEFAULT_PROJECT.to_string(),
                name: DEFAULT_PROJECT.to_string(),
                team: DEFAULT_TEAM.to_string(),
                grants: Default::default(),
                created_at: crate::time::now(),
            };
            self.put(&self.projects, &project.id, &project)?;
        }
        Ok(())
    }

    // ---- teams and users ----

    /// Creates a team (or returns the existing one).
    pub fn put_team(&self, name: &str) -> Result<TeamRecord> {
        if let Some(team) = self.team(name)? {
            return Ok(team);
        }
        let team = TeamRecord {
            name: name.to_string(),
            created_at: crate::time::now(),
        };
        self.put(&self.teams, name, &team)?;
        Ok(team)
    }

    /// The team `name`.
    pub fn team(&self, name: &str) -> Result<Option<TeamRecord>> {
        self.get(&self.teams, "team", name)
    }

    /// Every team.
    pub fn teams(&self) -> Result<Vec<TeamRecord>> {
        self.list(&self.teams, "team")
    }

    /// Creates a user with a fresh random token, which is returned and never stored.
    pub fn add_user(
        &self,
        name: &str,
        teams: &[String],
        admin: bool,
    ) -> Result<(UserRecord, String)> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| StoreError::Io {
            path: self.root.clone(),
            cause: std::io::Error::other(format!("no random numbers for a token: {e}")),
        })?;
        let token = hex::encode(raw);
        let user = UserRecord {
            name: name.to_string(),
            teams: teams.to_vec(),
            admin,
            token_sha256: sha256_hex(&token),
            created_at: crate::time::now(),
        };
        for team in teams {
            self.put_team(team)?;
        }
        if let Some(old) = self.user(name)? {
            self.tokens
                .remove(old.token_sha256.as_bytes())
                .map_err(|e| self.db_error(e))?;
        }
        self.put(&self.users, name, &user)?;
        self.tokens
            .insert(user.token_sha256.as_bytes(), name.as_bytes())
            .map_err(|e| self.db_error(e))?;
        self.flush()?;
        Ok((user, token))
    }

    /// The user `name`.
    pub fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        self.get(&self.users, "user", name)
    }

    /// Every user.
    pub fn users(&self) -> Result<Vec<UserRecord>> {
        self.list(&self.users, "user")
    }

    /// The user holding `token`, if any.
    pub fn user_by_token(&self, token: &str) -> Result<Option<UserRecord>> {
        let hash = sha256_hex(token);
        let Some(name) = self
            .tokens
            .get(hash.as_bytes())
            .map_err(|e| self.db_error(e))?
        else {
            return Ok(None);
        };
        let user = self.user(&String::from_utf8_lossy(&name))?;
        // A token survives only as long as it is the user's current one.
        Ok(user.filter(|u| u.token_sha256 == hash))
    }

    // ---- projects ----

    /// Saves a project.
    pub fn put_project(&self, project: &ProjectRecord) -> Result<()> {
        self.put(&self.projects, &project.id, project)
    }

    /// The project `id`.
    pub fn project(&self, id: &str) -> Result<Option<ProjectRecord>> {
        self.get(&self.projects, "project", id)
    }

    /// Every project.
    pub fn projects(&self) -> Result<Vec<ProjectRecord>> {
        self.list(&self.projects, "project")
    }

    // ---- images in projects ----

    /// Puts `image` into `project` under `name`; returns false if it was there already.
    pub fn add_member(
        &self,
        project: &str,
        image: &ImageRecord,
        name: &str,
    ) -> Result<(MemberRecord, bool)> {
        let key = format!("{project}/{}", image.id);
        if let Some(existing) = self.get::<MemberRecord>(&self.members, "member", &key)? {
            return Ok((existing, false));
        }
        let member = MemberRecord {
            project: project.to_string(),
            image: image.id.clone(),
            name: name.to_string(),
            added_at: crate::time::now(),
        };
        self.put(&self.members, &key, &member)?;
        self.record_change(
            ChangeOp::Created,
            ChangeKind::Image,
            project,
            &image.id,
            None,
            None,
        )?;
        Ok((member, true))
    }

    /// The membership of `image` in `project`.
    pub fn member(&self, project: &str, image: &str) -> Result<Option<MemberRecord>> {
        self.get(&self.members, "member", &format!("{project}/{image}"))
    }

    /// The images of `project`, by id.
    pub fn members(&self, project: &str) -> Result<Vec<MemberRecord>> {
        self.scan(&self.members, "member", &format!("{project}/"))
    }

    /// Removes `image` from `project` with its annotations there and its place in datasets.
    /// The pixels stay until `gc`.
    ///
    /// Everything is read first and then written in one sled transaction (membership,
    /// collection records, feature rows, datasets and the `deleted` change), so a failure at
    /// any point leaves the image fully in place or fully removed. Collections are found by
    /// key, so an unreadable collection record does not block the removal.
    pub fn remove_member(&self, project: &str, image: &str) -> Result<bool> {
        let _writes = self.annotation_lock();
        let key = format!("{project}/{image}");
        if !self
            .members
            .contains_key(key.as_bytes())
            .map_err(|e| self.db_error(e))?
        {
            return Ok(false);
        }
        let prefix = format!("{project}/{image}/");
        let keys = |tree: &sled::Tree| -> Result<Vec<sled::IVec>> {
            tree.scan_prefix(prefix.as_bytes())
                .keys()
                .map(|k| k.map_err(|e| self.db_error(e)))
                .collect()
        };
        let collections = keys(&self.collections)?;
        let features = keys(&self.features)?;
        let mut datasets = Vec::new();
        for mut dataset in self.datasets(project)? {
            if dataset.images.iter().any(|i| i == image) {
                dataset.images.retain(|i| i != image);
                let bytes = serde_json::to_vec(&dataset).map_err(|e| StoreError::Corrupt {
                    kind: "dataset",
                    key: dataset.id.clone(),
                    reason: e.to_string(),
                })?;
                datasets.push((format!("{project}/{}", dataset.id), bytes));
            }
        }
        let (change_key, change) = self.change_entry(
            ChangeOp::Deleted,
            ChangeKind::Image,
            project,
            image,
            None,
            None,
        )?;
        (
            &self.members,
            &self.collections,
            &self.features,
            &self.datasets,
            &self.changes,
        )
            .transaction(|(m, c, f, d, ch)| {
                m.remove(key.as_bytes())?;
                for k in &collections {
                    c.remove(k)?;
                }
                for k in &features {
                    f.remove(k)?;
                }
                for (k, v) in &datasets {
                    d.insert(k.as_bytes(), v.as_slice())?;
                }
                ch.insert(&change_key, change.as_slice())?;
                Ok(())
            })
            .map_err(|e: TransactionError<()>| match e {
                TransactionError::Abort(()) => unreachable!("the transaction never aborts"),
                TransactionError::Storage(e) => self.db_error(e),
            })?;
        self.flush()?;
        Ok(true)
    }

    // ---- datasets ----

    /// Saves a dataset.
    pub fn put_dataset(&self, dataset: &DatasetRecord) -> Result<()> {
        self.put(
            &self.datasets,
            &format!("{}/{}", dataset.project, dataset.id),
            dataset,
        )
    }

    /// The dataset `id` of `project`.
    pub fn dataset(&self, project: &str, id: &str) -> Result<Option<DatasetRecord>> {
        self.get(&self.datasets, "dataset", &format!("{project}/{id}"))
    }

    /// The datasets of `project`.
    pub fn datasets(&self, project: &str) -> Result<Vec<DatasetRecord>> {
        self.scan(&self.datasets, "dataset", &format!("{project}/"))
    }

    /// Deletes a dataset (its images stay in the project).
    pub fn delete_dataset(&self, project: &str, id: &str) -> Result<bool> {
        let removed = self
            .datasets
            .remove(format!("{project}/{id}").as_bytes())
            .map_err(|e| self.db_error(e))?
            .is_some();
        self.flush()?;
        Ok(removed)
    }

    // ---- runs ----

    /// Saves a run.
    pub fn put_run(&self, run: &RunRecord) -> Result<()> {
        self.put(&self.runs, &run.id, run)
    }

    /// The run `id`.
    pub fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        self.get(&self.runs, "run", id)
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        self.list(&self.runs, "run")
    }

    /// Marks runs left queued or running by a previous process as interrupted; returns them.
    pub fn interrupt_unfinished_runs(&self) -> Result<Vec<RunRecord>> {
        let mut interrupted = Vec::new();
        for mut run in self.runs()? {
            if !run.state.is_terminal() {
                run.state = RunState::Interrupted;
                run.error = Some("the server stopped before the run finished".to_string());
                run.finished_at = Some(crate::time::now());
                self.put_run(&run)?;
                interrupted.push(run);
            }
        }
        Ok(interrupted)
    }

    // ---- change feed ----

    /// Appends an entry to the change feed.
    pub fn record_change(
        &self,
        op: ChangeOp,
        kind: ChangeKind,
        project: &str,
        image: &str,
        source: Option<&str>,
        result: Option<&str>,
    ) -> Result<()> {
        let (key, bytes) = self.change_entry(op, kind, project, image, source, result)?;
        self.changes
            .insert(key, bytes)
            .map_err(|e| self.db_error(e))?;
        self.flush()
    }

    /// The key and value of a new change record, for callers that write it in a transaction.
    pub(super) fn change_entry(
        &self,
        op: ChangeOp,
        kind: ChangeKind,
        project: &str,
        image: &str,
        source: Option<&str>,
        result: Option<&str>,
    ) -> Result<([u8; 8], Vec<u8>)> {
        let seq = self.db.generate_id().map_err(|e| self.db_error(e))?;
        let change = ChangeRecord {
            cursor: seq.to_string(),
            op,
            kind,
            project: project.to_string(),
            image: image.to_string(),
            source: source.map(str::to_string),
            result: result.map(str::to_string),
            at: crate::time::now(),
        };
        let bytes = serde_json::to_vec(&change).map_err(|e| StoreError::Corrupt {
            kind: "change",
            key: change.cursor.clone(),
            reason: e.to_string(),
        })?;
        Ok((seq.to_be_bytes(), bytes))
    }

    /// Changes after `since` for which `visible(project)` holds, at most `limit`, and the
    /// cursor to continue from.
    pub fn changes_since(
        &self,
        since: u64,
        limit: usize,
        visible: impl Fn(&str) -> bool,
    ) -> Result<(Vec<ChangeRecord>, u64)> {
        let mut out = Vec::new();
        let mut next = since;
        let start = since.saturating_add(1).to_be_bytes();
        for entry in self.changes.range(start..) {
            let (key, bytes) = entry.map_err(|e| self.db_error(e))?;
            let seq = u64::from_be_bytes(key.as_ref().try_into().unwrap_or_default());
            let change: ChangeRecord = decode("change", &seq.to_string(), &bytes)?;
            if visible(&change.project) {
                if out.len() == limit {
                    break;
                }
                out.push(change);
            }
            next = seq;
        }
        Ok((out, next))
    }

    // ---- garbage collection ----

    /// Removes image records no project holds, then every blob no image, plugin or result
    /// refers to.
    pub fn gc(&self) -> Result<GcReport> {
        let mut report = GcReport::default();
        let held: HashSet<String> = self
            .members
            .iter()
            .values()
            .map(|v| {
                let v = v.map_err(|e| self.db_error(e))?;
                decode::<MemberRecord>("member", "?", &v).map(|m| m.image)
            })
            .collect::<Result<_>>()?;
        let mut referenced = HashSet::new();
        for image in self.images()? {
            if held.contains(&image.id) {
                referenced.insert(image.digest);
            } else {
                self.images
                    .remove(image.id.as_bytes())
                    .map_err(|e| self.db_error(e))?;
                report.images += 1;
            }
        }
        referenced.extend(self.plugins()?.into_iter().map(|p| p.component_digest));
        referenced.extend(self.results()?.into_iter().map(|r| r.geojson_digest));
        self.flush()?;

        let blobs = self.root.join("blobs");
        for dir in std::fs::read_dir(&blobs)
            .map_err(super::io_err(&blobs))?
            .flatten()
        {
            let Ok(files) = std::fs::read_dir(dir.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                if referenced.contains(&name) {
                    continue;
                }
                let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(file.path()).map_err(super::io_err(&file.path()))?;
                report.blobs += 1;
                report.bytes += bytes;
            }
        }
        Ok(report)
    }

    // ---- helpers ----

    pub(super) fn scan<T: serde::de::DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        kind: &'static str,
        prefix: &str,
    ) -> Result<Vec<T>> {
        tree.scan_prefix(prefix.as_bytes())
            .map(|entry| {
                let (key, bytes) = entry.map_err(|e| self.db_error(e))?;
                decode(kind, &String::from_utf8_lossy(&key), &bytes)
            })
            .collect()
    }

    pub(super) fn flush(&self) -> Result<()> {
        self.db.flush().map_err(|e| self.db_error(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_path_characters() {
        assert!(is_id("prj-0000000012"));
        for bad in ["", "..", "a/b", "A", "a\\b", "a b", "é", &"a".repeat(65)] {
            assert!(!is_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_token_finds_its_user_and_a_new_token_retires_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (_, first) = store.add_user("ana", &["path".into()], false).unwrap();
        assert_eq!(store.user_by_token(&first).unwrap().unwrap().name, "ana");
        let (_, second) = store.add_user("ana", &["path".into()], false).unwrap();
        assert!(store.user_by_token(&first).unwrap().is_none());
        assert!(store.user_by_token(&second).unwrap().is_some());
        assert!(store.team("path").unwrap().is_some());
    }

    #[test]
    fn removing_an_image_changes_everything_or_nothing() {
        use crate::store::{BBox, StoredFeature};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let member = MemberRecord {
            project: "p".into(),
            image: "img-1".into(),
            name: "a.png".into(),
            added_at: "t".into(),
        };
        store.put(&store.members, "p/img-1", &member).unwrap();
        let feature = || StoredFeature {
            bbox: BBox {
                x0: 1.0,
                y0: 2.0,
                x1: 3.0,
                y1: 4.0,
            },
            json: b"{}".to_vec(),
        };
        store
            .put_features("p", "img-1", "manual", vec![feature()], true)
            .unwrap();
        let feed = |store: &Store| store.changes_since(0, 1000, |_| true).unwrap().0;
        let before = feed(&store).len();

        // An unreadable dataset makes the removal fail before anything is changed.
        store
            .datasets
            .insert("p/ds-1", b"{not json".as_slice())
            .unwrap();
        assert!(store.remove_member("p", "img-1").is_err());
        assert!(store.member("p", "img-1").unwrap().is_some());
        assert_eq!(store.collections("p", "img-1").unwrap().len(), 1);
        let n = store
            .query_features("p", "img-1", "manual", None, |_| {})
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(feed(&store).len(), before);

        // Repaired, it removes the membership, every collection (an unreadable one too), the
        // image's place in datasets, and records the change.
        store
            .put_dataset(&DatasetRecord {
                id: "ds-1".into(),
                project: "p".into(),
                name: "d".into(),
                images: vec!["img-1".into(), "img-2".into()],
                created_at: "t".into(),
            })
            .unwrap();
        store
            .collections
            .insert("p/img-1/broken", br#"{"max_width":null}"#.as_slice())
            .unwrap();
        assert!(store.remove_member("p", "img-1").unwrap());
        assert!(store.member("p", "img-1").unwrap().is_none());
        assert!(store.collections("p", "img-1").unwrap().is_empty());
        assert_eq!(store.features.len(), 0);
        let ds = store.dataset("p", "ds-1").unwrap().unwrap();
        assert_eq!(ds.images, vec!["img-2".to_string()]);
        let changes = feed(&store);
        let last = changes.last().unwrap();
        assert_eq!((last.op, last.kind), (ChangeOp::Deleted, ChangeKind::Image));
        assert_eq!(last.image, "img-1");

        // A collection created later starts empty, not with the old rows.
        store.put(&store.members, "p/img-1", &member).unwrap();
        store
            .put_features("p", "img-1", "manual", vec![feature()], false)
            .unwrap();
        let n = store
            .query_features("p", "img-1", "manual", None, |_| {})
            .unwrap();
        assert_eq!(n, 1);
    }
}
