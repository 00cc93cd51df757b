//! The smallest useful tessera plugin: reads the coarsest pyramid level of an image, reports
//! its size and mean brightness, and puts one point at its centre.

use tessera_sdk::{Algorithm, Annotation, Error, Input, Measurement, Output, ParamSpec};

struct Hello;

impl Algorithm for Hello {
    const NAME: &'static str = "Hello, slide";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Reports the size and mean brightness of an image";

    fn params() -> Vec<ParamSpec> {
        vec![ParamSpec::text(
            "label",
            "Label of the point annotation",
            "centre",
        )]
    }

    fn run(input: Input) -> Result<Output, Error> {
        let info = input.image.info().clone();
        let coarsest = info.levels.len() as u32 - 1;
        let pixels = input.image.read_level(coarsest)?;
        let sum: u64 = pixels.data.iter().map(|&v| u64::from(v)).sum();
        let mean = sum as f64 / pixels.data.len().max(1) as f64;

        let centre = Annotation::point(
            f64::from(info.width) / 2.0,
            f64::from(info.height) / 2.0,
            input.params.text("label")?,
        );
        Ok(Output::new()
            .annotation(centre)
            .measurement(Measurement::new("width", f64::from(info.width)).unit("px"))
            .measurement(Measurement::new("height", f64::from(info.height)).unit("px"))
            .measurement(Measurement::new("mean-brightness", mean)))
    }
}

tessera_sdk::export_algorithm!(Hello);
