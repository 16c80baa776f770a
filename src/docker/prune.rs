//! Pruning old containers and images (`lib/kamal/commands/prune.rb`, §5.1 step 8).
//!
//! Unlike Kamal, whose filters only name the service, containers are pruned per service **and
//! destination** (`label=destination=<D>`, or `label=destination=` without one), so deploying
//! `production` never removes `staging`'s stopped containers on a shared host. Images carry only
//! the `service` label, so image pruning stays per service, but it keeps every image used by any
//! container of the service (every destination) and every `latest`/`latest-*` tag (Kamal keeps
//! only its own destination's latest tag and untags the others').

use crate::command::CommandSpec;
use crate::config::model::Config;
use crate::shell::quote;

use super::script::sh;

/// `label=destination=<D>` or `label=destination=`.
fn destination_filter(config: &Config) -> String {
    format!(
        "label=destination={}",
        config.destination.as_deref().unwrap_or("")
    )
}

/// Remove stopped (`created`/`exited`/`dead`) containers of this service and destination beyond
/// the newest `retain`. With a replicated role (`x-dray: replicas`) the count is of versions:
/// every stopped container of one version (its replicas, its roles) counts as one.
pub fn containers(config: &Config, retain: u32, host: &str) -> CommandSpec {
    if config.roles.iter().any(|r| r.replicated()) {
        return versions(config, retain, host);
    }
    sh(
        format!("prune containers on {host}"),
        format!(
            "docker ps -q -a --filter {} --filter {} --filter status=created --filter status=exited --filter status=dead | tail -n +{} | while read container_id; do docker rm $container_id; done",
            quote(&format!("label=service={}", config.service)),
            quote(&destination_filter(config)),
            u64::from(retain) + 1
        ),
    )
}

/// [`containers`] counting versions: each stopped container's version is its name without
/// `<service>-<role>[-<dest>]-` (its role from its label) and without the `-r<replica>` of its
/// replica label; the containers of versions beyond the newest `retain` are removed.
fn versions(config: &Config, retain: u32, host: &str) -> CommandSpec {
    let dest = config
        .destination
        .as_deref()
        .map(|d| format!("-{d}"))
        .unwrap_or_default();
    sh(
        format!("prune containers on {host}"),
        format!(
            "docker ps -a --filter {} --filter {} --filter status=created --filter status=exited --filter status=dead --format {} | {{ seen=' '; n=0; while read id name role replica; do \
v=${{name#\"{service}-$role{dest}-\"}}; [ -z \"$replica\" ] || v=${{v%-r\"$replica\"}}; \
case \"$seen\" in *\" $v \"*) ;; *) n=$((n + 1)); seen=\"$seen$v \" ;; esac; \
[ \"$n\" -le {retain} ] || docker rm \"$id\"; done; }}",
            quote(&format!("label=service={}", config.service)),
            quote(&destination_filter(config)),
            quote("{{.ID}} {{.Names}} {{.Label \"role\"}} {{.Label \"dray.replica\"}}"),
            service = config.service,
        ),
    )
}

/// `docker image prune --force --filter label=service=S`, as shell words.
fn image_prune_words(config: &Config) -> String {
    super::script::words(&[
        "docker",
        "image",
        "prune",
        "--force",
        "--filter",
        &format!("label=service={}", config.service),
    ])
}

/// `docker image prune --force --filter label=service=S`: dangling images no container uses.
/// Docker runs one prune at a time per engine and refuses a second ("a prune operation is
/// already running", e.g. another service deploying on the same host): it is tried again, up
/// to 10 times a second apart (a prune is idempotent).
pub fn dangling_images(config: &Config, host: &str) -> CommandSpec {
    let prune = image_prune_words(config);
    sh(
        format!("prune dangling images on {host}"),
        super::script::retry_while_busy(&prune),
    )
}

