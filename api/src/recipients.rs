//! Who minutes may be mailed to. By default only the uploader's own address: the email
//! goes out from the operator's sender, so an open choice of recipient would let any
//! member send mail in the operator's name to anyone. `MINUTES_MAIL_ALLOWED_RECIPIENTS`
//! widens it to listed addresses and whole domains.

use std::str::FromStr;

/// Addresses (`ann@example.com`) and domains (`example.com` or `@example.com`) that may
/// receive minutes besides the uploader; comma-separated, case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedRecipients {
    addresses: Vec<String>,
    domains: Vec<String>,
}

impl FromStr for AllowedRecipients {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut allowed = Self::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = entry.to_ascii_lowercase();
            match entry.split_once('@') {
                Some(("", domain)) => allowed.domains.push(checked_domain(domain, &entry)?),
                Some(_) => {
                    minutes_shared::accounts::check_email(&entry)
                        .map_err(|error| format!("{entry}: {error}"))?;
                    allowed.addresses.push(entry);
                }
                None => allowed.domains.push(checked_domain(&entry, &entry)?),
            }
        }
        Ok(allowed)
    }
}

fn checked_domain(domain: &str, entry: &str) -> Result<String, String> {
    let valid = domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    match valid {
        true => Ok(domain.to_string()),
        false => Err(format!("{entry}: not an address or a domain")),
    }
}

impl AllowedRecipients {
    /// Whether `uploader` may have minutes sent to `recipient`.
    pub fn permits(&self, uploader: &str, recipient: &str) -> bool {
        let recipient = recipient.trim().to_ascii_lowercase();
        if recipient == uploader.trim().to_ascii_lowercase() {
            return true;
        }
        let domain = recipient.rsplit_once('@').map(|(_, domain)| domain).unwrap_or("");
        self.addresses.contains(&recipient) || self.domains.iter().any(|d| d == domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_uploader_by_default_and_listed_addresses_and_domains_when_allowed() {
        let none = AllowedRecipients::default();
        assert!(none.permits("ann@example.com", "Ann@Example.com"));
        assert!(!none.permits("ann@example.com", "bob@example.com"));
        let some: AllowedRecipients = "team@example.org, @example.com,example.net".parse().unwrap();
        assert!(some.permits("ann@x.test", "bob@example.com"));
        assert!(some.permits("ann@x.test", "x@EXAMPLE.NET"));
        assert!(some.permits("ann@x.test", "team@example.org"));
        assert!(!some.permits("ann@x.test", "other@example.org"));
        assert!(!some.permits("ann@x.test", "bob@sub.example.com"));
        assert!(!some.permits("ann@x.test", "bob@evilexample.com"));
        assert!("not a domain".parse::<AllowedRecipients>().is_err());
        assert_eq!("".parse::<AllowedRecipients>().unwrap(), AllowedRecipients::default());
    }
}
