//! Plans of `dray build …` (Kamal 2.12's `lib/kamal/cli/build.rb`): `push` (pre-connect and
//! pre-build hooks, local registry or login, the build step of [`super::builder`]), `pull` (the
//! deploy's pull on every targeted host), `deliver` (both), `dev` (the working directory,
//! `-dirty` tags, kept in the engine by default), and the builder's `create`, `remove` and
//! `details`, all on this machine.

use crate::command::CommandSpec;
use crate::config::secrets::Secrets;
use crate::config::Config;
use crate::docker::builder::{self as bx, Target};
use crate::hooks::{hook_env, HookContext};
use crate::release::Release;

use super::builder::{BuildEnv, BuildRefusal, BuildRequest};
use super::{cmds, on_hosts, planned, stage, HookStep, LocalStep, PlannedCommand, Stage, Step};
use super::{Step::Hosts, Targets};

/// What a `build` plan is built from.
#[derive(Debug, Clone, Copy)]
pub struct BuildInputs<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The release built or pulled.
    pub release: &'a Release,
    /// Targeted roles and hosts.
    pub targets: &'a Targets,
    /// Secrets (registry password, build secrets, pre-connect's environment).
    pub secrets: &'a Secrets,
    /// What this machine offers the build.
    pub env: &'a BuildEnv,
    /// `KAMAL_SUBCOMMAND` of the hooks (`push`, `pull`, `deliver`, `dev`).
    pub subcommand: &'a str,
    /// `-H`.
    pub skip_hooks: bool,
    /// Whether a parent holds the lock (`KAMAL_LOCK`).
    pub lock_inherited: bool,
}

impl BuildInputs<'_> {
    fn hook(&self, name: &str) -> Vec<Step> {
        if self.skip_hooks {
            return Vec::new();
        }
        let roles = self
            .targets
            .roles_filtered
            .then_some(self.targets.roles.as_slice());
        let ctx = HookContext {
            release: self.release,
            command: "build",
            subcommand: Some(self.subcommand),
            hosts: &self.targets.hosts,
            roles,
            lock: self.lock_inherited,
            runtime: None,
        };
        vec![Step::Hook(HookStep {
            hook: name.to_string(),
            path: format!("{}/{name}", self.config.hooks_path),
            env: hook_env(name, &ctx, self.secrets.iter()),
        })]
    }
}

/// One local step of `commands`.
fn local(purpose: &str, commands: Vec<PlannedCommand>) -> Step {
    Step::Local(LocalStep {
        purpose: purpose.to_string(),
        label: "localhost".into(),
        build_dir: None,
        secret_env: Vec::new(),
        ensure_builder: None,
        commands,
    })
}

/// The resolved `builder.secrets`, for the build process's environment.
fn secret_env(inp: &BuildInputs) -> Vec<(String, String)> {
    inp.config
        .builder
        .secrets
        .iter()
        .map(|k| {
            let v = inp.secrets.get(k).map(str::to_string).unwrap_or_default();
            (k.clone(), v)
        })
        .collect()
}

/// `build push [--output T] [--no-cache]`: pre-connect, the local registry (or the login on
/// this machine), pre-build, the build (Kamal's builder check with buildx). Call
/// [`super::builder::check`] and [`super::builder::check_export`] first.
pub fn push(inp: &BuildInputs, req: &BuildRequest) -> Vec<Stage> {
    let config = inp.config;
    let mut stages = vec![stage("connect", inp.hook("pre-connect"))];
    if let Some(setup) = cmds::local_registry_setup(config) {
        stages.push(stage(
            "registry-setup",
            vec![local(
                "start the local registry on this machine",
                vec![setup],
            )],
        ));
    } else if let Some(login) = cmds::local_login(config, inp.secrets) {
        stages.push(stage(
            "registry-login",
            vec![local("log in to the registry on this machine", vec![login])],
        ));
    }
    stages.push(stage("pre-build", inp.hook("pre-build")));
    stages.push(stage(
        "build",
        vec![Step::Local(super::builder::build_step_for(
            config,
            inp.release,
            req,
            inp.env,
            &secret_env(inp),
        ))],
    ));
    stages
}

/// `build pull`: on every targeted host, the deploy's pull (login, old copy removed, pull,
/// `service` label checked, audit "Pulled image with version V"), through the tunnel of a
/// local registry.
pub fn pull(inp: &BuildInputs, with_pre_connect: bool) -> Vec<Stage> {
    let config = inp.config;
    let mut steps = on_hosts(
        format!("pull {} on the hosts", inp.release.image),
        &inp.targets.hosts,
        |h| cmds::pull(config, inp.release, h, inp.secrets),
    );
    for step in &mut steps {
        if let Hosts(h) = step {
            h.tunnel = cmds::pull_tunnel(config);
        }
    }
    let mut stages = Vec::new();
    if with_pre_connect {
        stages.push(stage("connect", inp.hook("pre-connect")));
    }
    stages.push(stage("pull", steps));
    stages
}

