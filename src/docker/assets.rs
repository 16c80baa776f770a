//! Asset bridging (`asset_path`, Kamal's `Kamal::Commands::App::Assets`): before a proxy role
//! boots, the new version's assets are copied out of its image and merged with the previous
//! version's, both ways, so that pages of either version find their files while the proxy moves
//! traffic; after the old container stopped, older versions' directories are removed.
//!
//! On the host: `.kamal/apps/<A>/assets/extracted/<R>-<V>` (copied out of the image) and
//! `.kamal/apps/<A>/assets/volumes/<R>-<V>` (mounted at `asset_path` in the container).

use crate::command::CommandSpec;
use crate::config::model::{Config, Role};
use crate::shell::quote;

use super::app::App;
use super::script::{sh, words};

/// `.kamal/apps/<service>[-<dest>]/assets`.
pub fn assets_directory(config: &Config) -> String {
    format!(".kamal/apps/{}/assets", config.service_and_destination())
}

/// `.../assets/extracted/<role>-<version>`.
pub fn extracted_directory(config: &Config, role: &str, version: &str) -> String {
    format!("{}/extracted/{role}-{version}", assets_directory(config))
}

/// `.../assets/volumes/<role>-<version>`.
pub fn volume_directory(config: &Config, role: &str, version: &str) -> String {
    format!("{}/volumes/{role}-{version}", assets_directory(config))
}

/// The role's asset path in the container (`asset_path` without its `:options`), when the role
/// bridges assets: it runs the proxy and has a non-empty `asset_path`.
pub fn container_path(role: &Role) -> Option<&str> {
    let raw = role.asset_path.as_deref()?;
    let path = raw.split_once(':').map_or(raw, |(p, _)| p);
    (!path.is_empty() && role.runs_proxy()).then_some(path)
}

/// One round trip: extract the assets of `version`'s image into its extracted directory (with
/// a throwaway `<prefix>-assets` container), then read the version running now and fill the
/// new volume from the new assets, and merge both ways with the old version's (`cp -rnT`: files
/// already there win, so nothing of either version is overwritten). `None` when the role does
/// not bridge assets.
pub fn prepare(app: &App<'_>, version: &str) -> Option<CommandSpec> {
    let role = app.role();
    let path = container_path(role)?;
    let config = app.config();
    let container = format!("{}-assets", app.container_prefix());
    let new_extracted = extracted_directory(config, &role.name, version);
    let new_volume = volume_directory(config, &role.name, version);
    let dir = |v: &str| format!("{}/{}-\"$old\"", assets_directory(config), quote(v));
    let script = format!(
        "set -e\n\
         {mkdir_extracted}\n\
         docker container rm {container} > /dev/null 2>&1 || true\n\
         docker container create --name {container} {image} > /dev/null\n\
         {cp}\n\
         docker container rm {container} > /dev/null\n\
         old=$({current} || true)\n\
         {mkdir_volume}\n\
         cp -rnT {new_extracted} {new_volume}\n\
         if [ -n \"$old\" ] && [ \"$old\" != {v} ]; then\n\
         \x20 cp -rnT {new_extracted} {old_volume} || true\n\
         \x20 cp -rnT {old_extracted} {new_volume} || true\n\
         fi",
        mkdir_extracted = words(&["mkdir", "-p", &new_extracted]),
        container = quote(&container),
        image = quote(&app.image(version)),
        cp = words(&[
            "docker",
            "container",
            "cp",
            "-L",
            &format!("{container}:{path}/."),
            &new_extracted,
        ]),
        current = app.current_running_version().to_shell(),
        mkdir_volume = words(&["mkdir", "-p", &new_volume]),
        new_extracted = quote(&new_extracted),
        new_volume = quote(&new_volume),
        v = quote(version),
        old_volume = dir(&format!("volumes/{}", role.name)),
        old_extracted = dir(&format!("extracted/{}", role.name)),
    );
    Some(sh(
        format!(
            "prepare {} assets of {version} on {}",
            role.name,
            app.host()
        ),
        script,
    ))
}

/// Script text, run after the old version stopped: remove the role's asset directories of
/// every version but `version` (Kamal's `clean_up_assets`). `None` without asset bridging.
pub fn clean_up_script(config: &Config, role: &Role, version: &str) -> Option<String> {
    container_path(role)?;
    let base = assets_directory(config);
    let find = |kind: &str| {
        format!(
            "find {} -maxdepth 1 -name {} ! -name {} -exec rm -rf {{}} +",
            quote(&format!("{base}/{kind}")),
            quote(&format!("{}-*", role.name)),
            quote(&format!("{}-{version}", role.name)),
        )
    };
    Some(format!("{{ {}; {}; }}", find("extracted"), find("volumes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::config_with;

    const CONFIG: &str = "service: app\nimage: dhh/app\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\nservers: [1.1.1.1]\nproxy: {host: a.example.com}\nasset_path: /rails/public/assets:ro\n";

    #[test]
    fn assets_are_extracted_and_merged_both_ways() {
        let config = config_with(CONFIG, None);
        let role = config.role("web").expect("web");
        let app = App::new(&config, role, "1.1.1.1");
        let script = prepare(&app, "999").expect("assets").to_shell();
        insta::assert_snapshot!(script);
        assert!(script.contains("app-web-assets:/rails/public/assets/."));
        assert!(!script.contains(":ro/."));
    }

    #[test]
    fn clean_up_keeps_only_the_new_version() {
        let config = config_with(CONFIG, None);
        let role = config.role("web").expect("web");
        let script = clean_up_script(&config, role, "999").expect("assets");
        assert!(script.contains("! -name web-999"));
        assert!(script.contains(".kamal/apps/app/assets/extracted"));
    }

    #[test]
    fn roles_without_the_proxy_bridge_nothing() {
        let config = config_with(
            "service: app\nimage: dhh/app\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\nservers: {workers: {hosts: [1.1.1.1], proxy: false}}\nprimary_role: workers\nasset_path: /assets\n",
            None,
        );
        let role = config.role("workers").expect("workers");
        assert!(container_path(role).is_none());
    }
}
