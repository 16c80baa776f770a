//! Version resolution against real git repositories in temporary directories.

use std::path::Path;
use std::process::Command;

use dray::error::{Diagnostic, ExitCode};
use dray::release::{self, ReleaseError, ResolveInputs, Resolved, VersionSource, Warning};
use tempfile::TempDir;

const REPOSITORY: &str = "registry.example.com/org/app";

/// A git repository in a temporary directory, with one commit and its own identity; git runs
/// without the machine's global and system configuration.
struct Repo {
    dir: TempDir,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.email", "dev@example.com"]);
        repo.git(&["config", "user.name", "Dev Eloper"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo.write(".gitignore", "build-output/\n*.ignored\n");
        repo.write("src/app.txt", "hello\n");
        repo.write("README", "readme\n");
        repo.commit("initial");
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.path())
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn write(&self, path: &str, content: &str) {
        let path = self.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, content).expect("write");
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn resolve_in(dir: &Path, builder_context: bool) -> Resolved {
    let inputs = ResolveInputs {
        env: &no_env,
        builder_context,
        ..ResolveInputs::new("app", REPOSITORY, dir)
    };
    release::resolve(&inputs).expect("resolves")
}

fn version_in(dir: &Path, builder_context: bool) -> String {
    resolve_in(dir, builder_context).release.version
}

/// `<40 hex>_uncommitted_<16 hex>`.
fn assert_uncommitted_version(version: &str, head: &str) {
    let suffix = version
        .strip_prefix(&format!("{head}_uncommitted_"))
        .unwrap_or_else(|| panic!("`{version}` is not `{head}_uncommitted_…`"));
    assert_eq!(suffix.len(), 16, "{version}");
    assert!(
        suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{version}"
    );
}

#[test]
fn clean_tree_gives_the_full_head_sha() {
    let repo = Repo::new();
    let resolved = resolve_in(repo.path(), false);
    let head = repo.head();
    assert_eq!(head.len(), 40);
    assert_eq!(resolved.release.version, head);
    assert_eq!(resolved.source, VersionSource::Git);
    assert_eq!(resolved.release.image, format!("{REPOSITORY}:{head}"));
    assert_eq!(resolved.release.performer, "dev@example.com");
    assert!(resolved.warnings.is_empty());
    assert!(resolved.uncommitted.is_empty());
    // A clean tree never gets a suffix, builder.context or not.
    assert_eq!(version_in(repo.path(), true), head);
}

#[test]
fn dirty_tree_with_default_build_gives_head_sha_and_warns_about_the_files() {
    let repo = Repo::new();
    repo.write("src/app.txt", "changed\n");
    repo.write("notes.txt", "untracked\n");
    repo.write("scratch.ignored", "ignored\n");
    repo.git(&["mv", "README", "README.md"]);

    let resolved = resolve_in(repo.path(), false);
    assert_eq!(resolved.release.version, repo.head());
    let [warning] = resolved.warnings.as_slice() else {
        panic!("expected one warning, got {:?}", resolved.warnings);
    };
    assert!(matches!(warning, Warning::UncommittedNotInImage { .. }));
    let text = warning.to_string();
    assert!(text.contains("will not be in the image"), "{text}");
    assert!(text.contains("src/app.txt"), "{text}");
    assert!(text.contains("notes.txt"), "{text}");
    assert!(text.contains("README -> README.md"), "{text}");
    assert!(!text.contains("scratch.ignored"), "{text}");
    assert_eq!(resolved.uncommitted.len(), 3);
}

#[test]
fn dirty_tree_with_builder_context_gives_a_content_derived_suffix() {
    let repo = Repo::new();
    let head = repo.head();
    repo.write("src/app.txt", "changed\n");

    let first = resolve_in(repo.path(), true);
    assert_uncommitted_version(&first.release.version, &head);
    // The working tree is what gets built: nothing to warn about, but the paths are known.
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    assert_eq!(first.uncommitted.len(), 1);
    let dirty = first.release.version;
    assert_eq!(
        version_in(repo.path(), true),
        dirty,
        "same tree, same version"
    );

    repo.write("src/app.txt", "changed again\n");
    let edited = version_in(repo.path(), true);
    assert_uncommitted_version(&edited, &head);
    assert_ne!(edited, dirty, "an edit changes the version");

    repo.write("src/app.txt", "changed\n");
    assert_eq!(
        version_in(repo.path(), true),
        dirty,
        "the same content gives the same version again"
    );

    repo.write("new.txt", "new\n");
    let untracked = version_in(repo.path(), true);
    assert_ne!(untracked, dirty, "a new untracked file changes the version");
    repo.write("new.txt", "new, edited\n");
    let untracked_edited = version_in(repo.path(), true);
    assert_ne!(
        untracked_edited, untracked,
        "editing an untracked file changes it"
    );

    repo.write("build-output/artifact.bin", "ignored\n");
    repo.write("more.ignored", "ignored\n");
    assert_eq!(
        version_in(repo.path(), true),
        untracked_edited,
        "ignored files do not change the version"
    );
}

#[test]
fn staged_changes_count_like_unstaged_ones() {
    let repo = Repo::new();
    let head = repo.head();
    repo.write("src/app.txt", "changed\n");
    let unstaged = version_in(repo.path(), true);
    repo.git(&["add", "src/app.txt"]);
    let staged = version_in(repo.path(), true);
    assert_uncommitted_version(&staged, &head);
    // The built content is the same, so is the version.
    assert_eq!(staged, unstaged);
}

#[test]
fn the_suffix_does_not_depend_on_the_directory_dray_runs_in() {
    let repo = Repo::new();
    repo.write("src/app.txt", "changed\n");
    repo.write("top-level-untracked.txt", "x\n");
    let from_root = version_in(repo.path(), true);
    let from_subdir = version_in(&repo.path().join("src"), true);
    assert_eq!(from_root, from_subdir);
    // Untracked files outside the project subdirectory count too.
    repo.write("top-level-untracked.txt", "y\n");
    assert_ne!(version_in(&repo.path().join("src"), true), from_subdir);
}

#[test]
fn flag_beats_version_env_beats_parent_beats_git() {
    let repo = Repo::new();
    let head = repo.head();
    let parent = dray::release::Release::new(
        "app",
        REPOSITORY,
        None,
        "parent-1",
        "parent@example.com",
        "2024-01-01T12:00:00Z",
    );
    let parent_env = parent.to_env();
    let env = move |name: &str| {
        parent_env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut inputs = ResolveInputs {
        env: &env,
        flag_version: Some("flag-1"),
        env_version: Some("env-1"),
        ..ResolveInputs::new("app", REPOSITORY, repo.path())
    };
    let got = |inputs: &ResolveInputs<'_>| {
        let resolved = release::resolve(inputs).expect("resolves");
        (resolved.release.version, resolved.source)
    };

    assert_eq!(got(&inputs), ("flag-1".to_owned(), VersionSource::Flag));
    inputs.flag_version = None;
    assert_eq!(got(&inputs), ("env-1".to_owned(), VersionSource::Env));
    inputs.env_version = None;
    assert_eq!(got(&inputs), ("parent-1".to_owned(), VersionSource::Parent));
    let resolved = release::resolve(&inputs).expect("resolves");
    assert_eq!(
        resolved.release, parent,
        "the child keeps the parent's identity"
    );
    inputs.env = &no_env;
    assert_eq!(got(&inputs), (head, VersionSource::Git));
}

#[test]
fn a_changed_kamal_version_makes_the_child_ignore_the_parent() {
    let repo = Repo::new();
    let parent = dray::release::Release::new(
        "app",
        REPOSITORY,
        None,
        "parent-1",
        "parent@example.com",
        "2024-01-01T12:00:00Z",
    );
    let mut parent_env = parent.to_env();
    for (name, value) in &mut parent_env {
        if name == "KAMAL_VERSION" {
            *value = "user-override".to_owned();
        }
    }
    let env = move |name: &str| {
        parent_env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let inputs = ResolveInputs {
        env: &env,
        ..ResolveInputs::new("app", REPOSITORY, repo.path())
    };
    let resolved = release::resolve(&inputs).expect("resolves");
    assert_eq!(resolved.source, VersionSource::Git);
    assert_eq!(resolved.release.version, repo.head());
    let [warning] = resolved.warnings.as_slice() else {
        panic!("expected one warning, got {:?}", resolved.warnings);
    };
    assert!(
        warning
            .to_string()
            .contains("KAMAL_VERSION is `user-override`"),
        "{warning}"
    );
}

#[test]
fn not_a_git_repo_without_a_version_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = ResolveInputs {
        env: &no_env,
        ..ResolveInputs::new("app", REPOSITORY, dir.path())
    };
    let err = release::resolve(&inputs).expect_err("no repository");
    assert!(matches!(err, ReleaseError::NotARepo { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("not in a git repository"), "{message}");
    let hint = err.hint().unwrap_or_default();
    assert!(hint.contains("--version"), "{hint}");
    assert!(hint.contains("VERSION"), "{hint}");
    assert_eq!(err.exit_code(), ExitCode::Usage);

    // With a version, no git is needed.
    let inputs = ResolveInputs {
        flag_version: Some("1.2.3"),
        ..inputs
    };
    assert_eq!(
        release::resolve(&inputs).expect("resolves").release.version,
        "1.2.3"
    );
}

#[test]
fn a_repository_without_commits_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = Command::new("git")
        .args(["init", "-q"])
        .arg(dir.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .expect("git init");
    assert!(status.success());
    let inputs = ResolveInputs {
        env: &no_env,
        ..ResolveInputs::new("app", REPOSITORY, dir.path())
    };
    let err = release::resolve(&inputs).expect_err("no commits");
    assert!(matches!(err, ReleaseError::NoCommits { .. }), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::Usage);
}

#[test]
fn bad_tags_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = "a".repeat(129);
    for (tag, rule) in [
        ("1.2.3+build123", "`+` is not allowed in a Docker tag"),
        ("-x", "cannot start with `-`"),
        ("a/b", "`/` is not allowed"),
        (long.as_str(), "at most 128"),
        ("", "cannot be empty"),
    ] {
        let inputs = ResolveInputs {
            env: &no_env,
            flag_version: Some(tag),
            ..ResolveInputs::new("app", REPOSITORY, dir.path())
        };
        let err: dray::error::Error = release::resolve(&inputs).expect_err(tag).into();
        assert_eq!(err.exit, ExitCode::Usage, "{tag}");
        assert!(err.message.contains(rule), "{tag}: {}", err.message);
    }
}

#[test]
fn lock_performer_is_the_git_user_name() {
    let repo = Repo::new();
    assert_eq!(release::lock_performer(repo.path()), "Dev Eloper");
}

/// Not a test on its own: when `DRAY_TEST_RELEASE_DIR` is set, prints the version resolved
/// there with `builder.context`, for `two_processes_compute_the_same_dirty_version`.
#[test]
fn print_version_for_another_process() {
    if let Ok(dir) = std::env::var("DRAY_TEST_RELEASE_DIR") {
        println!("VERSION={}", version_in(Path::new(&dir), true));
    }
}

#[test]
fn two_processes_compute_the_same_dirty_version() {
    let repo = Repo::new();
    repo.write("src/app.txt", "changed\n");
    repo.write("untracked.txt", "new\n");
    let in_another_process = || {
        let out = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "release::print_version_for_another_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("DRAY_TEST_RELEASE_DIR", repo.path())
            .output()
            .expect("test binary runs");
        assert!(out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .lines()
            .find_map(|line| line.split_once("VERSION="))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no version printed: {stdout}"))
    };
    let first = in_another_process();
    let second = in_another_process();
    assert_uncommitted_version(&first, &repo.head());
    assert_eq!(first, second);
    assert_eq!(first, version_in(repo.path(), true));
}

#[test]
fn performer_falls_back_to_the_user_name_without_a_git_email() {
    let repo = Repo::new();
    repo.git(&["config", "user.email", "  "]);
    let env = |name: &str| (name == "USER").then(|| "deployer".to_owned());
    assert_eq!(release::performer(repo.path(), &env), "deployer");
    let inputs = ResolveInputs {
        env: &env,
        ..ResolveInputs::new("app", REPOSITORY, repo.path())
    };
    let resolved = release::resolve(&inputs).expect("resolves");
    assert_eq!(resolved.release.performer, "deployer");
}
