//! Plugins built against plugin API 0.1.0, run on the 0.2.0 host.
//!
//! 0.2.0 only added the `gpu` interface, so every 0.1.0 type has an identical 0.2.0 twin: the
//! 0.1.0 imports are served by the 0.2.0 implementations (converting values on the way), and
//! the 0.1.0 exports' results are converted to 0.2.0 for the rest of the host. A later minor
//! adds its own conversions here, always towards the newest version.

use wasmtime::component::Resource;

use super::PluginState;
use super::bindings::{ImageHandle, v1, v2};

use v1::tessera::plugin as old;
use v2::tessera::plugin as new;

impl old::types::Host for PluginState {}
impl old::algorithm_types::Host for PluginState {}

fn error(e: new::types::Error) -> old::types::Error {
    use new::types::Error as E;
    match e {
        E::NotFound(m) => old::types::Error::NotFound(m),
        E::Denied(m) => old::types::Error::Denied(m),
        E::InvalidInput(m) => old::types::Error::InvalidInput(m),
        E::Cancelled => old::types::Error::Cancelled,
        E::Internal(m) => old::types::Error::Internal(m),
    }
}

fn error_up(e: old::types::Error) -> new::types::Error {
    use old::types::Error as E;
    match e {
        E::NotFound(m) => new::types::Error::NotFound(m),
        E::Denied(m) => new::types::Error::Denied(m),
        E::InvalidInput(m) => new::types::Error::InvalidInput(m),
        E::Cancelled => new::types::Error::Cancelled,
        E::Internal(m) => new::types::Error::Internal(m),
    }
}

fn rect(r: old::types::Rect) -> new::types::Rect {
    new::types::Rect {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
    }
}

fn rect_down(r: new::types::Rect) -> old::types::Rect {
    old::types::Rect {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
    }
}

impl old::data::Host for PluginState {
    fn open_image(
        &mut self,
        id: String,
    ) -> wasmtime::Result<Result<Resource<ImageHandle>, old::types::Error>> {
        Ok(<Self as new::data::Host>::open_image(self, id)?.map_err(error))
    }
}

impl old::data::HostImage for PluginState {
    fn info(&mut self, image: Resource<ImageHandle>) -> wasmtime::Result<old::types::ImageInfo> {
        let info = <Self as new::data::HostImage>::info(self, image)?;
        Ok(old::types::ImageInfo {
            id: info.id,
            width: info.width,
            height: info.height,
            levels: info
                .levels
                .into_iter()
                .map(|l| old::types::LevelInfo {
                    width: l.width,
                    height: l.height,
                    downsample: l.downsample,
                })
                .collect(),
            microns_per_pixel: info.microns_per_pixel,
        })
    }

    fn read_region(
        &mut self,
        image: Resource<ImageHandle>,
        level: u32,
        region: old::types::Rect,
    ) -> wasmtime::Result<Result<Vec<u8>, old::types::Error>> {
        Ok(self
            .read_pixels(&image, level, rect(region))?
            .map_err(error))
    }

    fn drop(&mut self, image: Resource<ImageHandle>) -> wasmtime::Result<()> {
        <Self as new::data::HostImage>::drop(self, image)
    }
}

impl old::host::Host for PluginState {
    fn log(&mut self, level: old::host::LogLevel, message: String) -> wasmtime::Result<()> {
        use old::host::LogLevel as L;
        let level = match level {
            L::Trace => new::host::LogLevel::Trace,
            L::Debug => new::host::LogLevel::Debug,
            L::Info => new::host::LogLevel::Info,
            L::Warn => new::host::LogLevel::Warn,
            L::Error => new::host::LogLevel::Error,
        };
        <Self as new::host::Host>::log(self, level, message)
    }

    fn progress(&mut self, done: u64, total: u64) -> wasmtime::Result<()> {
        <Self as new::host::Host>::progress(self, done, total)
    }