/// `build deliver`: `push`, then `pull` (pre-connect once).
pub fn deliver(inp: &BuildInputs, no_cache: bool) -> Vec<Stage> {
    let mut stages = push(inp, &BuildRequest::push(no_cache));
    stages.extend(pull(inp, false));
    stages
}

/// `build dev [--output T] [--no-cache]`: the working directory built with `-dirty` tags, as
/// Kamal's (no hooks, no login).
pub fn dev(inp: &BuildInputs, req: &BuildRequest) -> Vec<Stage> {
    vec![stage(
        "build",
        vec![Step::Local(super::builder::build_step_for(
            inp.config,
            inp.release,
            req,
            inp.env,
            &secret_env(inp),
        ))],
    )]
}

fn say(purpose: &str, text: &str) -> PlannedCommand {
    planned(CommandSpec::new(purpose, "echo").arg(text)).show()
}

/// `build details`: `Builder: <target>` then Kamal's `docker context ls` and `docker buildx
/// ls` (`pack builder inspect` for pack); without buildx, what builds instead.
pub fn details(config: &Config, env: &BuildEnv) -> Vec<Stage> {
    let target = bx::target(config, &env.arch);
    let mut commands = vec![say(
        "name the builder",
        &format!("Builder: {}", target.name()),
    )];
    if target == Target::Pack {
        commands.push(planned(bx::pack_inspect(config)).show());
    } else {
        commands.push(
            planned(CommandSpec::new("list the docker contexts", "docker").args(["context", "ls"]))
                .show(),
        );
        if env.buildx {
            commands.push(
                planned(
                    CommandSpec::new("list the buildx builders", "docker").args(["buildx", "ls"]),
                )
                .show(),
            );
        } else {
            let on = match (target, config.builder.remote.as_deref()) {
                (Target::Remote, Some(remote)) => format!("the engine at {remote}"),
                _ => "this machine's docker engine".to_string(),
            };
            commands.push(say(
                "say how images are built",
                &format!("docker buildx is not installed: images are built with `docker build` on {on}, then pushed with `docker push`"),
            ));
        }
    }
    vec![stage(
        "details",
        vec![local("show the build setup", commands)],
    )]
}

/// No buildx builder to manage: why, as a refusal naming what to do.
fn no_builder(what: &str, config: &Config, env: &BuildEnv) -> BuildRefusal {
    let why = if !env.buildx {
        "docker buildx is not installed here; `docker build` uses the engine's own builder, so there is nothing to".to_string()
    } else if bx::target(config, &env.arch) == Target::Pack {
        "buildpacks build with `pack`, which has no builder to".to_string()
    } else {
        "`driver: docker` builds with the engine's own builder, so there is nothing to".to_string()
    };
    BuildRefusal {
        key: format!("build {what}"),
        message: format!("{why} {what}"),
        hint: "install docker buildx and use a buildx driver (the default `docker-container`) to have a builder".into(),
    }
}

/// `build create`: Kamal's builder creation for the configured target.
pub fn create(config: &Config, env: &BuildEnv) -> Result<Vec<Stage>, BuildRefusal> {
    let target = bx::target(config, &env.arch);
    let name = bx::name(config, target)
        .filter(|_| env.buildx)
        .ok_or_else(|| no_builder("create", config, env))?;
    let commands = bx::create(config, target, &name, &env.arch)
        .into_iter()
        .map(|(c, ignored)| {
            let c = planned(c).show();
            if ignored {
                c.ignore_errors()
            } else {
                c
            }
        })
        .collect();
    Ok(vec![stage(
        "create",
        vec![local(&format!("create the builder {name}"), commands)],
    )])
}

/// `build remove`: Kamal's builder removal for the configured target.
pub fn remove(config: &Config, env: &BuildEnv) -> Result<Vec<Stage>, BuildRefusal> {
    let target = bx::target(config, &env.arch);
    let name = bx::name(config, target)
        .filter(|_| env.buildx)
        .ok_or_else(|| no_builder("remove", config, env))?;
    let mut commands: Vec<PlannedCommand> = bx::remove(target, &name)
        .into_iter()
        .map(|c| planned(c).show())
        .collect();
    // Kamal chains the remote context's removal with `;`: its failure does not stop the rest.
    if commands.len() > 1 {
        commands[0] = commands[0].clone().ignore_errors();
    }
    Ok(vec![stage(
        "remove",
        vec![local(&format!("remove the builder {name}"), commands)],
    )])
}
