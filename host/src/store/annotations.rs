//! Annotation features, stored so that a bounding-box query reads only nearby ones.
//!
//! Each feature is one sled entry:
//!
//! ```text
//! features     project/image/source \0 cell-x u32 BE, cell-y u32 BE, seq u64 BE
//!                  -> bbox (4 × f64 LE: x0 y0 x1 y1) + the feature's GeoJSON bytes
//! collections  project/image/source -> CollectionRecord (count, widest/tallest bbox, next seq)
//! ```
//!
//! A feature sits in the grid cell of its bbox's top-left corner ([`CELL_SIZE`] level-0
//! pixels). A feature meeting the query box has its corner at most the collection's largest
//! feature width (height) left of (above) the box, so a query visits only the cells of the box
//! grown by that much, one key range per cell column, and filters by the stored bbox header
//! without parsing the JSON.

use super::{ChangeKind, ChangeOp, CollectionRecord, Result, Store, StoreError};

/// Side of a grid cell in level-0 pixels.
pub const CELL_SIZE: f64 = 1024.0;

/// Length of the bbox header before each feature's JSON.
const HEADER: usize = 32;

/// An axis-aligned box in level-0 pixels, `x0 <= x1`, `y0 <= y1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl BBox {
    /// True when the boxes share at least a point.
    pub fn meets(&self, other: &BBox) -> bool {
        self.x0 <= other.x1 && other.x0 <= self.x1 && self.y0 <= other.y1 && other.y0 <= self.y1
    }
}

/// A feature ready to store: its bbox and its GeoJSON bytes.
pub struct StoredFeature {
    pub bbox: BBox,
    pub json: Vec<u8>,
}

/// The grid cell of a coordinate, shifted so that negative coordinates sort before positive.
fn cell(v: f64) -> u32 {
    let c = (v / CELL_SIZE)
        .floor()
        .clamp(i32::MIN as f64, i32::MAX as f64) as i64;
    (c + (1i64 << 31)) as u32
}

fn prefix(project: &str, image: &str, source: &str) -> Vec<u8> {
    let mut key = format!("{project}/{image}/{source}").into_bytes();
    key.push(0);
    key
}

fn collection_key(project: &str, image: &str, source: &str) -> String {
    format!("{project}/{image}/{source}")
}

impl Store {
    /// Stores `features` in the collection (project, image, source), replacing what it held
    /// when `replace`, appending otherwise. Written in one batch, under the store's annotation
    /// lock so that concurrent appends never reuse sequence numbers or lose counts.
    ///
    /// Every bbox must be finite with a finite width and height (the HTTP layer bounds
    /// coordinates to [`crate::annotations::MAX_COORDINATE`]); otherwise nothing is written.
    /// A replace also overwrites an unreadable collection record.
    pub fn put_features(
        &self,
        project: &str,
        image: &str,
        source: &str,
        features: Vec<StoredFeature>,
        replace: bool,
    ) -> Result<CollectionRecord> {
        let _writes = self.annotation_lock();
        let ckey = collection_key(project, image, source);
        for (i, f) in features.iter().enumerate() {
            let b = f.bbox;
            if ![b.x0, b.y0, b.x1, b.y1, b.x1 - b.x0, b.y1 - b.y0]
                .iter()
                .all(|v| v.is_finite())
            {
                return Err(StoreError::Corrupt {
                    kind: "feature",
                    key: format!("{ckey} #{i}"),
                    reason: format!("bbox {b:?} or its size is not finite"),
                });
            }
        }
        let present = self
            .collections
            .contains_key(ckey.as_bytes())
            .map_err(|e| self.db_error(e))?;
        let existing = if replace && present {
            None
        } else {
            self.collection(project, image, source)?
        };
        let created = !present;
        let mut collection = match existing {
            Some(c) => c,
            None => CollectionRecord {
                source: source.to_string(),
                count: 0,
                max_width: 0.0,
                max_height: 0.0,
                next_seq: 0,
                updated_at: String::new(),
            },
        };
        let mut batch = sled::Batch::default();
        // A new collection also clears rows a removed one may have left.
        if replace || created {
            for key in self
                .features
                .scan_prefix(prefix(project, image, source))
                .keys()
            {
                batch.remove(key.map_err(|e| self.db_error(e))?);
            }
        }
        let base = prefix(project, image, source);
        for feature in features {
            let b = feature.bbox;
            let mut key = Vec::with_capacity(base.len() + 16);
            key.extend_from_slice(&base);
            key.extend_from_slice(&cell(b.x0).to_be_bytes());
            key.extend_from_slice(&cell(b.y0).to_be_bytes());
            key.extend_from_slice(&collection.next_seq.to_be_bytes());
            let mut value = Vec::with_capacity(HEADER + feature.json.len());
            for v in [b.x0, b.y0, b.x1, b.y1] {
                value.extend_from_slice(&v.to_le_bytes());
            }
            value.extend_from_slice(&feature.json);
            batch.insert(key, value);
            collection.next_seq += 1;
            collection.count += 1;
            collection.max_width = collection.max_width.max(b.x1 - b.x0);
            collection.max_height = collection.max_height.max(b.y1 - b.y0);
        }
        collection.updated_at = crate::time::now();
        self.features
            .apply_batch(batch)
            .map_err(|e| self.db_error(e))?;
        self.put(
            &self.collections,
            &collection_key(project, image, source),
            &collection,
        )?;
        let op = if created {
            ChangeOp::Created
        } else {
            ChangeOp::Updated
        };
        self.record_change(
            op,
            ChangeKind::Annotations,
            project,
            image,
            Some(source),
            None,
        )?;
        Ok(collection)
    }

