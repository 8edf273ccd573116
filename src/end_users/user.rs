//! An Entra user as the end-user sync reads it (the `$select`ed properties), as plain data.
//! Every text here is untrusted: it comes from a customer's directory.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The user properties the sync reads, by their Graph names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserProperty {
    DisplayName,
    GivenName,
    Surname,
    Mail,
    UserPrincipalName,
    OtherMails,
    UserType,
    AccountEnabled,
    Department,
    OfficeLocation,
    CompanyName,
    JobTitle,
    BusinessPhones,
    MobilePhone,
}

impl UserProperty {
    pub const ALL: &'static [UserProperty] = &[
        UserProperty::DisplayName,
        UserProperty::GivenName,
        UserProperty::Surname,
        UserProperty::Mail,
        UserProperty::UserPrincipalName,
        UserProperty::OtherMails,
        UserProperty::UserType,
        UserProperty::AccountEnabled,
        UserProperty::Department,
        UserProperty::OfficeLocation,
        UserProperty::CompanyName,
        UserProperty::JobTitle,
        UserProperty::BusinessPhones,
        UserProperty::MobilePhone,
    ];

    /// Properties a contact field may be taken from (texts, or lists of texts: not the user
    /// type or whether the account is enabled).
    pub fn field_sources() -> impl Iterator<Item = UserProperty> {
        Self::ALL
            .iter()
            .copied()
            .filter(|p| !matches!(p, UserProperty::UserType | UserProperty::AccountEnabled))
    }

    pub fn graph_name(self) -> &'static str {
        match self {
            UserProperty::DisplayName => "displayName",
            UserProperty::GivenName => "givenName",
            UserProperty::Surname => "surname",
            UserProperty::Mail => "mail",
            UserProperty::UserPrincipalName => "userPrincipalName",
            UserProperty::OtherMails => "otherMails",
            UserProperty::UserType => "userType",
            UserProperty::AccountEnabled => "accountEnabled",
            UserProperty::Department => "department",
            UserProperty::OfficeLocation => "officeLocation",
            UserProperty::CompanyName => "companyName",
            UserProperty::JobTitle => "jobTitle",
            UserProperty::BusinessPhones => "businessPhones",
            UserProperty::MobilePhone => "mobilePhone",
        }
    }

    pub fn parse(name: &str) -> Option<UserProperty> {
        Self::ALL.iter().copied().find(|p| p.graph_name() == name)
    }

    /// `$select` of every sync read: `id` and every property above.
    pub fn select() -> String {
        std::iter::once("id")
            .chain(Self::ALL.iter().map(|p| p.graph_name()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One user, with the properties the sync selects. Absent and null are the same (Graph omits
/// properties never set from delta answers).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraUser {
    /// Lowercase object id: the contact's identity (a rename or a new UPN is an update).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_mails: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub business_phones: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<String>,
}

impl EntraUser {
    /// From a Graph user object (a `/users` or `/users/delta` item); `None` without an id.
    /// Unknown properties are ignored; nulls are absent.
    pub fn from_graph(v: &Value) -> Option<EntraUser> {
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let list = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(EntraUser {
            id: text("id")?.to_lowercase(),
            display_name: text("displayName"),
            given_name: text("givenName"),
            surname: text("surname"),
            mail: text("mail"),
            user_principal_name: text("userPrincipalName"),
            other_mails: list("otherMails"),
            user_type: text("userType"),
            account_enabled: v.get("accountEnabled").and_then(Value::as_bool),
            department: text("department"),
            office_location: text("officeLocation"),
            company_name: text("companyName"),
            job_title: text("jobTitle"),
            business_phones: list("businessPhones"),
            mobile_phone: text("mobilePhone"),
        })
    }

    /// A text property (the first entry of a list property).
    pub fn text(&self, property: UserProperty) -> Option<&str> {
        let value = match property {
            UserProperty::DisplayName => self.display_name.as_deref(),
            UserProperty::GivenName => self.given_name.as_deref(),
            UserProperty::Surname => self.surname.as_deref(),
            UserProperty::Mail => self.mail.as_deref(),
            UserProperty::UserPrincipalName => self.user_principal_name.as_deref(),
            UserProperty::OtherMails => self.other_mails.first().map(String::as_str),
            UserProperty::UserType => self.user_type.as_deref(),
            UserProperty::AccountEnabled => None,
            UserProperty::Department => self.department.as_deref(),
            UserProperty::OfficeLocation => self.office_location.as_deref(),
            UserProperty::CompanyName => self.company_name.as_deref(),
            UserProperty::JobTitle => self.job_title.as_deref(),
            UserProperty::BusinessPhones => self.business_phones.first().map(String::as_str),
            UserProperty::MobilePhone => self.mobile_phone.as_deref(),
        };
        value.filter(|s| !s.is_empty())
    }

    /// The lowercase domains of the user's mail and user principal name.
    pub fn domains(&self) -> Vec<String> {
        let mut domains: Vec<String> = [&self.mail, &self.user_principal_name]
            .into_iter()
            .flatten()
            .filter_map(|address| address.rsplit_once('@'))
            .map(|(_, domain)| domain.to_lowercase())
            .collect();
        domains.dedup();
        domains
    }

    /// As plain JSON (what a contact records as its `entra` attribute).
    /// Built directly (the serde path costs a contact's worth of time on a first sync);
    /// the same as `serde_json::to_value(self)` (tested).
    pub fn to_value(&self) -> Value {
        let mut map = serde_json::Map::new();
        let mut text = |key: &str, value: &Option<String>| {
            if let Some(v) = value {
                map.insert(key.to_string(), Value::String(v.clone()));
            }
        };
        text("displayName", &self.display_name);
        text("givenName", &self.given_name);
        text("surname", &self.surname);
        text("mail", &self.mail);
        text("userPrincipalName", &self.user_principal_name);
        text("userType", &self.user_type);
        text("department", &self.department);
        text("officeLocation", &self.office_location);
        text("companyName", &self.company_name);
        text("jobTitle", &self.job_title);
        text("mobilePhone", &self.mobile_phone);
        map.insert("id".to_string(), Value::String(self.id.clone()));
        let mut list = |key: &str, values: &[String]| {
            if !values.is_empty() {
                let items = values.iter().cloned().map(Value::String).collect();
                map.insert(key.to_string(), Value::Array(items));
            }
        };
        list("otherMails", &self.other_mails);
        list("businessPhones", &self.business_phones);
        if let Some(enabled) = self.account_enabled {
            map.insert("accountEnabled".to_string(), Value::Bool(enabled));
        }
        Value::Object(map)
    }

    pub fn from_value(v: &Value) -> Option<EntraUser> {
        EntraUser::deserialize(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_graph_user_is_read_with_nulls_as_absent_and_a_lowercase_id() {
        let user = EntraUser::from_graph(&serde_json::json!({
            "id": "ABC-1",
            "displayName": "Ada",
            "mail": null,
            "userPrincipalName": "ada@Foggy.example",
            "accountEnabled": false,
            "businessPhones": ["+1 555", ""],
            "department": "",
            "extra": 1
        }))
        .unwrap();
        assert_eq!(user.id, "abc-1");
        assert_eq!(user.mail, None);
        assert_eq!(user.department, None);
        assert_eq!(user.account_enabled, Some(false));
        assert_eq!(user.business_phones, vec!["+1 555".to_string()]);
        assert_eq!(user.domains(), vec!["foggy.example".to_string()]);
        assert_eq!(EntraUser::from_value(&user.to_value()), Some(user.clone()));
        assert_eq!(user.to_value(), serde_json::to_value(&user).unwrap());
        let every = EntraUser {
            id: "id-1".into(),
            display_name: Some("d".into()),
            given_name: Some("g".into()),
            surname: Some("s".into()),
            mail: Some("m".into()),
            user_principal_name: Some("u".into()),
            other_mails: vec!["o1".into(), "o2".into()],
            user_type: Some("Member".into()),
            account_enabled: Some(true),
            department: Some("dep".into()),
            office_location: Some("off".into()),
            company_name: Some("co".into()),
            job_title: Some("jt".into()),
            business_phones: vec!["b".into()],
            mobile_phone: Some("mob".into()),
        };
        assert_eq!(every.to_value(), serde_json::to_value(&every).unwrap());
        assert_eq!(EntraUser::from_value(&every.to_value()), Some(every));
        assert!(EntraUser::from_graph(&serde_json::json!({"displayName": "x"})).is_none());
    }
}