/// Untag the service's images that no container of the service uses (by tag or id), keeping
/// `<repo>:latest`, `<repo>:latest-*` and `<none>` tags.
pub fn tagged_images(config: &Config, host: &str) -> CommandSpec {
    let service = quote(&format!("label=service={}", config.service));
    let latest = quote(&format!("{}:latest", config.repository));
    let latest_dest = quote(&format!("{}:latest-", config.repository));
    sh(
        format!("prune images on {host}"),
        format!(
            "used=$(docker container ls --all --filter {service} --format '{{{{.Image}}}}'); \
docker image ls --filter {service} --format '{{{{.ID}}}} {{{{.Repository}}}}:{{{{.Tag}}}}' | while read image tag; do \
case \"$tag\" in {latest}|{latest_dest}*|*:'<none>') continue ;; esac; \
printf '%s\\n' \"$used\" | grep -qxF -e \"$image\" -e \"$tag\" && continue; \
docker rmi \"$tag\"; done"
        ),
    )
}

/// The three prune steps in order: containers, dangling images, tagged images.
pub fn all(config: &Config, host: &str) -> Vec<CommandSpec> {
    vec![
        containers(config, config.retain_containers, host),
        dangling_images(config, host),
        tagged_images(config, host),
    ]
}

/// The three prune steps of a deploy as one round trip, in order, each after the previous
/// succeeded, as one flat script ([`all_script`]).
pub fn all_batch(config: &Config, host: &str) -> CommandSpec {
    super::script::sh(format!("prune on {host}"), all_script(config))
}

