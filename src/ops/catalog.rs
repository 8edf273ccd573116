//! The stored catalog as a plan holds it: on disk. A fleet's catalog partition has a record
//! for every tenant and organization (40,000 objects, 50 MB parsed, at 10,000 tenants with
//! three organizations each); a plan streams it from the store into a [`Spill`] grouped the
//! way the catalog is planned ([`CatalogGroups`]), reads one group back at a time, and reads
//! each tenant's own record when that tenant is planned.

use std::collections::{BTreeMap, HashMap};

use crate::model::spill::Spill;
use crate::ops::OpsError;
use crate::plan::{CatalogGroups, CatalogSource};
use crate::state::{State, StateError, StateObject};

/// How errors name the catalog's temporary file.
const SPILL_PATH: &str = "temporary store of the state catalog (in $TMPDIR)";

/// A byte range of the spill: one object's line, or consecutive lines of one group.
#[derive(Clone, Copy)]
struct Run {
    start: u64,
    end: u64,
}

/// One line of the spill.
type Line = (String, StateObject);

pub struct StoredCatalog {
    spill: Spill,
    /// Where each group's objects are.
    groups: Vec<Vec<Run>>,
    /// Where each tenant's record (`tenant.NAME`) is, by name.
    tenants: HashMap<Box<str>, Run>,
    /// The partition's lineage, serial and recovered changes (its objects are in the spill).
    pub meta: State,
}

impl StoredCatalog {
    /// Streams the catalog partition (through `load`, a store's
    /// [`crate::state::StateStore::load_partition_each`]) into groups.
    pub fn load<S: CatalogSource>(
        groups: &CatalogGroups<S>,
        load: impl FnOnce(
            &mut dyn FnMut(String, StateObject) -> Result<(), StateError>,
        ) -> Result<State, OpsError>,
    ) -> Result<StoredCatalog, OpsError> {
        let mut catalog = StoredCatalog {
            spill: Spill::new(),
            groups: vec![Vec::new(); groups.len()],
            tenants: HashMap::new(),
            meta: State::new(),
        };
        let spill_error = |e: std::io::Error| StateError::Io {
            context: "cannot write",
            path: SPILL_PATH.to_string(),
            source: e,
        };
        catalog.meta = load(&mut |address, object| {
            let group = groups.of_object(&address, &object);
            let line = serde_json::to_vec(&(&address, &object)).expect("state serializes");
            let start = catalog.spill.append(&line).map_err(spill_error)?;
            let run = Run {
                start,
                end: catalog.spill.len(),
            };
            if let Some(name) = address.strip_prefix("tenant.") {
                catalog.tenants.insert(name.into(), run);
            }
            let runs = &mut catalog.groups[group];
            match runs.last_mut() {
                Some(last) if last.end == run.start => last.end = run.end,
                _ => runs.push(run),
            }
            Ok(())
        })?;
        catalog.spill.finish().map_err(OpsError::io(SPILL_PATH))?;
        catalog.tenants.shrink_to_fit();
        Ok(catalog)
    }

    /// One group's stored objects.
    pub fn group(&self, group: usize) -> Result<BTreeMap<String, StateObject>, OpsError> {
        let mut objects = BTreeMap::new();
        for run in &self.groups[group] {
            let bytes = self
                .spill
                .read(run.start, run.end)
                .map_err(OpsError::io(SPILL_PATH))?;
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let (address, object) = parse(line)?;
                objects.insert(address, object);
            }
        }
        Ok(objects)
    }

    /// Whether state has a record of tenant `name`.
    pub fn has_tenant(&self, name: &str) -> bool {
        self.tenants.contains_key(name)
    }

    /// The stored record of tenant `name`, with its address.
    pub fn tenant(&self, name: &str) -> Result<Option<Line>, OpsError> {
        let Some(run) = self.tenants.get(name) else {
            return Ok(None);
        };
        let bytes = self
            .spill
            .read(run.start, run.end)
            .map_err(OpsError::io(SPILL_PATH))?;
        parse(bytes.strip_suffix(b"\n").unwrap_or(&bytes)).map(Some)
    }
}

fn parse(line: &[u8]) -> Result<Line, OpsError> {
    serde_json::from_slice(line).map_err(|e| OpsError::io(SPILL_PATH)(std::io::Error::other(e)))
}
