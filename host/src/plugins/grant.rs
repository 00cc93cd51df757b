//! The grant: what an installed plugin may touch, as the admin approved it.
//!
//! Five things, from the manifest's `[grants]` and `[limits]`: data scope, write rights, GPU
//! memory, memory cap and time budget. Limits are clamped to the host maxima and defaults are
//! filled in before they are shown, so the admin approves exactly what will be enforced. The
//! approved grant is stored with the installed plugin; the runtime takes its limits from the
//! stored grant, not from the manifest.

use serde::{Deserialize, Serialize};

use super::Manifest;
use super::manifest::DataScope;
use crate::runtime::PluginLimits;

/// What a plugin may touch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Grant {
    /// Which images its `data` calls may open.
    pub data: DataScope,
    /// Whether it may write annotations.
    pub write: bool,
    /// Device memory it may hold, MiB (0: no GPU).
    pub gpu_memory_mib: u64,
    /// Largest linear memory, MiB.
    pub memory_mib: u64,
    /// Longest run, seconds.
    pub time_seconds: u64,
}

/// One field that differs between two grants.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantChange {
    /// The field, as in the manifest (`data`, `write`, `gpu-memory-mib`, `memory-mib`,
    /// `time-seconds`).
    pub field: String,
    /// The value approved so far.
    pub from: String,
    /// The value asked for.
    pub to: String,
    /// True when the new value lets the plugin do more.
    pub widens: bool,
}

impl Grant {
    /// What a manifest asks for, clamped to the host's maxima with defaults filled in.
    pub fn requested(manifest: &Manifest) -> Grant {
        let limits = PluginLimits::clamped(manifest.memory_bytes(), manifest.call_time());
        Grant {
            data: manifest.grants.data,
            write: manifest.grants.write,
            gpu_memory_mib: manifest.grants.gpu_memory_mib,
            memory_mib: limits.memory_bytes >> 20,
            time_seconds: limits.call_time.as_secs(),
        }
    }

    /// The limits each call runs under.
    pub fn limits(&self) -> PluginLimits {
        PluginLimits::clamped(
            Some(self.memory_mib << 20),
            Some(std::time::Duration::from_secs(self.time_seconds)),
        )
        .with_gpu_memory(self.gpu_memory_mib << 20)
    }

    /// The fields as (name, value text), in a fixed order.
    pub fn fields(&self) -> [(&'static str, String); 5] {
        [
            ("data", self.data.to_string()),
            ("write", self.write.to_string()),
            ("gpu-memory-mib", self.gpu_memory_mib.to_string()),
            ("memory-mib", self.memory_mib.to_string()),
            ("time-seconds", self.time_seconds.to_string()),
        ]
    }

    /// What changes from `self` (approved) to `next` (asked for).
    pub fn diff(&self, next: &Grant) -> Vec<GrantChange> {
        let widens = [
            next.data == DataScope::Project && self.data == DataScope::Image,
            next.write && !self.write,
            next.gpu_memory_mib > self.gpu_memory_mib,
            next.memory_mib > self.memory_mib,
            next.time_seconds > self.time_seconds,
        ];
        self.fields()
            .into_iter()
            .zip(next.fields())
            .zip(widens)
            .filter(|(((_, from), (_, to)), _)| from != to)
            .map(|(((field, from), (_, to)), widens)| GrantChange {
                field: field.to_string(),
                from,
                to,
                widens,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            data: DataScope::Image,
            write: false,
            gpu_memory_mib: 0,
            memory_mib: 256,
            time_seconds: 60,
        }
    }

    #[test]
    fn the_diff_lists_changed_fields_and_whether_they_widen() {
        let old = grant();
        assert!(old.diff(&old).is_empty());
        let new = Grant {
            data: DataScope::Project,
            memory_mib: 128,
            ..grant()
        };
        let changes = old.diff(&new);
        assert_eq!(changes.len(), 2);
        assert_eq!(
            (changes[0].field.as_str(), changes[0].widens),
            ("data", true)
        );
        assert_eq!(
            (
                changes[1].field.as_str(),
                changes[1].from.as_str(),
                changes[1].widens
            ),
            ("memory-mib", "256", false)
        );
    }
}
