//! Validation of upload ids before any path or object key is built from one.

use berth_core::error::{CoreError, CoreResult};

/// Accepts only the hyphenated UUID form (`8-4-4-4-12` hex digits), which
/// is what the domain hands out; anything else could smuggle a path
/// separator or `..` into a storage path.
pub(crate) fn check_upload_id(id: &str) -> CoreResult<&str> {
    let well_formed = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if well_formed {
        Ok(id)
    } else {
        Err(CoreError::BadRequest(format!(
            "invalid upload id {:?}: expected a UUID",
            id.chars().take(64).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::check_upload_id;

    #[test]
    fn accepts_hyphenated_uuids_only() {
        assert!(check_upload_id("1b4e28ba-2fa1-11d2-883f-0016d3cca427").is_ok());
        assert!(check_upload_id("1B4E28BA-2FA1-11D2-883F-0016D3CCA427").is_ok());
        for bad in [
            "",
            "1b4e28ba2fa111d2883f0016d3cca427",
            "{1b4e28ba-2fa1-11d2-883f-0016d3cca427}",
            "../../../../../../../../../../etc/passwd",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca42/",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca4271",
            "1b4e28ba-2fa1-11d2-883f_0016d3cca427",
        ] {
            assert!(check_upload_id(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
