//! GeoJSON output: one Feature per annotation, in level-0 pixel coordinates.
//!
//! Coordinates are pixels (x to the right, y down), not longitude/latitude, as is usual for
//! slide annotations (QuPath and OpenSlide-based tools read them the same way).

use serde_json::{Map, Value, json};

use crate::runtime::{Geometry, Point, RunResult};

fn point(p: &Point) -> Value {
    json!([p.x, p.y])
}

fn closed_ring(ring: &[Point]) -> Value {
    let mut coords: Vec<Value> = ring.iter().map(point).collect();
    if let (Some(first), Some(last)) = (ring.first(), ring.last())
        && (first.x != last.x || first.y != last.y)
    {
        coords.push(point(first));
    }
    Value::Array(coords)
}

fn geometry(g: &Geometry) -> Value {
    match g {
        Geometry::Point(p) => json!({ "type": "Point", "coordinates": point(p) }),
        Geometry::Polygon(rings) => json!({
            "type": "Polygon",
            "coordinates": rings.iter().map(|r| closed_ring(r)).collect::<Vec<_>>(),
        }),
        Geometry::Rectangle(r) => {
            let (x0, y0) = (f64::from(r.x), f64::from(r.y));
            let (x1, y1) = (x0 + f64::from(r.width), y0 + f64::from(r.height));
            json!({
                "type": "Polygon",
                "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
            })
        }
    }
}

/// A FeatureCollection of the result's annotations; the measurements, plugin and image ride
/// along as a foreign member `tessera`.
pub fn feature_collection(result: &RunResult, plugin: &str, image: &str) -> Vec<u8> {
    let features: Vec<Value> = result
        .annotations
        .iter()
        .map(|a| {
            let mut props = Map::new();
            for p in &a.properties {
                props.insert(p.name.clone(), p.value.into());
            }
            // Inserted last: a property a plugin happens to call `label` cannot replace it.
            props.insert("label".into(), a.label.clone().into());
            json!({ "type": "Feature", "geometry": geometry(&a.geometry), "properties": props })
        })
        .collect();
    let measurements: Map<String, Value> = result
        .measurements
        .iter()
        .map(|m| (m.name.clone(), m.value.into()))
        .collect();
    let doc = json!({
        "type": "FeatureCollection",
        "tessera": { "plugin": plugin, "image": image, "measurements": measurements },
        "features": features,
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}
