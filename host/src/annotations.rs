//! GeoJSON coming in: a FeatureCollection is checked feature by feature and split into
//! [`StoredFeature`]s (bbox + the feature's own JSON) for the store.
//!
//! Coordinates are level-0 pixels (see [`crate::jobs::geojson`]). Errors name the position in
//! the document, `features[17].geometry.coordinates[0]`, or the line and column for JSON that
//! does not parse, and say what was expected.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::store::{BBox, StoredFeature};

/// Most features one request may carry. Storing a request costs the server about 5 KB of
/// memory per feature at its peak (measured with points; most of it in the store's write), so
/// this bounds one write to about 1 GB; larger sets are sent as several appends.
pub const MAX_FEATURES: usize = 200_000;

/// Largest absolute coordinate, in level-0 pixels: far beyond any slide, and small enough that
/// bbox sizes and grid cells stay finite and exact.
pub const MAX_COORDINATE: f64 = 1e9;

/// Longest annotation source name.
pub const MAX_SOURCE_LEN: usize = 64;

/// Sources the server writes itself start with this; clients may not write them.
pub const RESULT_SOURCE_PREFIX: &str = "result:";

/// True for a valid source name: 1 to [`MAX_SOURCE_LEN`] of `a-z 0-9 - : . _`.
pub fn is_source(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SOURCE_LEN
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b':' | b'.' | b'_')
        })
}

/// Parses a FeatureCollection.
///
/// The document is read as a stream: each feature is parsed, checked and turned into its
/// stored form before the next is read, so memory holds the request bytes, the stored
/// features and one feature's tree, never a tree of the whole document.
pub fn parse_collection(bytes: &[u8]) -> Result<Vec<StoredFeature>, String> {
    let problem = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Doc { problem: &problem }
        .deserialize(&mut de)
        .and_then(|doc| de.end().map(|()| doc));
    let (kind, features) = match parsed {
        Ok(doc) => doc,
        Err(e) => {
            return Err(format!(
                "line {} column {}: {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ));
        }
    };
    match kind.as_ref().map(|k| k.as_deref()) {
        Some(Some("FeatureCollection")) => {}
        Some(Some(other)) => {
            return Err(format!(
                "type: expected \"FeatureCollection\", found \"{other}\""
            ));
        }
        Some(None) | None => return Err("type: missing; expected \"FeatureCollection\"".into()),
    }
    if let Some(p) = problem.into_inner() {
        return Err(p);
    }
    features.ok_or_else(|| "features: missing or not an array".into())
}

/// The top-level object: its `type` and its checked features. The first problem with a
/// feature is put in `problem`; it is reported after syntax errors and a wrong `type`, in
/// the order a whole-document parse would find them.
struct Doc<'a> {
    problem: &'a RefCell<Option<String>>,
}

type DocParts = (Option<Option<String>>, Option<Vec<StoredFeature>>);

impl<'de> DeserializeSeed<'de> for Doc<'_> {
    type Value = DocParts;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DocParts, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Doc<'_> {
    type Value = DocParts;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GeoJSON FeatureCollection object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DocParts, A::Error> {
        let (mut kind, mut features) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => {
                    kind = Some(match map.next_value::<Value>()? {
                        Value::String(s) => Some(s),
                        _ => None,
                    });
                }
                "features" => {
                    features = Some(map.next_value_seed(Features {
                        problem: self.problem,
                    })?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((kind, features))
    }
}

struct Features<'a> {
    problem: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Features<'_> {
    type Value = Vec<StoredFeature>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<StoredFeature>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Features<'_> {
    type Value = Vec<StoredFeature>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`features` to be an array of Feature objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<StoredFeature>, A::Error> {
        let mut out = Vec::new();
        while let Some(f) = seq.next_element::<Value>()? {
            let i = out.len();
            let stored = if i >= MAX_FEATURES {
                Err(format!(
                    "features: more than the {MAX_FEATURES} features one request may carry"
                ))
            } else {
                stored_feature(&f, i)
            };
            match stored {
                Ok(s) => out.push(s),
                Err(msg) => {
                    // The first problem is the answer, unless the rest does not parse: read
                    // on without keeping anything, as a syntax error is reported first.
                    *self.problem.borrow_mut() = Some(msg);
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    return Ok(Vec::new());
                }
            }
        }
        Ok(out)
    }
}

fn stored_feature(f: &Value, i: usize) -> Result<StoredFeature, String> {
    let at = format!("features[{i}]");
    let bbox = feature_bbox(f, &at)?;
    let json = serde_json::to_vec(f).map_err(|e| format!("{at}: {e}"))?;
    Ok(StoredFeature { bbox, json })
}

fn strip_position(msg: &str) -> &str {
    msg.rsplit_once(" at line ").map_or(msg, |(m, _)| m)
}

fn feature_bbox(f: &Value, at: &str) -> Result<BBox, String> {
    let Value::Object(f) = f else {
        return Err(format!("{at}: expected a Feature object"));
    };
    if f.get("type").and_then(Value::as_str) != Some("Feature") {
        return Err(format!("{at}.type: expected \"Feature\""));
    }
    match f.get("properties") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(_) => return Err(format!("{at}.properties: expected an object or null")),
    }
    let Some(Value::Object(g)) = f.get("geometry") else {
        return Err(format!("{at}.geometry: expected a geometry object"));
    };
    let kind = g.get("type").and_then(Value::as_str).unwrap_or("");
    let depth = match kind {
        "Point" => 0,
        "MultiPoint" | "LineString" => 1,
        "Polygon" | "MultiLineString" => 2,
        "MultiPolygon" => 3,
        _ => {
            return Err(format!(
                "{at}.geometry.type: expected Point, MultiPoint, LineString, MultiLineString, \
                 Polygon or MultiPolygon, found {}",
                g.get("type")
                    .map_or("nothing".to_string(), Value::to_string)
            ));
        }
    };
    let coords = g
        .get("coordinates")
        .ok_or_else(|| format!("{at}.geometry.coordinates: missing"))?;
    let mut bbox = BBox {
        x0: f64::INFINITY,
        y0: f64::INFINITY,
        x1: f64::NEG_INFINITY,
        y1: f64::NEG_INFINITY,
    };
    walk(
        coords,
        depth,
        kind,
        &format!("{at}.geometry.coordinates"),
        &mut bbox,
    )?;
    if !bbox.x0.is_finite() {
        return Err(format!("{at}.geometry.coordinates: no positions"));
    }
    Ok(bbox)
}

