//! Fan-out: the same work on many hosts at once, results in the hosts' order.
//!
//! Hosts run concurrently (the [`Remote`] bounds connection starts and sessions per host); a
//! host's own commands run one after another and stop at its first failure. One host failing
//! never stops the others; each failure names its host, purpose, exit status and stderr tail
//! ([`RemoteError::failed`]).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::command::CommandSpec;

use super::{CommandOutput, Remote, RemoteError};

/// What happened on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOutcome {
    /// The host.
    pub host: String,
    /// The output of each command that succeeded, in order.
    pub outputs: Vec<CommandOutput>,
    /// The first failure, after which the host's remaining commands were not run.
    pub error: Option<RemoteError>,
}

impl HostOutcome {
    /// Whether every command succeeded.
    pub fn success(&self) -> bool {
        self.error.is_none()
    }

    /// The last command's output, if it succeeded.
    pub fn last(&self) -> Option<&CommandOutput> {
        self.outputs.last()
    }
}

/// Run each host's commands (in order, stopping at the first failure) on all hosts at once.
/// Outcomes come back in the order of `work`.
pub async fn fan_out(remote: &dyn Remote, work: &[(String, Vec<CommandSpec>)]) -> Vec<HostOutcome> {
    let jobs = work.iter().map(|(host, cmds)| async move {
        let mut outcome = HostOutcome {
            host: host.clone(),
            outputs: Vec::with_capacity(cmds.len()),
            error: None,
        };
        for cmd in cmds {
            match remote.run_checked(host, cmd).await {
                Ok(out) => outcome.outputs.push(out),
                Err(err) => {
                    outcome.error = Some(err);
                    break;
                }
            }
        }
        outcome
    });
    join_all(jobs.collect()).await
}

/// Drive futures concurrently on the current task; results in input order.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, slot) in futures.iter_mut().zip(results.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::BoxFuture;

    /// A remote where `false` fails and everything else echoes the host.
    struct Fake;

    impl Remote for Fake {
        fn run<'a>(
            &'a self,
            host: &'a str,
            cmd: &'a CommandSpec,
        ) -> BoxFuture<'a, Result<CommandOutput, RemoteError>> {
            Box::pin(async move {
                // Later hosts finish first: order must still follow the input.
                let delay = 30u64.saturating_sub(host.len() as u64 * 3);
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                Ok(if cmd.program == "false" {
                    CommandOutput {
                        status: Some(1),
                        stdout: String::new(),
                        stderr: "a\nb\nboom".into(),
                    }
                } else {
                    CommandOutput {
                        status: Some(0),
                        stdout: host.to_string(),
                        stderr: String::new(),
                    }
                })
            })
        }
    }

    #[tokio::test]
    async fn outcomes_keep_host_order_and_name_failures() {
        let work = vec![
            ("a".to_string(), vec![CommandSpec::new("say", "echo")]),
            (
                "bbbb".to_string(),
                vec![
                    CommandSpec::new("check the thing", "false"),
                    CommandSpec::new("never", "echo"),
                ],
            ),
            (
                "cccccccc".to_string(),
                vec![CommandSpec::new("say", "echo")],
            ),
        ];
        let outcomes = fan_out(&Fake, &work).await;
        let hosts: Vec<&str> = outcomes.iter().map(|o| o.host.as_str()).collect();
        assert_eq!(hosts, ["a", "bbbb", "cccccccc"]);
        assert_eq!(outcomes[0].last().map(|o| o.stdout.as_str()), Some("a"));
        assert!(outcomes[1].outputs.is_empty());
        let err = outcomes[1].error.as_ref().expect("failed").to_string();
        assert_eq!(err, "check the thing on bbbb: exited 1:\na\nb\nboom");
        assert!(outcomes[2].success());
    }
}
