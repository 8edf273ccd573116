//! `kind: DriftException`: an accepted, reviewed deviation for a tenant, with a reason and an
//! expiry date. Until it expires, matching drift is listed apart and does not count.

use schemars::JsonSchema;
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic};
use crate::manifest::decode::{Cx, Fields};
use crate::manifest::{ManifestKind, decode_name, decode_reference};
use crate::source::Located;

/// An accepted deviation: drift on `address` in `tenant` is expected until `expires`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DriftExceptionDoc {
    /// Stable id: lowercase letters, digits and '-', at most 63 characters.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: Located<String>,
    /// The tenant (its `name`) the deviation is accepted in.
    pub tenant: Located<String>,
    /// The object's address as plans show it (e.g. `guest.foggy-it.dana-support`), or a
    /// finding's as drift shows it (`policy.foggy-it.subscription-ending`); a trailing `*`
    /// matches every address with that prefix.
    pub address: Located<String>,
    /// Why this is accepted (shown in every drift report).
    pub reason: Located<String>,
    /// Last day it applies (YYYY-MM-DD); after that the drift counts again.
    #[schemars(regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub expires: Located<String>,
}

impl ManifestKind for DriftExceptionDoc {
    const KIND: &'static str = "DriftException";
    const FIELDS: &'static [&'static str] = &["name", "tenant", "address", "reason", "expires"];

    fn decode(cx: &mut Cx, fields: &Fields) -> Option<Self> {
        let name = decode_name(cx, fields, Self::KIND);
        let tenant = fields
            .required(cx, "tenant")
            .and_then(|n| decode_reference(cx, n, "`tenant`"));
        let address = fields
            .required(cx, "address")
            .and_then(|n| cx.non_empty_string(n, "`address`"));
        let reason = fields
            .required(cx, "reason")
            .and_then(|n| cx.non_empty_string(n, "`reason`"));
        let expires = fields.required(cx, "expires").and_then(|n| {
            let date = cx.string(n, "`expires`")?;
            if date.value.parse::<jiff::civil::Date>().is_err() {
                cx.report(
                    Diagnostic::error(
                        Code::InvalidValue,
                        date.loc,
                        format!("`expires` is not a date: `{}`", date.value),
                    )
                    .with_label("expected YYYY-MM-DD")
                    .with_help("write the last day the exception applies, e.g. 2026-12-31"),
                );
                return None;
            }
            Some(date)
        });
        Some(DriftExceptionDoc {
            name: name?,
            tenant: tenant?,
            address: address?,
            reason: reason?,
            expires: expires?,
        })
    }
}