/// Checks nested arrays of positions `depth` levels deep and grows `bbox` over them.
fn walk(v: &Value, depth: u32, kind: &str, at: &str, bbox: &mut BBox) -> Result<(), String> {
    let Value::Array(items) = v else {
        return Err(format!("{at}: expected an array"));
    };
    if depth == 0 {
        let xy: Vec<f64> = items.iter().filter_map(Value::as_f64).collect();
        if items.len() < 2 || items.len() > 3 || xy.len() != items.len() {
            return Err(format!("{at}: a position is [x, y] with 2 (or 3) numbers"));
        }
        if xy.iter().any(|v| v.abs() > MAX_COORDINATE) {
            return Err(format!(
                "{at}: coordinates must lie within -{MAX_COORDINATE} to {MAX_COORDINATE} pixels"
            ));
        }
        bbox.x0 = bbox.x0.min(xy[0]);
        bbox.y0 = bbox.y0.min(xy[1]);
        bbox.x1 = bbox.x1.max(xy[0]);
        bbox.y1 = bbox.y1.max(xy[1]);
        return Ok(());
    }
    // A polygon's rings (depth 1 inside a Polygon or MultiPolygon) must be closed.
    let ring = depth == 1 && (kind == "Polygon" || kind == "MultiPolygon");
    if ring {
        if items.len() < 4 {
            return Err(format!("{at}: a polygon ring needs at least 4 positions"));
        }
        if items.first() != items.last() {
            return Err(format!("{at}: a polygon ring must end where it starts"));
        }
    }
    if depth == 1 && kind == "LineString" && items.len() < 2 {
        return Err(format!("{at}: a line needs at least 2 positions"));
    }
    for (i, item) in items.iter().enumerate() {
        walk(item, depth - 1, kind, &format!("{at}[{i}]"), bbox)?;
    }
    Ok(())
}

/// Parses `x0,y0,x1,y1`.
pub fn parse_bbox(s: &str) -> Result<BBox, String> {
    let parts: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bbox `{s}`: expected four numbers x0,y0,x1,y1"))?;
    match parts[..] {
        [x0, y0, x1, y1] if parts.iter().all(|v| v.is_finite()) && x0 <= x1 && y0 <= y1 => {
            Ok(BBox { x0, y0, x1, y1 })
        }
        _ => Err(format!(
            "bbox `{s}`: expected four finite numbers x0,y0,x1,y1 with x0 <= x1 and y0 <= y1"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_feature_and_the_problem() {
        let bad = br#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{}},
            {"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}}
        ]}"#;
        let err = parse_collection(bad).err().unwrap();
        assert_eq!(
            err,
            "features[1].geometry.coordinates[0]: a polygon ring needs at least 4 positions"
        );
        let err = parse_collection(b"{\"type\": \"FeatureCollection\",\n \"features\": [1,}")
            .err()
            .unwrap();
        assert!(err.starts_with("line 2 column"), "{err}");
        let err = parse_collection(br#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":["a",2]}}]}"#).err().unwrap();
        assert!(
            err.starts_with("features[0].geometry.coordinates:"),
            "{err}"
        );
    }

    #[test]
    fn the_bbox_covers_every_position() {
        let doc = br#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":null,"geometry":{"type":"Polygon","coordinates":[[[5,6],[9,6],[9,20],[5,6]]]}}]}"#;
        let f = parse_collection(doc).unwrap();
        assert_eq!(
            f[0].bbox,
            BBox {
                x0: 5.0,
                y0: 6.0,
                x1: 9.0,
                y1: 20.0
            }
        );
    }

    #[test]
    fn coordinates_out_of_range_are_refused() {
        let doc = br#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":
            {"type":"LineString","coordinates":[[-1.7e308,0],[1.7e308,1]]}}]}"#;
        let err = parse_collection(doc).err().unwrap();
        assert!(
            err.starts_with("features[0].geometry.coordinates[0]: coordinates must lie within"),
            "{err}"
        );
        let ok = br#"{"features":[{"type":"Feature","geometry":
            {"type":"Point","coordinates":[-1e9,1e9]}}],"type":"FeatureCollection"}"#;
        assert_eq!(parse_collection(ok).unwrap().len(), 1);
        let err = parse_collection(br#"{"type":"FeatureCollection"}"#)
            .err()
            .unwrap();
        assert_eq!(err, "features: missing or not an array");
        let err = parse_collection(br#"{"type":"Feature","features":[]}"#)
            .err()
            .unwrap();
        assert_eq!(
            err,
            r#"type: expected "FeatureCollection", found "Feature""#
        );
        let err = parse_collection(b"[1]").err().unwrap();
        assert!(err.contains("a GeoJSON FeatureCollection object"), "{err}");
    }
}