    /// The collection (project, image, source).
    pub fn collection(
        &self,
        project: &str,
        image: &str,
        source: &str,
    ) -> Result<Option<CollectionRecord>> {
        self.get(
            &self.collections,
            "collection",
            &collection_key(project, image, source),
        )
    }

    /// The collections of an image in a project.
    pub fn collections(&self, project: &str, image: &str) -> Result<Vec<CollectionRecord>> {
        self.scan(
            &self.collections,
            "collection",
            &format!("{project}/{image}/"),
        )
    }

    /// Calls `emit` with the GeoJSON of each feature of the collection whose bbox meets
    /// `query` (every feature when `None`); returns how many.
    pub fn query_features(
        &self,
        project: &str,
        image: &str,
        source: &str,
        query: Option<BBox>,
        mut emit: impl FnMut(&[u8]),
    ) -> Result<u64> {
        let Some(collection) = self.collection(project, image, source)? else {
            return Ok(0);
        };
        let base = prefix(project, image, source);
        let mut n = 0u64;
        let mut visit = |value: &[u8]| -> Result<()> {
            if value.len() < HEADER {
                return Err(StoreError::Corrupt {
                    kind: "feature",
                    key: collection_key(project, image, source),
                    reason: "shorter than its bbox header".to_string(),
                });
            }
            let f = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&value[i * 8..i * 8 + 8]);
                f64::from_le_bytes(b)
            };
            let bbox = BBox {
                x0: f(0),
                y0: f(1),
                x1: f(2),
                y1: f(3),
            };
            if query.is_none_or(|q| q.meets(&bbox)) {
                emit(&value[HEADER..]);
                n += 1;
            }
            Ok(())
        };

        let Some(q) = query else {
            for entry in self.features.scan_prefix(&base) {
                let (_, value) = entry.map_err(|e| self.db_error(e))?;
                visit(&value)?;
            }
            return Ok(n);
        };
        let (cx0, cx1) = (cell(q.x0 - collection.max_width), cell(q.x1));
        let (cy0, cy1) = (cell(q.y0 - collection.max_height), cell(q.y1));
        // A box wider than there are features reads faster as one scan.
        if u64::from(cx1 - cx0) >= collection.count {
            for entry in self.features.scan_prefix(&base) {
                let (_, value) = entry.map_err(|e| self.db_error(e))?;
                visit(&value)?;
            }
            return Ok(n);
        }
        for cx in cx0..=cx1 {
            let key = |cy: u32| {
                let mut k = base.clone();
                k.extend_from_slice(&cx.to_be_bytes());
                k.extend_from_slice(&cy.to_be_bytes());
                k
            };
            let mut end = key(cy1);
            end.extend_from_slice(&u64::MAX.to_be_bytes());
            for entry in self.features.range(key(cy0)..=end) {
                let (_, value) = entry.map_err(|e| self.db_error(e))?;
                visit(&value)?;
            }
        }
        Ok(n)
    }

    /// Deletes a collection; returns false if there was none. Works on an unreadable
    /// collection record too, so a damaged collection can always be removed.
    pub fn delete_features(&self, project: &str, image: &str, source: &str) -> Result<bool> {
        let _writes = self.annotation_lock();
        let ckey = collection_key(project, image, source);
        if !self
            .collections
            .contains_key(ckey.as_bytes())
            .map_err(|e| self.db_error(e))?
        {
            return Ok(false);
        }
        let mut batch = sled::Batch::default();
        for key in self
            .features
            .scan_prefix(prefix(project, image, source))
            .keys()
        {
            batch.remove(key.map_err(|e| self.db_error(e))?);
        }
        self.features
            .apply_batch(batch)
            .map_err(|e| self.db_error(e))?;
        self.collections
            .remove(ckey.as_bytes())
            .map_err(|e| self.db_error(e))?;
        self.record_change(
            ChangeOp::Deleted,
            ChangeKind::Annotations,
            project,
            image,
            Some(source),
            None,
        )?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(x: f64, y: f64) -> StoredFeature {
        StoredFeature {
            bbox: BBox {
                x0: x,
                y0: y,
                x1: x + 10.0,
                y1: y + 10.0,
            },
            json: format!("[{x},{y}]").into_bytes(),
        }
    }

    #[test]
    fn a_bbox_query_finds_exactly_the_features_it_meets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut features = Vec::new();
        for i in 0..100 {
            for j in 0..100 {
                features.push(point(f64::from(i) * 97.0 - 500.0, f64::from(j) * 89.0));
            }
        }
        // One wide feature whose corner lies far left of the query.
        features.push(StoredFeature {
            bbox: BBox {
                x0: -5000.0,
                y0: 3000.0,
                x1: 4000.0,
                y1: 3010.0,
            },
            json: b"wide".to_vec(),
        });
        store
            .put_features("p", "img-1", "manual", features, true)
            .unwrap();

        let q = BBox {
            x0: 2000.0,
            y0: 2000.0,
            x1: 3500.0,
            y1: 4000.0,
        };
        let mut got = Vec::new();
        let n = store
            .query_features("p", "img-1", "manual", Some(q), |j| got.push(j.to_vec()))
            .unwrap();
        let expected = (0..100)
            .flat_map(|i| (0..100).map(move |j| (f64::from(i) * 97.0 - 500.0, f64::from(j) * 89.0)))
            .filter(|&(x, y)| x <= q.x1 && x + 10.0 >= q.x0 && y <= q.y1 && y + 10.0 >= q.y0)
            .count();
        assert_eq!(n as usize, expected + 1);
        assert!(got.iter().any(|j| j == b"wide"));

        let all = store
            .query_features("p", "img-1", "manual", None, |_| {})
            .unwrap();
        assert_eq!(all, 10_001);
        assert!(store.delete_features("p", "img-1", "manual").unwrap());
        assert_eq!(
            store
                .query_features("p", "img-1", "manual", None, |_| {})
                .unwrap(),
            0
        );
    }

    #[test]
    fn an_unreadable_collection_record_can_still_be_replaced_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .put_features("p", "img-1", "manual", vec![point(1.0, 2.0)], true)
            .unwrap();
        // What a non-finite width used to leave behind.
        store
            .collections
            .insert(
                "p/img-1/manual",
                br#"{"source":"manual","count":1,"max_width":null}"#.as_slice(),
            )
            .unwrap();
        assert!(store.collection("p", "img-1", "manual").is_err());
        let c = store
            .put_features("p", "img-1", "manual", vec![point(5.0, 6.0)], true)
            .unwrap();
        assert_eq!(c.count, 1);
        store
            .collections
            .insert("p/img-1/manual", b"{".as_slice())
            .unwrap();
        assert!(store.delete_features("p", "img-1", "manual").unwrap());
        assert_eq!(store.features.len(), 0);
        assert!(store.collections("p", "img-1").unwrap().is_empty());
    }

    #[test]
    fn a_bbox_whose_size_overflows_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let wide = StoredFeature {
            bbox: BBox {
                x0: -1.7e308,
                y0: 0.0,
                x1: 1.7e308,
                y1: 1.0,
            },
            json: b"{}".to_vec(),
        };
        let err = store
            .put_features("p", "img-1", "manual", vec![point(0.0, 0.0), wide], true)
            .unwrap_err();
        assert!(err.to_string().contains("not finite"), "{err}");
        assert!(store.collection("p", "img-1", "manual").unwrap().is_none());
        assert_eq!(store.features.len(), 0);
    }

    #[test]
    fn concurrent_appends_keep_every_feature() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let batch = |k: usize| (0..100).map(|i| point((k * 100 + i) as f64, 0.0)).collect();
        store
            .put_features("p", "img-1", "manual", batch(0), true)
            .unwrap();
        std::thread::scope(|s| {
            for k in 1..=20 {
                let store = &store;
                s.spawn(move || {
                    store
                        .put_features("p", "img-1", "manual", batch(k), false)
                        .unwrap()
                });
            }
        });
        let c = store.collection("p", "img-1", "manual").unwrap().unwrap();
        assert_eq!((c.count, c.next_seq), (2100, 2100));
        let n = store
            .query_features("p", "img-1", "manual", None, |_| {})
            .unwrap();
        assert_eq!(n, 2100);
    }
}
