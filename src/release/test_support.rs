//! Helpers shared by the release tests: environments, and a sample release.

use crate::release::Release;

pub(super) fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

pub(super) fn sample(destination: Option<&str>) -> Release {
    Release::new(
        "app",
        "registry.example.com/org/app",
        destination,
        "0123456789abcdef0123456789abcdef01234567",
        "dev@example.com",
        "2024-01-01T12:00:00Z",
    )
}

pub(super) fn parent_env(r: &Release) -> Vec<(String, String)> {
    r.to_env()
}

pub(super) fn lookup(vars: Vec<(String, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}
