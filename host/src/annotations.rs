//! GeoJSON coming in: a FeatureCollection is checked feature by feature and split into
//! [`StoredFeature`]s (bbox + the feature's own JSON) for the store.
//!
//! Coordinates are level-0 pixels (see [`crate::jobs::geojson`]). Errors name the position in
//! the document, `features[17].geometry.coordinates[0]`, or the line and column for JSON that
//! does not parse, and say what was expected.

use serde_json::Value;

use crate::store::{BBox, StoredFeature};

/// Most features one request may carry.
pub const MAX_FEATURES: usize = 2_000_000;

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
pub fn parse_collection(bytes: &[u8]) -> Result<Vec<StoredFeature>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "line {} column {}: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        )
    })?;
    let Value::Object(doc) = doc else {
        return Err("the document should be a GeoJSON FeatureCollection object".into());
    };
    match doc.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => {}
        Some(other) => {
            return Err(format!(
                "type: expected \"FeatureCollection\", found \"{other}\""
            ));
        }
        None => return Err("type: missing; expected \"FeatureCollection\"".into()),
    }
    let Some(Value::Array(features)) = doc.get("features") else {
        return Err("features: missing or not an array".into());
    };
    if features.len() > MAX_FEATURES {
        return Err(format!(
            "features: {} features, more than the {MAX_FEATURES} one request may carry",
            features.len()
        ));
    }
    features
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let at = format!("features[{i}]");
            let bbox = feature_bbox(f, &at)?;
            let json = serde_json::to_vec(f).map_err(|e| format!("{at}: {e}"))?;
            Ok(StoredFeature { bbox, json })
        })
        .collect()
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
}