    fn is_cancelled(&mut self) -> wasmtime::Result<bool> {
        <Self as new::host::Host>::is_cancelled(self)
    }
}

fn param_value_down(v: &new::types::ParamValue) -> old::types::ParamValue {
    use new::types::ParamValue as V;
    match v {
        V::Int(i) => old::types::ParamValue::Int(*i),
        V::Float(f) => old::types::ParamValue::Float(*f),
        V::Flag(b) => old::types::ParamValue::Flag(*b),
        V::Text(t) => old::types::ParamValue::Text(t.clone()),
        V::Choice(c) => old::types::ParamValue::Choice(c.clone()),
    }
}

fn param_value(v: old::types::ParamValue) -> new::types::ParamValue {
    use old::types::ParamValue as V;
    match v {
        V::Int(i) => new::types::ParamValue::Int(i),
        V::Float(f) => new::types::ParamValue::Float(f),
        V::Flag(b) => new::types::ParamValue::Flag(b),
        V::Text(t) => new::types::ParamValue::Text(t),
        V::Choice(c) => new::types::ParamValue::Choice(c),
    }
}

/// A 0.2.0 run request as 0.1.0.
pub fn run_request(r: &new::algorithm_types::RunRequest) -> old::algorithm_types::RunRequest {
    old::algorithm_types::RunRequest {
        image: r.image.clone(),
        params: r
            .params
            .iter()
            .map(|p| old::types::Param {
                name: p.name.clone(),
                value: param_value_down(&p.value),
            })
            .collect(),
        region: r.region.map(rect_down),
    }
}

/// A 0.1.0 description as 0.2.0.
pub fn plugin_info(i: old::algorithm_types::PluginInfo) -> new::algorithm_types::PluginInfo {
    use old::types::ParamKind as K;
    new::algorithm_types::PluginInfo {
        name: i.name,
        version: i.version,
        description: i.description,
        params: i
            .params
            .into_iter()
            .map(|p| new::types::ParamSpec {
                name: p.name,
                description: p.description,
                kind: match p.kind {
                    K::Int(r) => new::types::ParamKind::Int(new::types::IntRange {
                        min: r.min,
                        max: r.max,
                    }),
                    K::Float(r) => new::types::ParamKind::Float(new::types::FloatRange {
                        min: r.min,
                        max: r.max,
                    }),
                    K::Flag => new::types::ParamKind::Flag,
                    K::Text => new::types::ParamKind::Text,
                    K::Choice(c) => new::types::ParamKind::Choice(c),
                },
                default: param_value(p.default),
            })
            .collect(),
    }
}

fn point(p: old::types::Point) -> new::types::Point {
    new::types::Point { x: p.x, y: p.y }
}

/// A 0.1.0 run outcome as 0.2.0.
pub fn run_result(
    r: Result<old::algorithm_types::RunResult, old::types::Error>,
) -> Result<new::algorithm_types::RunResult, new::types::Error> {
    use old::types::Geometry as G;
    let r = r.map_err(error_up)?;
    Ok(new::algorithm_types::RunResult {
        annotations: r
            .annotations
            .into_iter()
            .map(|a| new::types::Annotation {
                geometry: match a.geometry {
                    G::Point(p) => new::types::Geometry::Point(point(p)),
                    G::Polygon(rings) => new::types::Geometry::Polygon(
                        rings
                            .into_iter()
                            .map(|ring| ring.into_iter().map(point).collect())
                            .collect(),
                    ),
                    G::Rectangle(r) => new::types::Geometry::Rectangle(rect(r)),
                },
                label: a.label,
                properties: a
                    .properties
                    .into_iter()
                    .map(|p| new::types::Property {
                        name: p.name,
                        value: p.value,
                    })
                    .collect(),
            })
            .collect(),
        measurements: r
            .measurements
            .into_iter()
            .map(|m| new::types::Measurement {
                name: m.name,
                value: m.value,
                unit: m.unit,
            })
            .collect(),
    })
}
