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
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a user serializes")
    }

    pub fn from_value(v: &Value) -> Option<EntraUser> {
        serde_json::from_value(v.clone()).ok()
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
        assert_eq!(EntraUser::from_value(&user.to_value()), Some(user));
        assert!(EntraUser::from_graph(&serde_json::json!({"displayName": "x"})).is_none());
    }
}
