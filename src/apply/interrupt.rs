//! Interruption: Ctrl-C, or the caller's channel, honoured at safe points (between steps, at prompts,
//! during waits, gates and kube requests) through [`or_interrupt`].

use tokio::sync::watch;

use super::error::StepError;

/// Ctrl-C or the caller's channel.
pub(super) struct Interrupt {
    rx: watch::Receiver<bool>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Interrupt {
    pub(super) fn new(given: Option<watch::Receiver<bool>>) -> Self {
        match given {
            Some(rx) => Self { rx, listener: None },
            None => {
                let (tx, rx) = watch::channel(false);
                let listener = tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        let _ = tx.send(true);
                    }
                });
                Self {
                    rx,
                    listener: Some(listener),
                }
            }
        }
    }

    pub(super) fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when interrupted (never, if the sender is gone without interrupting).
    async fn triggered(&mut self) {
        if self.rx.wait_for(|set| *set).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
    }
}

/// Run `fut` unless interrupted first.
pub(super) async fn or_interrupt<T>(
    interrupt: &mut Interrupt,
    fut: impl std::future::Future<Output = Result<T, StepError>>,
) -> Result<T, StepError> {
    if interrupt.is_set() {
        return Err(StepError::Interrupted);
    }
    tokio::select! {
        biased;
        _ = interrupt.triggered() => Err(StepError::Interrupted),
        out = fut => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_set_interrupt_stops_the_work_before_it_starts() {
        let (tx, rx) = watch::channel(false);
        let mut interrupt = Interrupt::new(Some(rx));
        let ran = or_interrupt(&mut interrupt, async { Ok::<_, StepError>(1) }).await;
        assert!(matches!(ran, Ok(1)));
        tx.send(true).unwrap();
        assert!(interrupt.is_set());
        let stopped = or_interrupt(&mut interrupt, async { Ok::<_, StepError>(2) }).await;
        assert!(matches!(stopped, Err(StepError::Interrupted)));
    }

    #[tokio::test]
    async fn an_interrupt_ends_a_wait_that_would_never_end() {
        let (tx, rx) = watch::channel(false);
        let mut interrupt = Interrupt::new(Some(rx));
        let trigger = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            tx.send(true).unwrap();
            tx
        });
        let waited = or_interrupt(&mut interrupt, async {
            std::future::pending::<()>().await;
            Ok::<_, StepError>(())
        })
        .await;
        assert!(matches!(waited, Err(StepError::Interrupted)));
        drop(trigger.await);
    }
}
