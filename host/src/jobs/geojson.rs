//! GeoJSON output: one Feature per annotation, in level-0 pixel coordinates.
//!
//! Coordinates are pixels (x to the right, y down), not longitude/latitude, as is usual for
//! slide annotations (QuPath and OpenSlide-based tools read them the same way).
//!
//! The document is serialized straight from the plugin's result, without building a JSON tree
//! first: a result of a million nuclei costs its output bytes, not ten times that in nodes.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use crate::runtime::{Annotation, Geometry, Point, RunResult};

struct Coords<'a>(&'a Point);

impl Serialize for Coords<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.0.x, self.0.y].serialize(s)
    }
}

/// A ring with its first point repeated at the end, as GeoJSON wants.
struct ClosedRing<'a>(&'a [Point]);

impl Serialize for ClosedRing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ring = self.0;
        let open = match (ring.first(), ring.last()) {
            (Some(first), Some(last)) => first.x != last.x || first.y != last.y,
            _ => false,
        };
        let mut seq = s.serialize_seq(Some(ring.len() + usize::from(open)))?;
        for p in ring {
            seq.serialize_element(&Coords(p))?;
        }
        if open && let Some(first) = ring.first() {
            seq.serialize_element(&Coords(first))?;
        }
        seq.end()
    }
}

struct GeometryJson<'a>(&'a Geometry);

impl Serialize for GeometryJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        match self.0 {
            Geometry::Point(p) => {
                map.serialize_entry("type", "Point")?;
                map.serialize_entry("coordinates", &Coords(p))?;
            }
            Geometry::Polygon(rings) => {
                let rings: Vec<ClosedRing<'_>> = rings.iter().map(|r| ClosedRing(r)).collect();
                map.serialize_entry("type", "Polygon")?;
                map.serialize_entry("coordinates", &rings)?;
            }
            Geometry::Rectangle(r) => {
                let (x0, y0) = (f64::from(r.x), f64::from(r.y));
                let (x1, y1) = (x0 + f64::from(r.width), y0 + f64::from(r.height));
                map.serialize_entry("type", "Polygon")?;
                map.serialize_entry(
                    "coordinates",
                    &[[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
                )?;
            }
        }
        map.end()
    }
}

struct Properties<'a>(&'a Annotation);

impl Serialize for Properties<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut map = s.serialize_map(None)?;
        // `label` comes from the annotation's label; a property of that name is left out.
        map.serialize_entry("label", &a.label)?;
        for p in a.properties.iter().filter(|p| p.name != "label") {
            map.serialize_entry(&p.name, &p.value)?;
        }
        map.end()
    }
}

struct Feature<'a>(&'a Annotation);

impl Serialize for Feature<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("type", "Feature")?;
        map.serialize_entry("geometry", &GeometryJson(&self.0.geometry))?;
        map.serialize_entry("properties", &Properties(self.0))?;
        map.end()
    }
}

struct Features<'a>(&'a [Annotation]);

impl Serialize for Features<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for a in self.0 {
            seq.serialize_element(&Feature(a))?;
        }
        seq.end()
    }
}

struct Summary<'a> {
    plugin: &'a str,
    image: &'a str,
    result: &'a RunResult,
}

impl Serialize for Summary<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("plugin", self.plugin)?;
        map.serialize_entry("image", self.image)?;
        let measurements: serde_json::Map<String, serde_json::Value> = self
            .result
            .measurements
            .iter()
            .map(|m| (m.name.clone(), m.value.into()))
            .collect();
        map.serialize_entry("measurements", &measurements)?;
        map.end()
    }
}

/// A FeatureCollection of the result's annotations; the measurements, plugin and image ride
/// along as a foreign member `tessera`.
pub fn feature_collection(result: &RunResult, plugin: &str, image: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + result.annotations.len() * 96);
    let mut ser = serde_json::Serializer::new(&mut out);
    let written = (|| {
        let mut map = ser.serialize_map(Some(3))?;
        map.serialize_entry("type", "FeatureCollection")?;
        let summary = Summary {
            plugin,
            image,
            result,
        };
        map.serialize_entry("tessera", &summary)?;
        map.serialize_entry("features", &Features(&result.annotations))?;
        SerializeMap::end(map)
    })();
    // Serializing into a Vec fails only on a non-string map key, which this code never writes.
    debug_assert!(written.is_ok(), "geojson serialization failed: {written:?}");
    out
}
