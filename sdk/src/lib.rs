//! Write tessera plugins in Rust.
//!
//! A plugin is a WebAssembly component that the tessera host runs in a sandbox. This crate holds
//! the bindings generated from the plugin API in `wit/` and wraps them in types that are pleasant
//! to use: images you read regions from, regions as RGB buffers, typed parameters, annotations
//! and measurements.
//!
//! An algorithm implements [`Algorithm`] and exports itself with [`export_algorithm!`]:
//!
//! ```no_run
//! use tessera_sdk::{Algorithm, Error, Input, Measurement, Output, ParamSpec};
//!
//! struct MeanBrightness;
//!
//! impl Algorithm for MeanBrightness {
//!     const NAME: &'static str = "Mean brightness";
//!     const VERSION: &'static str = "0.1.0";
//!     const DESCRIPTION: &'static str = "Average grey level of the image";
//!
//!     fn params() -> Vec<ParamSpec> {
//!         vec![ParamSpec::int("level", "pyramid level to read", 0, 0, 16)]
//!     }
//!
//!     fn run(input: Input) -> Result<Output, Error> {
//!         let level = input.params.int("level")? as u32;
//!         let region = input.image.read_level(level)?;
//!         let sum: u64 = region.data.iter().map(|&v| u64::from(v)).sum();
//!         let mean = sum as f64 / region.data.len().max(1) as f64;
//!         Ok(Output::new().measurement(Measurement::new("mean", mean)))
//!     }
//! }
//!
//! tessera_sdk::export_algorithm!(MeanBrightness);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and install the resulting
//! `.wasm` next to its `tessera.toml` manifest with `tessera plugin install`.
//!
//! [`gpu`] runs the host's image kernels on its compute device (a GPU where the host has one),
//! on tensors that stay there between calls; the plugin's manifest needs a `gpu-memory-mib` grant.
//!
//! [`ops`] has the image operations the first-party plugins are built from (grey level, Otsu,
//! colour deconvolution, Gaussian blur, connected components, outlines), usable natively too, so
//! the analysis code of a plugin can be tested with `cargo test` on the developer's machine.

#![warn(missing_docs)]

pub mod gpu;
mod image;
pub mod ops;
mod params;
mod shapes;

pub use image::{Image, ImageInfo, ImageSource, LevelInfo, MemoryImage, Rect, RgbImage, paste};
pub use params::{ParamKind, ParamSpec, ParamValue, Params};
pub use shapes::{Annotation, Geometry, Measurement, Output, Point};

/// The plugin API version this SDK was built against; the host checks it at install time.
pub const API_VERSION: &str = "0.2.0";

/// Bindings generated from `wit/0.2.0`. Plugin code rarely needs them directly.
#[doc(hidden)]
pub mod bindings {
    #![allow(missing_docs, reason = "generated code")]
    #![allow(clippy::too_many_arguments, reason = "generated code")]
    wit_bindgen::generate!({
        path: "../wit/0.2.0",
        world: "algorithm",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "tessera_sdk::bindings",
    });
}

use bindings::tessera::plugin::host as wit_host;
use bindings::tessera::plugin::types as wit;

/// Why a plugin call failed. The host shows it to the user and records it on the job item.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The image or another named thing does not exist.
    NotFound(String),
    /// The plugin's grant does not allow this access.
    Denied(String),
    /// A parameter or request was invalid.
    InvalidInput(String),
    /// The user cancelled the job.
    Cancelled,
    /// Anything else.
    Internal(String),
}

impl Error {
    /// An [`Error::InvalidInput`] with the given message.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::Denied(m) => write!(f, "denied: {m}"),
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::Cancelled => write!(f, "cancelled"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::NotFound(m) => Error::NotFound(m),
            wit::Error::Denied(m) => Error::Denied(m),
            wit::Error::InvalidInput(m) => Error::InvalidInput(m),
            wit::Error::Cancelled => Error::Cancelled,
            wit::Error::Internal(m) => Error::Internal(m),
        }
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(m) => wit::Error::NotFound(m),
            Error::Denied(m) => wit::Error::Denied(m),
            Error::InvalidInput(m) => wit::Error::InvalidInput(m),
            Error::Cancelled => wit::Error::Cancelled,
            Error::Internal(m) => wit::Error::Internal(m),
        }
    }
}