/// [`all`]'s three steps as one script with no nested shell and no pipeline, in [`all`]'s
/// order of effects (containers, then images), with as few `docker` calls one after another as
/// that order allows (each call costs tens of milliseconds of the server's time, issue #19):
///
/// 1. One `docker ps -a` of the service's containers (every destination and state, newest
///    first) gives both what [`containers`] removes (this destination's stopped containers
///    beyond the newest `retain_containers`) and what [`tagged_images`] keeps (the images of
///    every container that stays), instead of a container listing for each.
/// 2. The removal (`docker rm`: all but the last with their failures ignored, then the last,
///    whose status is the step's, as Kamal's `… | while read container_id; do docker rm
///    $container_id; done`) runs beside `docker image ls`: removing containers changes no
///    image or tag.
/// 3. Once both ended, the dangling-image prune (retried while another prune runs) runs in a
///    background subshell while the unused tags are untagged in two `docker rmi` calls (all
///    but the last with their failures ignored, then the last, as Kamal's loop): they touch
///    different images (the tag loop skips `<none>`).
///
/// Image references hold no blanks or glob characters, so the lists split into the same
/// words. With a replicated role the containers are counted by version ([`containers`]), and
/// the script keeps its own container listing for the images.
pub fn all_script(config: &Config) -> String {
    let prune = super::script::retry_while_busy_inline(&image_prune_words(config));
    let service = quote(&format!("label=service={}", config.service));
    let latest = quote(&format!("{}:latest", config.repository));
    let latest_dest = quote(&format!("{}:latest-", config.repository));
    let image_ls = format!(
        "docker image ls --filter {service} --format '{{{{.ID}}}} {{{{.Repository}}}}:{{{{.Tag}}}}'"
    );
    let untag = format!(
        "dray_rest=; dray_last=; \
while [ \"$#\" -ge 2 ]; do image=$1; tag=$2; shift 2; \
case \"$tag\" in {latest}|{latest_dest}*|*:'<none>') continue ;; esac; \
case \"$nl$used$nl\" in *\"$nl$image$nl\"*|*\"$nl$tag$nl\"*) continue ;; esac; \
dray_rest=\"$dray_rest${{dray_last:+ $dray_last}}\"; dray_last=$tag; done; \
[ -z \"$dray_rest\" ] || docker rmi $dray_rest || true; [ -z \"$dray_last\" ] || docker rmi \"$dray_last\""
    );
    if config.roles.iter().any(|r| r.replicated()) {
        let c = containers(config, config.retain_containers, "");
        let containers = format!("{{ {}\n}}", super::script::inner(&c).unwrap_or_default());
        return format!(
            "{containers} && {{ ( {prune} ) & dray_prune=$!; {{ used=$(docker container ls --all --filter {service} --format '{{{{.Image}}}}'); nl='\n'; \
set -- $({image_ls}); {untag}; }}; dray_tagged=$?; wait $dray_prune && [ \"$dray_tagged\" = 0 ]; }}"
        );
    }
    // The destination as the listing prints it: `d<destination>` (never an empty word).
    let dest = quote(&format!(
        "d{}",
        config.destination.as_deref().unwrap_or_default()
    ));
    format!(
        "nl='\n'; dray_ps=$(docker ps -a --filter {service} --format '{{{{.ID}}}} {{{{.State}}}} d{{{{.Label \"destination\"}}}} {{{{.Image}}}}') && {{ \
used=; dray_rm=; dray_rml=; n=0; set -- $dray_ps; \
while [ \"$#\" -ge 4 ]; do id=$1; state=$2; dest=$3; image=$4; shift 4; \
if [ \"$dest\" = {dest} ]; then case \"$state\" in created|exited|dead) n=$((n + 1)); \
[ \"$n\" -le {retain} ] || {{ dray_rm=\"$dray_rm${{dray_rml:+ $dray_rml}}\"; dray_rml=$id; continue; }} ;; esac; fi; \
used=\"$used$nl$image\"; done; \
{{ [ -z \"$dray_rm\" ] || docker rm $dray_rm || true; [ -z \"$dray_rml\" ] || docker rm \"$dray_rml\"; }} & dray_rmp=$!; \
dray_images=$({image_ls}); dray_ils=$?; wait $dray_rmp && [ \"$dray_ils\" = 0 ]; }} && \
{{ ( {prune} ) & dray_prune=$!; {{ set -- $dray_images; {untag}; }}; dray_tagged=$?; wait $dray_prune && [ \"$dray_tagged\" = 0 ]; }}",
        retain = config.retain_containers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::{base, staging, write_stand_in_docker};

    #[test]
    fn prune_without_destination() {
        let c = base();
        let cmds = all(&c, "1.1.1.1");
        insta::assert_snapshot!(cmds[0].to_shell(), @"sh -c 'docker ps -q -a --filter label=service=app --filter label=destination= --filter status=created --filter status=exited --filter status=dead | tail -n +6 | while read container_id; do docker rm $container_id; done'");
        insta::assert_snapshot!(cmds[1].to_shell(), @r#"sh -c 'n=0; while :; do if out=$(docker image prune --force --filter label=service=app 2>&1); then printf '\''%s\n'\'' "$out"; exit 0; fi; case "$out" in *'\''prune operation is already running'\''*) ;; *) printf '\''%s\n'\'' "$out" >&2; exit 1 ;; esac; n=$((n + 1)); [ "$n" -lt 10 ] || { printf '\''%s\n'\'' "$out" >&2; exit 1; }; sleep 1; done'"#);
        insta::assert_snapshot!(cmds[2].to_shell());
    }

    #[test]
    fn prune_with_replicas_counts_versions_not_containers() {
        let c = crate::docker::test_support::config_with(
            "service: app\nimage: app\nregistry:\n  server: localhost:5000\nbuilder:\n  arch: amd64\nservers:\n  web:\n    - 1.1.1.1\n  workers:\n    hosts:\n      - 1.1.1.1\n    cmd: work\nx-dray:\n  replicas:\n    web: 2\n",
            None,
        );
        // A stand-in `docker` lists stopped containers newest first and echoes the removals.
        let dir = tempfile::tempdir().expect("dir");
        write_stand_in_docker(
            dir.path(),
            "#!/bin/sh\nif [ \"$1\" = ps ]; then printf '%s\\n' 'a1 app-web-v3-r2 web 2' 'a2 app-web-v3 web ' 'a3 app-workers-v3 workers ' 'a4 app-web-v2-r2 web 2' 'a5 app-web-v2 web ' 'a6 app-web-v1-r2 web 2' 'a7 app-web-v1 web '; else echo \"$@\"; fi\n",
        );
        let cmd = containers(&c, 2, "1.1.1.1");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd.to_shell())
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .output()
            .expect("sh");
        // Kept: v3 (web's 2 replicas and workers) and v2; removed: v1, every replica.
        assert_eq!(String::from_utf8_lossy(&out.stdout), "rm a6\nrm a7\n");
    }

    /// `all_batch`'s script run by `sh` against a stand-in `docker` that logs its calls, whose
    /// `image prune` takes 0.3 s and exits `prune_exit`, and whose `docker rmi` fails for
    /// `dhh/app:bad`; `tags` are what `docker image ls` lists (`dhh/app:v2` is in use). Whether
    /// the script succeeded, and the log.
    fn run_all_batch(prune_exit: u8, tags: &[&str]) -> (bool, String) {
        run_all_batch_with(prune_exit, tags, &["c0 running d dhh/app:v2"])
    }

    /// [`run_all_batch`] with `docker ps -a` listing `containers` (`ID STATE d<dest> IMAGE`,
    /// newest first); `docker rm` of `cbad` fails.
    fn run_all_batch_with(prune_exit: u8, tags: &[&str], containers: &[&str]) -> (bool, String) {
        let c = base();
        let ps: String = containers.iter().map(|l| format!("echo '{l}'; ")).collect();
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("log");
        let listed: String = tags
            .iter()
            .enumerate()
            .map(|(i, t)| format!("echo 'i{i} {t}'; "))
            .collect();
        write_stand_in_docker(
            dir.path(),
            &format!(
                "#!/bin/sh\nlog={log}\ncase \"$1 $2\" in\n\
                 'image prune') echo prune-start >> $log; sleep 0.3; echo prune-end >> $log; exit {prune_exit} ;;\n\
                 'image ls') echo image-ls >> $log; {listed}:;;\n\
                 'container ls') echo container-ls >> $log; echo 'dhh/app:v2' ;;\n\
                 'ps -a') echo ps >> $log; {ps}:;;\n\
                 'rm '*) echo \"$*\" >> $log; case \" $* \" in *' cbad '*) exit 1 ;; esac ;;\n\
                 'rmi '*) echo \"$*\" >> $log; case \" $* \" in *' dhh/app:bad '*) exit 1 ;; esac ;;\n\
                 *) echo \"$1\" >> $log ;;\nesac\n",
                log = log.display()
            ),
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(all_script(&c))
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .output()
            .expect("sh");
        (
            out.status.success(),
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    }

    #[test]
    fn the_dangling_prune_runs_beside_the_removal_of_unused_tags_and_either_failure_fails() {
        let (ok, log) = run_all_batch(0, &["dhh/app:v1", "dhh/app:v2"]);
        assert!(ok, "{log}");
        // The unused tag went while the dangling prune still ran; the used one stayed.
        let lines: Vec<&str> = log.lines().collect();
        let at = |l: &str| lines.iter().position(|x| *x == l).unwrap_or(usize::MAX);
        assert!(at("ps") < at("prune-start"), "{log}");
        assert!(at("image-ls") < at("prune-end"), "{log}");
        assert!(at("rmi dhh/app:v1") < at("prune-end"), "{log}");
        assert!(!log.contains("dhh/app:v2"), "{log}");
        let (ok, log) = run_all_batch(1, &["dhh/app:v1"]);
        assert!(!ok, "a failed dangling prune fails the script: {log}");
    }

    #[test]
    fn unused_tags_go_in_two_rmi_calls_and_the_last_ones_status_counts() {
        let tags = [
            "dhh/app:v1",
            "dhh/app:v2",
            "dhh/app:latest",
            "dhh/app:v3",
            "dhh/app:<none>",
            "dhh/app:v4",
        ];
        let (ok, log) = run_all_batch(0, &tags);
        assert!(ok, "{log}");
        let rmis: Vec<&str> = log.lines().filter(|l| l.starts_with("rmi ")).collect();
        assert_eq!(
            rmis,
            ["rmi dhh/app:v1 dhh/app:v3", "rmi dhh/app:v4"],
            "{log}"
        );
        // One tag: one call.
        let (_, log) = run_all_batch(0, &["dhh/app:v1"]);
        let rmis: Vec<&str> = log.lines().filter(|l| l.starts_with("rmi ")).collect();
        assert_eq!(rmis, ["rmi dhh/app:v1"], "{log}");
        // As Kamal's loop: an earlier tag's failure is shown, not fatal; the last one's is.
        let (ok, log) = run_all_batch(0, &["dhh/app:bad", "dhh/app:v1"]);
        assert!(ok, "{log}");
        let (ok, log) = run_all_batch(0, &["dhh/app:v1", "dhh/app:bad"]);
        assert!(!ok, "{log}");
    }

    #[test]
    fn one_container_listing_gives_the_removals_and_the_images_in_use() {
        // Newest first: this destination's stopped containers c1..c7 (the 6th and 7th go, with
        // the default 5 kept), a running one, and a stopped one of another destination, which
        // neither counts nor goes.
        let containers = [
            "c0 running d dhh/app:v8",
            "c1 exited d dhh/app:v7",
            "s1 exited dstaging dhh/app:s1",
            "c2 exited d dhh/app:v6",
            "c3 created d dhh/app:v5",
            "c4 dead d dhh/app:v4",
            "c5 exited d dhh/app:v3",
            "c6 exited d dhh/app:v2",
            "c7 exited d dhh/app:v1",
        ];
        let tags = [
            "dhh/app:v1",
            "dhh/app:v2",
            "dhh/app:v3",
            "dhh/app:v8",
            "dhh/app:s1",
            "dhh/app:latest",
        ];
        let (ok, log) = run_all_batch_with(0, &tags, &containers);
        assert!(ok, "{log}");
        let calls: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("rm ") || l.starts_with("rmi ") || *l == "ps")
            .collect();
        // One listing; the two oldest removed (all but the last, then the last); the tags of
        // the removed containers' images untagged after the removal; every other kept.
        assert_eq!(
            calls,
            ["ps", "rm c6", "rm c7", "rmi dhh/app:v1", "rmi dhh/app:v2"],
            "{log}"
        );
        assert!(!log.contains("container-ls"), "{log}");
        // The last removal's failure fails the step, before any image is touched.
        let mut bad = containers;
        bad[8] = "cbad exited d dhh/app:v1";
        let (ok, log) = run_all_batch_with(0, &tags, &bad);
        assert!(!ok, "{log}");
        assert!(!log.contains("rmi "), "{log}");
        // Nothing to remove: no `docker rm` at all.
        let (ok, log) = run_all_batch_with(0, &tags, &containers[..3]);
        assert!(ok, "{log}");
        assert!(!log.lines().any(|l| l.starts_with("rm ")), "{log}");
    }

    #[test]
    fn prune_with_destination() {
        let c = staging();
        insta::assert_snapshot!(containers(&c, 3, "1.1.1.1").to_shell(), @"sh -c 'docker ps -q -a --filter label=service=app --filter label=destination=staging --filter status=created --filter status=exited --filter status=dead | tail -n +4 | while read container_id; do docker rm $container_id; done'");
        insta::assert_snapshot!(tagged_images(&c, "1.1.1.1").to_shell());
    }
}
