//! What an algorithm returns: annotations (geometry + label + numbers) and measurements.

use crate::Rect;
use crate::bindings::tessera::plugin::{algorithm_types as wit_alg, types as wit};

/// A point in level-0 pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Column.
    pub x: f64,
    /// Row.
    pub y: f64,
}

/// The shape of an annotation, in level-0 pixel coordinates.
#[derive(Clone, Debug, PartialEq)]
pub enum Geometry {
    /// A single point.
    Point(Point),
    /// Exterior ring, then holes; rings close implicitly.
    Polygon(Vec<Vec<Point>>),
    /// An axis-aligned rectangle.
    Rectangle(Rect),
}

/// A labelled geometry with numeric properties.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// The shape.
    pub geometry: Geometry,
    /// What it is (`nucleus`, `tissue`...).
    pub label: String,
    /// Numbers attached to it (`area`...).
    pub properties: Vec<(String, f64)>,
}

impl Annotation {
    /// A point annotation.
    pub fn point(x: f64, y: f64, label: &str) -> Self {
        Annotation {
            geometry: Geometry::Point(Point { x, y }),
            label: label.to_string(),
            properties: Vec::new(),
        }
    }

    /// A polygon annotation from its exterior ring.
    pub fn polygon(ring: impl IntoIterator<Item = (f64, f64)>, label: &str) -> Self {
        let ring = ring.into_iter().map(|(x, y)| Point { x, y }).collect();
        Annotation {
            geometry: Geometry::Polygon(vec![ring]),
            label: label.to_string(),
            properties: Vec::new(),
        }
    }

    /// Adds a numeric property.
    pub fn with(mut self, name: &str, value: f64) -> Self {
        self.properties.push((name.to_string(), value));
        self
    }
}

/// A named number about the whole image or region.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Name (`nuclei-count`...).
    pub name: String,
    /// Value.
    pub value: f64,
    /// Unit, when it has one (`px`, `µm²`...).
    pub unit: Option<String>,
}

impl Measurement {
    /// A measurement without a unit.
    pub fn new(name: &str, value: f64) -> Self {
        Measurement {
            name: name.to_string(),
            value,
            unit: None,
        }
    }

    /// Sets the unit.
    pub fn unit(mut self, unit: &str) -> Self {
        self.unit = Some(unit.to_string());
        self
    }
}

/// What [`crate::Algorithm::run`] returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// One per detected object.
    pub annotations: Vec<Annotation>,
    /// Whole-image numbers.
    pub measurements: Vec<Measurement>,
}

impl Output {
    /// An empty output.
    pub fn new() -> Self {
        Output::default()
    }

    /// Adds an annotation.
    pub fn annotation(mut self, annotation: Annotation) -> Self {
        self.annotations.push(annotation);
        self
    }

    /// Adds a measurement.
    pub fn measurement(mut self, measurement: Measurement) -> Self {
        self.measurements.push(measurement);
        self
    }

    pub(crate) fn into_wit(self) -> wit_alg::RunResult {
        wit_alg::RunResult {
            annotations: self
                .annotations
                .into_iter()
                .map(annotation_to_wit)
                .collect(),
            measurements: self
                .measurements
                .into_iter()
                .map(|m| wit::Measurement {
                    name: m.name,
                    value: m.value,
                    unit: m.unit,
                })
                .collect(),
        }
    }
}

fn point_to_wit(p: Point) -> wit::Point {
    wit::Point { x: p.x, y: p.y }
}

fn annotation_to_wit(a: Annotation) -> wit::Annotation {
    let geometry = match a.geometry {
        Geometry::Point(p) => wit::Geometry::Point(point_to_wit(p)),
        Geometry::Polygon(rings) => wit::Geometry::Polygon(
            rings
                .into_iter()
                .map(|r| r.into_iter().map(point_to_wit).collect())
                .collect(),
        ),
        Geometry::Rectangle(r) => wit::Geometry::Rectangle(r.into()),
    };
    wit::Annotation {
        geometry,
        label: a.label,
        properties: a
            .properties
            .into_iter()
            .map(|(name, value)| wit::Property { name, value })
            .collect(),
    }
}