/// What [`Algorithm::run`] receives.
pub struct Input {
    /// The image to analyse.
    pub image: Image,
    /// Every declared parameter, defaults filled in by the host.
    pub params: Params,
    /// Restrict the analysis to this level-0 rectangle when present.
    pub region: Option<Rect>,
}

/// An algorithm plugin: analyses one image, returns annotations and measurements.
pub trait Algorithm {
    /// Human-readable name shown in the app catalog.
    const NAME: &'static str;
    /// Version of the plugin (semver), the same as in `tessera.toml`.
    const VERSION: &'static str;
    /// One sentence on what the algorithm does.
    const DESCRIPTION: &'static str;

    /// The parameters the algorithm takes, with defaults and ranges.
    fn params() -> Vec<ParamSpec> {
        Vec::new()
    }

    /// Analyses one image.
    fn run(input: Input) -> Result<Output, Error>;
}

/// Host services available to every plugin call.
pub mod host {
    use super::wit_host;

    /// Reports progress of the current call (`done` out of `total` units).
    pub fn progress(done: u64, total: u64) {
        wit_host::progress(done, total);
    }

    /// True once the user cancelled the job; return [`crate::Error::Cancelled`] soon after.
    pub fn is_cancelled() -> bool {
        wit_host::is_cancelled()
    }

    /// Fails with [`crate::Error::Cancelled`] when the job was cancelled.
    pub fn check_cancelled() -> Result<(), crate::Error> {
        if is_cancelled() {
            Err(crate::Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Logs a message at debug level; the host tags it with the plugin id.
    pub fn debug(message: &str) {
        wit_host::log(wit_host::LogLevel::Debug, message);
    }

    /// Logs a message at info level; the host tags it with the plugin id.
    pub fn info(message: &str) {
        wit_host::log(wit_host::LogLevel::Info, message);
    }

    /// Logs a message at warn level; the host tags it with the plugin id.
    pub fn warn(message: &str) {
        wit_host::log(wit_host::LogLevel::Warn, message);
    }
}

#[doc(hidden)]
pub mod __private {
    use super::*;
    use bindings::tessera::plugin::algorithm_types as wit_alg;

    pub fn describe<A: Algorithm>() -> wit_alg::PluginInfo {
        wit_alg::PluginInfo {
            name: A::NAME.to_string(),
            version: A::VERSION.to_string(),
            description: A::DESCRIPTION.to_string(),
            params: A::params().into_iter().map(Into::into).collect(),
        }
    }

    pub fn run<A: Algorithm>(
        request: wit_alg::RunRequest,
    ) -> Result<wit_alg::RunResult, wit::Error> {
        let image = Image::open(&request.image)?;
        let input = Input {
            image,
            params: Params::from_wit(request.params),
            region: request.region.map(Into::into),
        };
        let output = A::run(input)?;
        Ok(output.into_wit())
    }
}

/// Exports a type implementing [`Algorithm`] as the plugin's entry points.
///
/// Use it once, at the crate root of a `cdylib` built for `wasm32-wasip2`.
#[macro_export]
macro_rules! export_algorithm {
    ($ty:ty) => {
        #[doc(hidden)]
        struct __TesseraAlgorithmExport;

        impl $crate::bindings::Guest for __TesseraAlgorithmExport {
            fn describe() -> $crate::bindings::tessera::plugin::algorithm_types::PluginInfo {
                $crate::__private::describe::<$ty>()
            }

            fn run(
                request: $crate::bindings::tessera::plugin::algorithm_types::RunRequest,
            ) -> ::core::result::Result<
                $crate::bindings::tessera::plugin::algorithm_types::RunResult,
                $crate::bindings::tessera::plugin::types::Error,
            > {
                $crate::__private::run::<$ty>(request)
            }
        }

        $crate::bindings::export!(__TesseraAlgorithmExport with_types_in $crate::bindings);
    };
}
