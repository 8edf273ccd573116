//! A saved plan written as it is computed (`plan --out FILE`): each action goes to disk when
//! its tenant is planned, so a fleet-sized plan file never sits in memory whole. The file is
//! written beside its destination, owner-only, and renamed into place only once the plan is
//! complete: a failed or interrupted run leaves no half plan where `apply FILE` would read it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::ops::OpsError;
use crate::ops::plan::{PlanSink, TenantRead};
use crate::plan::{Plan, PlanHeader, PlanPart, SavedPlan};
use crate::state::Partition;

/// Where a saved plan came from (everything in a [`SavedPlan`] but the plan).
pub struct SavedPlanOrigin {
    pub manifests: String,
    pub state_path: String,
    pub sandbox: bool,
    pub commit: Option<String>,
    pub from_git: bool,
}

/// Streams a [`SavedPlan`] to a file: actions as they come, the rest (outcomes, notes,
/// summary: one entry per tenant at most) at the end.
pub struct SavedPlanWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    origin: Option<SavedPlanOrigin>,
    /// The plan without its actions (they are on disk).
    rest: Option<Plan>,
    actions: usize,
}

impl SavedPlanWriter {
    /// Opens the temporary file beside `path` (owner-only).
    pub fn create(path: &Path, origin: SavedPlanOrigin) -> Result<Self, OpsError> {
        let (file, tmp) = crate::ops::workspace::create_private_temp(path)?;
        Ok(SavedPlanWriter {
            path: path.to_path_buf(),
            tmp,
            out: Some(BufWriter::new(file)),
            origin: Some(origin),
            rest: None,
            actions: 0,
        })
    }

    fn write(&mut self, text: &str) -> Result<(), OpsError> {
        let out = self.out.as_mut().expect("open until finished");
        out.write_all(text.as_bytes())
            .map_err(OpsError::io(self.path.display()))
    }
}

/// `value` as pretty JSON, each line after the first indented by `indent` spaces.
fn pretty(value: &impl serde::Serialize, indent: usize) -> String {
    let text = serde_json::to_string_pretty(value).expect("plan serializes");
    text.replace('\n', &format!("\n{}", " ".repeat(indent)))
}

impl PlanSink for SavedPlanWriter {
    fn begin(&mut self, header: PlanHeader) -> Result<(), OpsError> {
        self.rest = Some(Plan::new(header));
        self.write("{\n  \"actions\": [")
    }

    fn part(&mut self, mut part: PlanPart, _: Option<TenantRead>) -> Result<(), OpsError> {
        for action in std::mem::take(&mut part.actions) {
            let sep = if self.actions == 0 {
                "\n    "
            } else {
                ",\n    "
            };
            self.actions += 1;
            let text = format!("{sep}{}", pretty(&action, 4));
            self.write(&text)?;
        }
        self.rest.as_mut().expect("begun").add_part(part);
        Ok(())
    }

    fn finish(&mut self, partitions: BTreeMap<Partition, u64>) -> Result<(), OpsError> {
        let mut plan = self.rest.take().expect("begun");
        plan.state.partitions = partitions;
        let origin = self.origin.take().expect("finished once");
        let saved = SavedPlan {
            plan,
            manifests: origin.manifests,
            state_path: origin.state_path,
            sandbox: origin.sandbox,
            commit: origin.commit,
            from_git: origin.from_git,
        };
        let serde_json::Value::Object(mut fields) =
            serde_json::to_value(&saved).expect("plan serializes")
        else {
            unreachable!("a saved plan is an object")
        };
        fields.remove("actions");
        let mut tail = String::from(if self.actions == 0 { "]" } else { "\n  ]" });
        for (key, value) in &fields {
            tail.push_str(&format!(",\n  {}: {}", pretty(key, 2), pretty(value, 2)));
        }
        tail.push_str("\n}\n");
        self.write(&tail)?;
        let file = self
            .out
            .take()
            .expect("open until finished")
            .into_inner()
            .map_err(|e| OpsError::io(self.path.display())(e.into_error()))?;
        file.sync_all().map_err(OpsError::io(self.path.display()))?;
        std::fs::rename(&self.tmp, &self.path).map_err(OpsError::io(self.path.display()))
    }
}

impl Drop for SavedPlanWriter {
    /// A plan not finished is not left behind.
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Sends a plan to two sinks (a saved plan file and what the terminal shows).
pub struct Both<'a>(pub &'a mut dyn PlanSink, pub &'a mut dyn PlanSink);

impl PlanSink for Both<'_> {
    fn begin(&mut self, header: PlanHeader) -> Result<(), OpsError> {
        self.0.begin(header.clone())?;
        self.1.begin(header)
    }

    /// The first sink gets the plan only: the live read goes to the second.
    fn part(&mut self, part: PlanPart, read: Option<TenantRead>) -> Result<(), OpsError> {
        self.0.part(part.clone(), None)?;
        self.1.part(part, read)
    }

    fn finish(&mut self, partitions: BTreeMap<Partition, u64>) -> Result<(), OpsError> {
        self.0.finish(partitions.clone())?;
        self.1.finish(partitions)
    }
}
